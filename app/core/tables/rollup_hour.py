"""Clicks and visitors per link and hour (kept by the click writer)."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base, UTCDateTime


class RollupHour(Base):
    __tablename__ = "rollup_hours"
    __table_args__ = (Index("ix_rollup_hours_workspace_id_hour", "workspace_id", "hour"),)

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    is_bot: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)
    visitors: Mapped[int] = mapped_column(Integer)
