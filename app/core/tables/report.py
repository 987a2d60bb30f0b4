"""A client report: a read-only page of one campaign's or a set of links' KPIs, opened by
an unguessable link with no sign-in. The token is kept as its SHA-256 hash; the link is
shown once, to the owner who made it."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.tables.base import Base, UTCDateTime


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # What it shows: a campaign's links (utm_campaign), or else the links of report_links.
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(300))  # as the audit log names actors
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportLink(Base):
    """A link a report of a set of links shows."""

    __tablename__ = "report_links"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True, index=True
    )
