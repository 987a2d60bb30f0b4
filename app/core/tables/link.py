"""A short link: its slug, destination, campaign tags, rules and counters."""

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import utcnow
from app.core.tables.base import Base, UTCDateTime
from app.core.tables.domain import MAX_HOST_LENGTH

if TYPE_CHECKING:
    from app.core.tables.link_tag import LinkTag


UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class Link(Base):
    __tablename__ = "links"
    # Never reuse the id of a deleted link on SQLite: clicks still on their way to it
    # (another process's cache, a spool) would land on the link that took it.
    # A slug is unique on its domain: the same slug on two domains is two links.
    __table_args__ = (UniqueConstraint("domain", "slug"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    # The host of its branded domain (app/core/tables/domain.py), or "" for the base host
    # (TAUTAN_BASE_URL's, whatever it is now). A link never moves: printed QR codes hold it.
    domain: Mapped[str] = mapped_column(String(MAX_HOST_LENGTH), default="", server_default="")
    slug: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(String(500))
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255), index=True)
    utm_term: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    redirect_code: Mapped[int] = mapped_column(Integer, default=302)
    forward_query: Mapped[bool] = mapped_column(default=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_clicks: Mapped[int | None] = mapped_column(Integer)
    fallback_url: Mapped[str | None] = mapped_column(Text)
    og_title: Mapped[str | None] = mapped_column(String(300))
    og_description: Mapped[str | None] = mapped_column(String(1000))
    og_image: Mapped[str | None] = mapped_column(Text)
    # Targeting (app/redirect/targeting.py): rules by device, OS, country and language, as
    # the API takes them ([{name, if, url}]); A/B variants ([{name, url, weight}]); the
    # argon2 hash of the link's password.
    rules: Mapped[list[dict] | None] = mapped_column(JSON)
    variants: Mapped[list[dict] | None] = mapped_column(JSON)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # Kept up to date by the click writer, for max_clicks and listings: human clicks,
    # their unique visitors (per UTC day, summed), and bot and preview fetches.
    clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Redirects served toward max_clicks, counted as they are served (only for links
    # that have a max_clicks), so every process sees the same count.
    served_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tag_rows: Mapped[list["LinkTag"]] = relationship(lazy="selectin", cascade="all, delete-orphan")

    @property
    def tags(self) -> list[str]:
        return sorted(row.tag for row in self.tag_rows)

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None
