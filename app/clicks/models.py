from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

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
    # The raw User-Agent and client hints the device fields came from (`user_agents.id`;
    # no foreign key: the writer inserts the User-Agent first, and rows are never deleted).
    user_agent_id: Mapped[int | None] = mapped_column(Integer)


class UserAgent(Base):
    """Each distinct raw User-Agent (with its client hints) clicks came with, kept once so
    that `tautan reenrich` can work their device fields out again after an update."""

    __tablename__ = "user_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(32), unique=True)  # of user_agent + hints
    user_agent: Mapped[str] = mapped_column(String(512))
    client_hints: Mapped[str] = mapped_column(String(512))


class VisitorSalt(Base):
    """The salt of one UTC day's visitor ids. Deleted two days later, after which that
    day's visitor ids can no longer be linked to an IP and User-Agent."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class VisitorDay(Base):
    """Each visitor seen on a link in a UTC day: a click whose row the writer inserts here
    is the visitor's first of the day (`new_visitor`). Writers in parallel agree on which
    through the primary key alone (insert or ignore), with no lock of their own. Rows go
    with the day's salt, after which their visitor ids mean nothing."""

    __tablename__ = "visitor_days"

    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # ids are never reused
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class LogOffset(Base):
    """How far the click log's segment `segment` is written (bytes), committed in the same
    transaction as its clicks: where a writer resumes, so that none is written twice."""

    __tablename__ = "click_log_offsets"

    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
