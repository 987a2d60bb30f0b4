"""Who is asking: an API key, a signed-in user with a role in one workspace, or the
operator at the command line; what they may do (scopes), and how the audit log names
them (`actor`)."""

from dataclasses import dataclass
from typing import Any

# What only a workspace's owners may do: its members, domains, UTM templates and audit
# log (and, in the dashboard, its keys). The owner role holds it, and so may a key.
OWNER = "owner"
SCOPES = ("links:read", "links:write", "stats:read", OWNER, "admin")  # what a key may hold
DEFAULT_WORKSPACE = "default"  # made by the first migration; where keys go unless told
ROLES = ("viewer", "editor", "owner")  # each may do what the one before it may, and more
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"links:read", "stats:read"}),
    "editor": frozenset({"links:read", "links:write", "stats:read"}),
    "owner": frozenset({"links:read", "links:write", "stats:read", OWNER}),
}
OPERATOR = "command line"


@dataclass(frozen=True)
class Principal:
    workspace_id: int
    scopes: frozenset[str]
    actor: str = OPERATOR  # as the audit log names them: an email, or a key
    key_id: int | None = None
    user_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def rate_limited_as(self) -> str | None:
        """Whose writes count against the per-caller limit (None: the operator, unlimited)."""
        if self.key_id is not None:
            return f"key {self.key_id}"
        return None if self.user_id is None else f"user {self.user_id}"

    def may(self, *scopes: str) -> bool:
        """Whether the caller holds every one of `scopes` (admin holds them all)."""
        return self.is_admin or set(scopes) <= self.scopes

    def sees(self, table: Any) -> list[Any]:
        """The conditions on `table` (any table with a `workspace_id`) for the rows this
        caller may see: its workspace's, or every one for admin."""
        return [] if self.is_admin else [table.workspace_id == self.workspace_id]

    @classmethod
    def of_user(cls, user_id: int, email: str, workspace_id: int, role: str) -> "Principal":
        return cls(workspace_id, ROLE_SCOPES[role], actor=email, user_id=user_id)

    @classmethod
    def operator(cls, workspace_id: int | None = None) -> "Principal":
        """The person at the command line: within one workspace, or over all of them (None)."""
        if workspace_id is None:
            return cls(workspace_id=0, scopes=frozenset({"admin"}))
        return cls(workspace_id=workspace_id, scopes=ROLE_SCOPES["owner"])
