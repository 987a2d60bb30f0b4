from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.accounts.service import MAX_EMAIL

Role = Literal["viewer", "editor", "owner"]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_EMAIL)]
WorkspaceName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00]*$"),
]


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: WorkspaceName


class WorkspaceOut(BaseModel):
    id: int
    name: str
    created_at: datetime


class WorkspaceList(BaseModel):
    workspaces: list[WorkspaceOut]


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberOut(BaseModel):
    email: str
    role: Role
    status: Literal["active", "invited"] = Field(description="invited: has not set a password yet")
    added_at: datetime


class MemberAdded(MemberOut):
    invite_url: str | None = Field(
        None,
        description="for a person with no password yet: a one-time link to set it, valid "
        "7 days; null when it is mailed (TAUTAN_SMTP_URL), when the person has a password, "
        "or when the person belongs to other workspaces too (an owner may not hold it)",
    )
    mailed: bool = Field(
        False, description="whether the invite is mailed to the person (sent after this answer)"
    )


class MemberList(BaseModel):
    members: list[MemberOut]


class AuditEntry(BaseModel):
    ts: datetime
    workspace_id: int
    actor: str = Field(description="a user's email, `key ID (NAME)`, or `command line`")
    action: str = Field(description="e.g. link.create, member.update, key.revoke")
    target: str = Field(description="the slug, host, email, key or template acted on")
    details: dict[str, object] | None
