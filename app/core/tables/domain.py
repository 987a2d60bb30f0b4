"""A branded domain: a host of a workspace's own that its short links live on."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.tables.base import Base, UTCDateTime

MAX_HOST_LENGTH = 253  # of a DNS name


class Domain(Base):
    """`host` as browsers send it (lower case, IDN in punycode, no trailing dot, no port);
    it belongs to one workspace. `root_url` answers `GET /` on it, `not_found_url` a slug it
    does not have."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    host: Mapped[str] = mapped_column(String(MAX_HOST_LENGTH), unique=True)
    root_url: Mapped[str | None] = mapped_column(Text)
    not_found_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
