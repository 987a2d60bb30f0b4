"""One write to a workspace's links, domains, keys, members or templates: when, by whom
(a user's email, a key, or the command line), what, on which thing, and the fields given.
The actor is kept as text, so the entry outlives the user or key it names."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.tables.base import Base, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_workspace_id_ts", "workspace_id", "ts"),
        Index("ix_audit_events_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
