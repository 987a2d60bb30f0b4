"""`/api/utm-templates`: a workspace's named sets of campaign tags, which a new link names
in `utm_template` to take the tags it does not give."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.api.deps import ReadSession, WriteSession, writes_of
from app.auth import require_scopes
from app.core.principal import OWNER, Principal
from app.utm_templates import service
from app.utm_templates.schemas import (
    UtmTemplateCreate,
    UtmTemplateList,
    UtmTemplateOut,
    UtmTemplateUpdate,
)

router = APIRouter(prefix="/api/utm-templates", tags=["utm-templates"])

# Whoever reads links reads the templates that fill them; a workspace's owners keep them
# (keys with the scope `owner`).
TemplatesRead = Annotated[Principal, Depends(require_scopes("links:read"))]
TemplatesWrite = Annotated[Principal, Depends(writes_of(require_scopes(OWNER)))]

# `{name:path}`: a name may hold `/` (URL-encoded or not), and stays one parameter.
ONE = "/{name:path}"


def _name(name: str) -> str:
    """A name in a path, as stored (names are stripped)."""
    return name.strip()


@router.post("", status_code=201, response_model=UtmTemplateOut)
async def create_utm_template(
    body: UtmTemplateCreate, principal: TemplatesWrite, session: WriteSession
) -> UtmTemplateOut:
    """Adds a template to the key's workspace; 409 when the workspace has one of the name.
    It needs one UTM field at least."""
    return service.to_out(await service.create_template(session, principal, body))


@router.get("", response_model=UtmTemplateList)
async def list_utm_templates(principal: TemplatesRead, session: ReadSession) -> UtmTemplateList:
    """The workspace's templates by name (every workspace's for an admin key)."""
    return UtmTemplateList(utm_templates=await service.list_templates(session, principal))


@router.get(ONE, response_model=UtmTemplateOut)
async def get_utm_template(
    name: str, principal: TemplatesRead, session: ReadSession
) -> UtmTemplateOut:
    return service.to_out(await service.get_template(session, principal, _name(name)))


@router.patch(ONE, response_model=UtmTemplateOut)
async def update_utm_template(
    name: str, body: UtmTemplateUpdate, principal: TemplatesWrite, session: WriteSession
) -> UtmTemplateOut:
    """Applies the fields sent: null clears a UTM field (one must remain), `name` renames
    (409 when the workspace has one of the new name). Links keep the tags they took."""
    template = await service.update_template(session, principal, _name(name), body)
    return service.to_out(template)


@router.delete(ONE, status_code=204)
async def delete_utm_template(
    name: str, principal: TemplatesWrite, session: WriteSession
) -> Response:
    """Removes the template. Links made with it keep the tags they took."""
    await service.delete_template(session, principal, _name(name))
    return Response(status_code=204)
