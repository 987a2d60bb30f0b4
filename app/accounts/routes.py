"""`/api/workspaces`: workspaces (admin keys) and their members (keys with the scope
`owner` for their own workspace, admin keys for any; people use the dashboard's Members
page, over the same service). `/api/audit`: who changed what."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Response

from app.accounts import mail, service
from app.accounts.schemas import (
    AuditEntry,
    MemberAdded,
    MemberCreate,
    MemberList,
    MemberOut,
    MemberUpdate,
    WorkspaceCreate,
    WorkspaceList,
    WorkspaceOut,
)
from app.api.deps import ReadSession, State, WriteSession, writes_of
from app.audit import service as audit
from app.auth import require_scopes
from app.core.errors import Invalid, NotFound
from app.core.principal import OWNER, Principal
from app.links.schemas import LARGEST_INTEGER

router = APIRouter(tags=["people"])

Admin = Annotated[Principal, Depends(require_scopes("admin"))]
AdminWrites = Annotated[Principal, Depends(writes_of(require_scopes("admin")))]
Owner = Annotated[Principal, Depends(require_scopes(OWNER))]
OwnerWrites = Annotated[Principal, Depends(writes_of(require_scopes(OWNER)))]
MEMBER = "/api/workspaces/{workspace_id}/members/{email}"
# A workspace's id, as the database can hold it (a larger one names no workspace either).
WorkspaceId = Annotated[int, Path(ge=1, le=LARGEST_INTEGER)]
Email = Annotated[str, Path(max_length=300)]


@router.get("/api/workspaces", response_model=WorkspaceList)
async def list_workspaces(_: Admin, session: ReadSession) -> WorkspaceList:
    workspaces = await service.list_workspaces(session)
    return WorkspaceList(workspaces=[_workspace(w) for w in workspaces])


@router.post("/api/workspaces", status_code=201, response_model=WorkspaceOut)
async def create_workspace(
    body: WorkspaceCreate, principal: AdminWrites, session: WriteSession
) -> WorkspaceOut:
    """A new workspace (a client of an agency); 409 when the name is taken. Add its first
    owner with POST /api/workspaces/{id}/members."""
    return _workspace(await service.create_workspace(session, principal, body.name))


def _workspace(workspace: object) -> WorkspaceOut:
    return WorkspaceOut.model_validate(workspace, from_attributes=True)


@router.get("/api/workspaces/{workspace_id}/members", response_model=MemberList)
async def list_members(
    workspace_id: WorkspaceId, principal: Owner, session: ReadSession
) -> MemberList:
    members = await service.list_members(session, principal, workspace_id)
    return MemberList(members=[MemberOut(**vars(m)) for m in members])


@router.post("/api/workspaces/{workspace_id}/members", status_code=201, response_model=MemberAdded)
async def add_member(
    workspace_id: WorkspaceId, body: MemberCreate, principal: OwnerWrites, session: WriteSession,
    state: State, background: BackgroundTasks,
) -> MemberAdded:  # fmt: skip
    """Adds a person with a role; a person new to Tautan is made a user, and gets a
    one-time link to set a password: mailed once this answer is sent when TAUTAN_SMTP_URL
    is set (`mailed`), else given here (`invite_url`). 409 when already a member, or when
    the person's account was set up through another workspace's owner (`account_bound`;
    an admin key may add it, and its password is then set again)."""
    mailed = bool(state.settings.smtp_url)
    member, token = await service.add_member(
        session, principal, workspace_id, body.email, body.role, mailed=mailed
    )
    workspace = await service.managed_workspace(session, principal, workspace_id)
    url = mail.hand_over(
        state.settings, background.add_task, member.email, token, "invite", workspace.name
    )
    return MemberAdded(**vars(member), invite_url=url, mailed=token is not None and mailed)


@router.patch(MEMBER, response_model=MemberOut)
async def update_member(
    workspace_id: WorkspaceId, email: Email, body: MemberUpdate, principal: OwnerWrites,
    session: WriteSession,
) -> MemberOut:  # fmt: skip
    """Changes the member's role; 409 when it would leave the workspace without an owner."""
    member = await service.change_role(session, principal, workspace_id, email, body.role)
    return MemberOut(**vars(member))


@router.delete(MEMBER, status_code=204)
async def remove_member(
    workspace_id: WorkspaceId,
    email: Email,
    principal: OwnerWrites,
    session: WriteSession,
) -> Response:
    """The person leaves the workspace (their user stays, for their other workspaces);
    their dashboard sessions in it end. 409 for the last owner."""
    await service.remove_member(session, principal, workspace_id, email)
    return Response(status_code=204)


@router.get("/api/audit", response_model=list[AuditEntry])
async def audit_log(
    principal: Owner,
    session: ReadSession,
    workspace: Annotated[int | None, Query(ge=1, le=LARGEST_INTEGER)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntry]:
    """Who changed what in the workspace, newest first: writes to links, domains, keys,
    members and UTM templates. `workspace` (an id) narrows an admin key's view; `action`
    is an action (`link.update`) or a kind (`link`). `from` and `to` are ISO dates (whole
    days, UTC, both ends inclusive) or datetimes (UTC when no offset is given)."""
    if workspace is not None and not principal.is_admin and workspace != principal.workspace_id:
        raise NotFound("workspace")
    try:
        since, until = audit.moment_of(from_, "from"), audit.moment_of(to, "to")
    except ValueError as exc:
        raise Invalid("invalid_parameter", str(exc)) from None
    rows = await audit.events(session, principal, workspace_id=workspace, since=since,
                              until=until, action=action, actor=actor, limit=limit)  # fmt: skip
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]
