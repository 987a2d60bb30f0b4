"""A click, as the writer stores it (its fields: docs/design.md, "A click")."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for clicks.
ClickId = BigInteger().with_variant(Integer, "sqlite")


class Click(Base):
    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_link_id_ts", "link_id", "ts"),
        Index("ix_clicks_workspace_id_ts", "workspace_id", "ts"),
    )

    id: Mapped[int] = mapped_column(ClickId, primary_key=True)  # in order of receipt
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    visitor_id: Mapped[str] = mapped_column(String(32))
    # The visitor's first click on this link this UTC day: what unique visitors count.
    new_visitor: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_bot: Mapped[bool] = mapped_column(Boolean)
    bot_name: Mapped[str | None] = mapped_column(String(100))
    device_type: Mapped[str] = mapped_column(String(16))
    os: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(32))
    browser: Mapped[str | None] = mapped_column(String(64))
    browser_version: Mapped[str | None] = mapped_column(String(32))
    device_brand: Mapped[str | None] = mapped_column(String(64))
    device_model: Mapped[str | None] = mapped_column(String(100))
    in_app: Mapped[str | None] = mapped_column(String(32))
    referrer_url: Mapped[str | None] = mapped_column(String(2048))
    referrer_domain: Mapped[str | None] = mapped_column(String(255))
    referrer_source: Mapped[str] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(45))
    trigger: Mapped[str] = mapped_column(String(8))
    # The name of the link's rule or variant that chose the destination; null: its own url.
    route: Mapped[str | None] = mapped_column(String(64))
    # The raw User-Agent and client hints the device fields came from (`user_agents.id`;
    # no foreign key: the writer inserts the User-Agent first, and rows are never deleted).
    user_agent_id: Mapped[int | None] = mapped_column(Integer)
