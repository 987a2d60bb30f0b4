"""UTM templates: a workspace's named sets of campaign tags, kept by its owners and named by
the links it makes (`utm_template`), which take the tags they do not give themselves."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import AppError, Invalid, NotFound
from app.core.principal import Principal
from app.core.tables import UTM_FIELDS, UtmTemplate
from app.utm_templates import repository
from app.utm_templates.schemas import UtmTemplateCreate, UtmTemplateOut, UtmTemplateUpdate


def to_out(template: UtmTemplate) -> UtmTemplateOut:
    return UtmTemplateOut.model_validate(template, from_attributes=True)


def _tags(values: dict[str, str | None]) -> dict[str, str | None]:
    """The UTM fields as stored, refused when none is left: an empty value is none, as a
    link's is, and a template of no tag would fill nothing."""
    tags = {field: values[field] or None for field in UTM_FIELDS}
    if not any(tags.values()):
        raise Invalid(
            "empty_template",
            "a UTM template needs one UTM field at least: utm_source, utm_medium, "
            "utm_campaign, utm_term or utm_content",
        )
    return tags


def _taken(name: str) -> AppError:
    return AppError(409, "name_taken", f"the workspace has a UTM template named '{name}'")


async def create_template(
    session: AsyncSession, principal: Principal, data: UtmTemplateCreate
) -> UtmTemplate:
    """A template of the key's workspace (the admin key's own, for admin)."""
    tags = _tags({field: getattr(data, field) for field in UTM_FIELDS})
    template = UtmTemplate(workspace_id=principal.workspace_id, name=data.name, **tags)
    try:
        async with session.begin_nested():
            session.add(template)
    except IntegrityError:
        raise _taken(data.name) from None
    audit.record(session, principal, "template.create", template.name,
                 data.model_dump(mode="json", exclude_unset=True), workspace_id=template.workspace_id)  # fmt: skip
    return template


async def get_template(session: AsyncSession, principal: Principal, name: str) -> UtmTemplate:
    """The template of `name` the caller sees; another workspace's is as unknown as one
    that does not exist. Admin, who sees every workspace's, gets its own workspace's
    first, and is asked for a key of the workspace when several others have the name."""
    found = await repository.find(session, principal, name)
    if not found:
        raise NotFound("utm template")
    first = found[0]
    if len(found) > 1 and first.workspace_id != principal.workspace_id:
        raise AppError(
            409,
            "name_ambiguous",
            f"{len(found)} workspaces have a UTM template named '{name}': use a key of the "
            "one you mean",
        )
    return first


async def update_template(
    session: AsyncSession, principal: Principal, name: str, data: UtmTemplateUpdate
) -> UtmTemplate:
    template = await get_template(session, principal, name)
    sent = data.model_fields_set
    current = {field: getattr(template, field) for field in UTM_FIELDS}
    tags = _tags({**current, **{field: getattr(data, field) for field in sent & set(UTM_FIELDS)}})
    new_name = data.name if data.name is not None and data.name != template.name else None
    try:
        async with session.begin_nested():
            for field, value in tags.items():
                setattr(template, field, value)
            if new_name is not None:
                template.name = new_name
            await session.flush()
    except IntegrityError:
        raise _taken(new_name or name) from None
    audit.record(session, principal, "template.update", name,
                 data.model_dump(mode="json", exclude_unset=True), workspace_id=template.workspace_id)  # fmt: skip
    return template


async def delete_template(session: AsyncSession, principal: Principal, name: str) -> None:
    """Links made with the template keep the tags they took: they were copied, not linked."""
    template = await get_template(session, principal, name)
    audit.record(session, principal, "template.delete", name, workspace_id=template.workspace_id)
    await session.delete(template)
    await session.flush()


async def templates_for_new_links(session: AsyncSession, principal: Principal) -> list[UtmTemplate]:
    """The templates a new link of the caller's workspace may name: its own workspace's
    only (an admin sees every workspace's, but a link takes its own's)."""
    return await repository.of_workspace(session, principal.workspace_id)


async def list_templates(session: AsyncSession, principal: Principal) -> list[UtmTemplateOut]:
    return [to_out(template) for template in await repository.visible(session, principal)]
