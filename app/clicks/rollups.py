"""Rollups: click counts the writer keeps per link and hour, and per link, day and
dimension value, in the same transaction as the clicks. Dashboards read these instead of
scanning raw clicks. `visitors` counts first clicks of a visitor on a link in a UTC day,
so visitors add up over hours, days, links and dimension values like clicks do."""

import asyncio
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, execute_many, upsert_insert

# The click attributes with few values, which the daily rollup counts. Attributes with
# many (region, city, device_model, referrer_domain) would add about a rollup row per
# click, so their breakdowns read raw clicks instead. Link attributes (utm_*, link) and
# time (hour_of_day, weekday) come from the hourly rollup.
ROLLUP_DIMENSIONS = (
    "country", "device_type", "os", "browser", "device_brand", "referrer_source", "in_app",
    "trigger", "language", "bot_name",
)  # fmt: skip
NO_VALUE = ""  # a null attribute, kept as a key (primary keys cannot hold NULL)
AGGREGATE_SLICE = 250  # clicks counted between two turns of the event loop


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


async def update_rollups(session: AsyncSession, clicks: list[dict[str, Any]]) -> None:
    """Add the given click rows (as inserted, with `new_visitor`) to both rollups."""
    hours: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    days: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for start in range(0, len(clicks), AGGREGATE_SLICE):
        for click in clicks[start : start + AGGREGATE_SLICE]:
            ts, visitor = click["ts"], int(click["new_visitor"])
            link, workspace, bot = click["link_id"], click["workspace_id"], click["is_bot"]
            count = hours[(link, ts.replace(minute=0, second=0, microsecond=0), bot, workspace)]
            count[0] += 1
            count[1] += visitor
            day = ts.date()
            for dimension in ROLLUP_DIMENSIONS:
                value = click[dimension]
                key = (
                    link,
                    dimension,
                    day,
                    bot,
                    NO_VALUE if value is None else str(value),
                    workspace,
                )
                count = days[key]
                count[0] += 1
                count[1] += visitor
        await asyncio.sleep(0)  # let waiting redirects run between slices
    await _upsert(session, RollupHour, ("link_id", "hour", "is_bot", "workspace_id"), hours)
    await _upsert(
        session, RollupDay, ("link_id", "dimension", "day", "is_bot", "value", "workspace_id"), days
    )


async def _upsert(
    session: AsyncSession, model: type[Base], keys: tuple[str, ...], counts: dict[tuple, list[int]]
) -> None:
    if not counts:
        return
    table = model.__table__
    statement = upsert_insert(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=[k for k in keys if k != "workspace_id"],
        set_={
            "clicks": table.c.clicks + statement.excluded.clicks,
            "visitors": table.c.visitors + statement.excluded.visitors,
        },
    )
    # In key order, as every writer does: two writers that lock the same rows in opposite
    # orders deadlock on PostgreSQL.
    rows = [
        {**dict(zip(keys, key, strict=True)), "clicks": c, "visitors": v}
        for key, (c, v) in sorted(counts.items())
    ]
    await execute_many(session, statement, rows)
