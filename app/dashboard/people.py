"""The dashboard's pages for a workspace's owners: members (roles, invites, reset links),
API keys (made and revoked; a token shown once) and the audit log. Each works on the
workspace the owner is looking at, through the same services as /api/workspaces, the
command line's keys and /api/audit; anyone else gets the 403 page.

A one-time link or a key's token is shown once, in the page that answers the form that
made it: never in a URL, which a redirect, the history or a proxy's log would keep."""

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from app import auth
from app.accounts import mail
from app.accounts import service as accounts
from app.api.deps import AppState, ReadSession, State, WriteSession
from app.audit import service as audit
from app.core.errors import AppError, Invalid
from app.core.principal import OWNER, ROLE_SCOPES, ROLES, SCOPES, Principal
from app.core.tables import Workspace
from app.dashboard.routes import HOME, MayOwn, Owning, PageRoute, SameOrigin, _page
from app.links.schemas import LARGEST_INTEGER

router = APIRouter(prefix="/dashboard", route_class=PageRoute, include_in_schema=False)

# A key made here holds no more than its maker's role: `admin` would open every workspace.
KEY_SCOPES = tuple(scope for scope in SCOPES if scope in ROLE_SCOPES[OWNER])
MAX_KEY_NAME = 100  # the column's length
AUDIT_KINDS = ("link", "domain", "template", "key", "member", "workspace")
AUDIT_ROWS = 200
KeyId = Annotated[int, Path(ge=1, le=LARGEST_INTEGER)]  # past it no key is, nor may be looked up


def _field(form: FormData, name: str, limit: int = accounts.MAX_EMAIL + 10) -> str:
    """A form field's text, trimmed, cut well past anything valid (the service refuses it)."""
    return str(form.get(name, ""))[:limit].strip()


async def _workspace(db: AsyncSession, principal: Principal) -> Workspace:
    return await accounts.managed_workspace(db, principal, principal.workspace_id)


# Members


@dataclass(frozen=True)
class Handed:
    """A one-time link just made for `email`: its URL to show once, or None when mailed."""

    email: str
    purpose: str  # invite | reset
    url: str | None


async def _members_page(
    request: Request, db: AsyncSession, principal: Principal, status: int = 200, **context: Any
) -> Response:
    workspace = await _workspace(db, principal)
    members = await accounts.list_members(db, principal, workspace.id)
    return _page(request, "members.html", status, principal=principal, workspace=workspace,
                 members=members, roles=ROLES, **context)  # fmt: skip


async def _refused(
    request: Request, db: AsyncSession, principal: Principal, exc: AppError, **context: Any
) -> Response:
    """The members page again, saying why the form was refused (nothing was written)."""
    return await _members_page(request, db, principal, exc.status, error=exc.message, **context)


async def _handed_page(
    request: Request, db: AsyncSession, principal: Principal, state: AppState,
    background: BackgroundTasks, email: str, token: str, purpose: str,
) -> Response:  # fmt: skip
    """The members page with a one-time link just made: shown here once, or mailed (once
    the page is sent)."""
    workspace = await _workspace(db, principal)
    url = mail.hand_over(state.settings, background.add_task, email, token, purpose, workspace.name)
    return await _members_page(request, db, principal, handed=Handed(email, purpose, url))


def _back(principal: Principal, email: str, still_owner: bool) -> Response:
    """To the members page; home when the owners took their own place away (the members
    page is no longer theirs to see)."""
    own = email.strip().lower() == principal.actor
    to = HOME if own and not still_owner else "/dashboard/members"
    return RedirectResponse(to, status_code=303)


@router.get("/members")
async def member_list(request: Request, principal: MayOwn, db: ReadSession) -> Response:
    return await _members_page(request, db, principal)


@router.post("/members", dependencies=[SameOrigin])
async def add_member(
    request: Request, principal: Owning, db: WriteSession, state: State,
    background: BackgroundTasks,
) -> Response:  # fmt: skip
    form = await request.form()
    values = {"email": _field(form, "email"), "role": _field(form, "role")}
    try:
        member, token = await accounts.add_member(
            db, principal, principal.workspace_id, values["email"], values["role"],
            mailed=bool(state.settings.smtp_url),
        )  # fmt: skip
    except AppError as exc:
        return await _refused(request, db, principal, exc, values=values)
    if token is None:  # a person with a password signs in with it
        return RedirectResponse("/dashboard/members", status_code=303)
    return await _handed_page(
        request, db, principal, state, background, member.email, token, "invite"
    )


@router.post("/members/role", dependencies=[SameOrigin])
async def change_role(request: Request, principal: Owning, db: WriteSession) -> Response:
    form = await request.form()
    email, role = _field(form, "email"), _field(form, "role")
    try:
        await accounts.change_role(db, principal, principal.workspace_id, email, role)
    except AppError as exc:
        return await _refused(request, db, principal, exc)
    return _back(principal, email, still_owner=role == OWNER)


