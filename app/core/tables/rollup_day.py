"""Clicks and visitors per link, day and dimension value (kept by the click writer)."""

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tables.base import Base


class RollupDay(Base):
    __tablename__ = "rollup_days"
    __table_args__ = (
        Index("ix_rollup_days_workspace_id_dimension_day", "workspace_id", "dimension", "day"),
    )

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_bot: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)
    visitors: Mapped[int] = mapped_column(Integer)
