"""Who is asking: an API key's (or a dashboard session's) workspace and scopes, or the
operator at the command line."""

from dataclasses import dataclass
from typing import Any

SCOPES = ("links:read", "links:write", "stats:read", "admin")  # what a key may hold
DEFAULT_WORKSPACE = "default"  # made by the first migration; where keys go unless told


@dataclass(frozen=True)
class Principal:
    key_id: int
    workspace_id: int
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def may(self, *scopes: str) -> bool:
        """Whether the key holds every one of `scopes` (admin holds them all)."""
        return self.is_admin or set(scopes) <= self.scopes

    def sees(self, table: Any) -> list[Any]:
        """The conditions on `table` (any table with a `workspace_id`) for the rows this
        caller may see: its workspace's, or every one for admin."""
        return [] if self.is_admin else [table.workspace_id == self.workspace_id]

    @classmethod
    def operator(cls, workspace_id: int | None = None) -> "Principal":
        """The person at the command line: within one workspace, or over all of them (None)."""
        if workspace_id is None:
            return cls(key_id=0, workspace_id=0, scopes=frozenset({"admin"}))
        return cls(key_id=0, workspace_id=workspace_id, scopes=frozenset())