@router.post("/members/remove", dependencies=[SameOrigin])
async def remove_member(request: Request, principal: Owning, db: WriteSession) -> Response:
    """The person leaves the workspace; their sessions in it end at once."""
    email = _field(await request.form(), "email")
    try:
        await accounts.remove_member(db, principal, principal.workspace_id, email)
    except AppError as exc:
        return await _refused(request, db, principal, exc)
    return _back(principal, email, still_owner=False)


@router.post("/members/reset", dependencies=[SameOrigin])
async def reset_link(
    request: Request, principal: Owning, db: WriteSession, state: State,
    background: BackgroundTasks,
) -> Response:  # fmt: skip
    """A new one-time link for a member: a reset, or a new invite for one who never set a
    password. Refused (403) for a person who belongs to other workspaces too."""
    email = _field(await request.form(), "email")
    try:
        user, token, purpose = await accounts.reset_token_for(
            db, principal, principal.workspace_id, email, mailed=bool(state.settings.smtp_url)
        )
    except AppError as exc:
        return await _refused(request, db, principal, exc)
    return await _handed_page(request, db, principal, state, background, user.email, token, purpose)


# API keys


async def _keys_page(
    request: Request, db: AsyncSession, principal: Principal, status: int = 200, **context: Any
) -> Response:
    context.setdefault("values", {"name": "", "scopes": []})
    return _page(request, "keys.html", status, principal=principal,
                 keys=await auth.list_keys(db, principal), key_scopes=KEY_SCOPES,
                 **context)  # fmt: skip


def _key_name(text: str) -> str:
    if not 1 <= len(text) <= MAX_KEY_NAME:
        raise Invalid("invalid_name", f"a key needs a name of 1 to {MAX_KEY_NAME} characters")
    return text


def _key_scopes(chosen: list[str]) -> list[str]:
    """The scopes ticked: 422 when none or unknown (auth.create_key refuses, 403, any past
    the owner's own: a form is easily posted by hand)."""
    if not chosen:
        raise Invalid("invalid_scopes", "tick one scope at least", "scopes")
    try:
        return list(dict.fromkeys(auth.parse_scopes(" ".join(chosen))))
    except ValueError as exc:
        raise Invalid("invalid_scopes", str(exc), "scopes") from None


@router.get("/keys")
async def key_list(request: Request, principal: MayOwn, db: ReadSession) -> Response:
    return await _keys_page(request, db, principal)


@router.post("/keys", dependencies=[SameOrigin])
async def create_key(request: Request, principal: Owning, db: WriteSession) -> Response:
    """A new key of the workspace; its token is in this answer alone."""
    form = await request.form()
    chosen = [str(scope)[:40] for scope in form.getlist("scope")]
    values = {"name": _field(form, "name", MAX_KEY_NAME + 10), "scopes": chosen}
    workspace = await _workspace(db, principal)
    try:
        name, scopes = _key_name(values["name"]), _key_scopes(chosen)
        key, token = await auth.create_key(
            db, name=name, scopes=scopes, workspace=workspace.name, by=principal
        )
    except AppError as exc:  # nothing was written
        return await _keys_page(request, db, principal, exc.status, error=exc.message,
                                values=values)  # fmt: skip
    return await _keys_page(request, db, principal, created=key, token=token)


@router.post("/keys/{key_id}/revoke", dependencies=[SameOrigin])
async def revoke_key(key_id: KeyId, principal: Owning, db: WriteSession) -> Response:
    """Its calls stop at once; another workspace's key is a 404, as one that does not exist."""
    await auth.revoke_key(db, key_id, by=principal)
    return RedirectResponse("/dashboard/keys", status_code=303)


# The audit log


def _compact(details: dict[str, Any] | None) -> str:
    """An entry's details on one line: `role: editor, tags: ["a","b"]`."""
    return ", ".join(
        f"{name}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for name, value in (details or {}).items()
    )


@router.get("/audit")
async def audit_log(
    request: Request,
    principal: MayOwn,
    db: ReadSession,
    action: Annotated[str, Query(max_length=40)] = "",
    actor: Annotated[str, Query(max_length=300)] = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Who changed what in the workspace, newest first; `from` and `to` are whole UTC days
    (as /api/audit reads them)."""
    filters = {"action": action, "actor": actor.strip(), "from": from_, "to": to}
    page = {"principal": principal, "filters": filters, "kinds": AUDIT_KINDS}
    try:
        since, until = audit.moment_of(from_, "from"), audit.moment_of(to, "to")
    except ValueError as exc:
        return _page(request, "audit.html", 422, entries=[], error=str(exc), **page)
    rows = await audit.events(db, principal, since=since, until=until, action=action or None,
                              actor=filters["actor"] or None, limit=AUDIT_ROWS)  # fmt: skip
    entries = [(row, _compact(row.details)) for row in rows]
    return _page(request, "audit.html", entries=entries, more=len(rows) == AUDIT_ROWS, **page)
