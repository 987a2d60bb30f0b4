"""`tautan reenrich`: the device and bot fields of stored clicks worked out again from
their raw User-Agents and client hints (kept once each in `user_agents`), after the
reference device database or a parsing library was updated; then the rollups and link
counters of every day whose clicks changed.

Day by day, one transaction each, holding the click writers' lock alone for that long only: the
writers go on between two days. Days whose raw clicks were purged keep their rollups."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.clicks.enrich.enricher import DEVICE_FIELDS, device_fields
from app.clicks.rollups import ROLLUP_DIMENSIONS, update_rollups
from app.clicks.writer import ADD_CLICKS
from app.core.database import create_sessionmaker, execute_many
from app.core.dialect import lock_writes
from app.core.tables import Click, RollupDay, RollupHour, UserAgent

LOOKUP_SLICE = 1000  # ids per IN (asyncpg takes at most 32,767 parameters)
ROLLUP_SLICE = 20_000  # clicks read at a time when a day's rollups are counted again
CLICKS = Click.__table__


@dataclass
class Reenriched:
    user_agents: int = 0  # distinct User-Agents of the clicks looked at
    changed: int = 0  # of those, how many now give other device or bot fields
    clicks: int = 0  # clicks updated
    days: int = 0  # days whose rollups were counted again


async def reenrich(
    engine: AsyncEngine,
    since: date | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Reenriched:
    """Clicks received from `since` (a UTC day; None: all) on. `progress(days done, days)`."""
    start = datetime.combine(since, time(), UTC) if since else datetime(1970, 1, 1, tzinfo=UTC)
    result = Reenriched()
    async with create_sessionmaker(engine, deferred=True)() as session:  # no write lock
        changed, result.user_agents = await _changed_user_agents(session, start)
        first, last = await _span(session, sorted(changed), start)
    result.changed = len(changed)
    if not changed or first is None or last is None:
        return result
    days = [first.date() + timedelta(n) for n in range((last.date() - first.date()).days + 1)]
    sessionmaker = create_sessionmaker(engine)
    for done, day in enumerate(days, 1):
        async with sessionmaker() as session, session.begin():
            result.clicks += await _redo_day(session, day, changed, start)
        result.days += 1
        progress(done, len(days))
    return result


async def _changed_user_agents(
    session: AsyncSession, start: datetime
) -> tuple[dict[int, dict[str, Any]], int]:
    """The new fields of each User-Agent whose clicks since `start` would now get others,
    and how many User-Agents were looked at."""
    stored = select(Click.user_agent_id, *(CLICKS.c[f] for f in DEVICE_FIELDS)).where(
        Click.user_agent_id.is_not(None), Click.ts >= start
    )
    as_stored: dict[int, set[tuple[Any, ...]]] = {}
    for row in await session.execute(stored.distinct()):
        as_stored.setdefault(row[0], set()).add(tuple(row[1:]))
    ids = sorted(as_stored)
    changed = {}
    for offset in range(0, len(ids), LOOKUP_SLICE):
        query = select(UserAgent.id, UserAgent.user_agent, UserAgent.client_hints).where(
            UserAgent.id.in_(ids[offset : offset + LOOKUP_SLICE])
        )
        for id_, user_agent, client_hints in await session.execute(query):
            fields = device_fields(user_agent, client_hints)
            if as_stored[id_] != {tuple(fields[f] for f in DEVICE_FIELDS)}:
                changed[id_] = fields
    return changed, len(ids)


async def _span(
    session: AsyncSession, ids: list[int], start: datetime
) -> tuple[datetime | None, datetime | None]:
    """When the first and the last click since `start` of these User-Agents came."""
    first = last = None
    for offset in range(0, len(ids), LOOKUP_SLICE):
        query = select(func.min(Click.ts), func.max(Click.ts)).where(
            Click.user_agent_id.in_(ids[offset : offset + LOOKUP_SLICE]), Click.ts >= start
        )
        low, high = (await session.execute(query)).one()
        if low is not None:
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
    return first, last


async def _redo_day(
    session: AsyncSession, day: date, changed: dict[int, dict[str, Any]], start: datetime
) -> int:
    """Update the day's clicks of the changed User-Agents, count the day's rollups again,
    and move the link counters by what changed. Returns the clicks updated."""
    # The click writers' lock, alone: no click of this day is written while its rollups
    # are counted again.
    await lock_writes(session, alone=True)
    begin = max(datetime.combine(day, time(), UTC), start)
    end = datetime.combine(day + timedelta(1), time(), UTC)
    # The day's clicks of those User-Agents, then each updated by its id (clicks have no
    # index on user_agent_id: the writer would pay for one on every click).
    ids = sorted(changed)
    found: list[tuple[int, int]] = []
    for offset in range(0, len(ids), LOOKUP_SLICE):
        query = select(Click.id, Click.user_agent_id).where(
            Click.user_agent_id.in_(ids[offset : offset + LOOKUP_SLICE]),
            Click.ts >= begin,
            Click.ts < end,
        )
        found += [(click, agent) for click, agent in await session.execute(query)]
    statement = (
        update(CLICKS)
        # ts as well: on PostgreSQL, only this day's partition is looked in.
        .where(CLICKS.c.id == bindparam("click"), CLICKS.c.ts >= begin, CLICKS.c.ts < end)
        .values({f: bindparam(f"new_{f}") for f in DEVICE_FIELDS})
    )
    rows = [
        {"click": click, **{f"new_{f}": changed[agent][f] for f in DEVICE_FIELDS}}
        for click, agent in found
    ]
    await execute_many(session, statement, rows)
    updated = len(found)
    before = await _totals(session, day)
    await session.execute(
        delete(RollupHour).where(
            RollupHour.hour >= datetime.combine(day, time(), UTC), RollupHour.hour < end
        )
    )
    await session.execute(delete(RollupDay).where(RollupDay.day == day))
    columns = [
        CLICKS.c[c] for c in ("id", "link_id", "workspace_id", "ts", "is_bot", "new_visitor")
    ]
    last_id = 0
    while True:  # a page of the day's clicks at a time, in id order
        query = (
            select(*columns, *(CLICKS.c[d] for d in ROLLUP_DIMENSIONS))
            .where(CLICKS.c.ts >= datetime.combine(day, time(), UTC), CLICKS.c.ts < end)
            .where(CLICKS.c.id > last_id)
            .order_by(CLICKS.c.id)
            .limit(ROLLUP_SLICE)
        )
        rows = [dict(row) for row in (await session.execute(query)).mappings()]
        if not rows:
            break
        await update_rollups(session, rows)
        last_id = rows[-1]["id"]
    after = await _totals(session, day)
    counters = [
        {
            "link": link,
            "human": after[link, False, "clicks"] - before[link, False, "clicks"],
            "visitors": after[link, False, "visitors"] - before[link, False, "visitors"],
            "bots": after[link, True, "clicks"] - before[link, True, "clicks"],
        }
        for link in sorted({key[0] for key in before | after})
    ]
    if counters:
        await session.execute(ADD_CLICKS, counters)
    return updated


async def _totals(session: AsyncSession, day: date) -> Counter[tuple[int, bool, str]]:
    """Clicks and visitors of the day per link and bot-or-not, from the hourly rollup."""
    start = datetime.combine(day, time(), UTC)
    query = (
        select(RollupHour.link_id, RollupHour.is_bot, func.sum(RollupHour.clicks), func.sum(RollupHour.visitors))
        .where(RollupHour.hour >= start, RollupHour.hour < start + timedelta(1))
        .group_by(RollupHour.link_id, RollupHour.is_bot)
    )  # fmt: skip
    totals: Counter[tuple[int, bool, str]] = Counter()
    for link, is_bot, clicks, visitors in await session.execute(query):
        totals[link, bool(is_bot), "clicks"] = int(clicks)
        totals[link, bool(is_bot), "visitors"] = int(visitors)
    return totals
