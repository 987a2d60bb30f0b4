"""KPI queries. Each answer comes from the rollups when they can give it exactly (the
range falls on whole UTC hours and no click attribute is filtered on), else from raw
clicks; both give the same numbers. Unique visitors are first clicks of a visitor on a
link in a UTC day, so they add up over time, links and dimension values like clicks."""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    case,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.clicks.rollups import NO_VALUE, ROLLUP_DIMENSIONS
from app.core.errors import AppError
from app.core.principal import Principal
from app.core.tables import Click, Link, LinkTag, RollupDay, RollupHour
from app.stats.periods import Interval, bucket_starts, is_hour_aligned

UNKNOWN, OTHER, NONE = "(unknown)", "(other)", "(none)"
# Dimensions whose missing value is a fact, not a gap: an ordinary browser is in no app,
# a person is no bot.
NONE_FOR_NULL = frozenset({"in_app", "bot_name"})
LINK_DIMENSIONS = {
    "link": Link.slug,
    "utm_source": Link.utm_source,
    "utm_medium": Link.utm_medium,
    "utm_campaign": Link.utm_campaign,
}
TIME_DIMENSIONS = ("hour_of_day", "weekday")
CLICK_DIMENSIONS = (*ROLLUP_DIMENSIONS, "region", "city", "device_model", "referrer_domain")
DIMENSIONS = (*CLICK_DIMENSIONS, *LINK_DIMENSIONS, *TIME_DIMENSIONS)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SLOT = timedelta(minutes=15)  # every time zone's offset is a multiple of this
LINKS_PER_LOOKUP = 10_000  # link ids per IN list


@dataclass(frozen=True)
class Match:
    """`ID,MY` matches either value; `-desktop` matches anything but."""

    values: tuple[str, ...]
    exclude: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "Match | None":
        if not text:
            return None
        exclude = text.startswith("-")
        values = tuple(v.strip() for v in text.removeprefix("-").split(",") if v.strip())
        return cls(values, exclude) if values else None

    def condition(self, column: Any) -> ColumnElement[bool]:
        if self.exclude:
            return or_(column.is_(None), column.not_in(self.values))
        return column.in_(self.values)


@dataclass(frozen=True)
class StatsQuery:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    tz: ZoneInfo
    links: tuple[str, ...] = ()
    tag: Match | None = None
    utm_campaign: Match | None = None
    utm_source: Match | None = None
    utm_medium: Match | None = None
    country: Match | None = None
    device: Match | None = None
    include_bots: bool = False

    @property
    def link_filters(self) -> list[ColumnElement[bool]]:
        filters = []
        if self.links:
            filters.append(Link.slug.in_(self.links))
        if self.tag:
            has_tag = Link.tag_rows.any(LinkTag.tag.in_(self.tag.values))
            filters.append(~has_tag if self.tag.exclude else has_tag)
        for name in ("utm_campaign", "utm_source", "utm_medium"):
            match: Match | None = getattr(self, name)
            if match:
                filters.append(match.condition(getattr(Link, name)))
        return filters

    @property
    def rollups_apply(self) -> bool:
        """Whether the hourly and daily rollups hold the answer exactly."""
        return (
            self.country is None
            and self.device is None
            and is_hour_aligned(self.start)
            and is_hour_aligned(self.end)
        )

    @property
    def whole_hour_zone(self) -> bool:
        """Whether local hours are UTC hours throughout (not so in Asia/Kolkata, say). The
        offset and the daylight saving shift are checked at both ends: a zone whose shift
        is half an hour (Australia/Lord_Howe) has half-hour offsets for part of the year."""
        hour = timedelta(hours=1)
        return all(
            (local.utcoffset() or timedelta()) % hour
            == (local.dst() or timedelta()) % hour
            == timedelta()
            for local in (self.start.astimezone(self.tz), self.end.astimezone(self.tz))
        )


@dataclass
class Count:
    clicks: int = 0
    visitors: int = 0

    def add(self, clicks: int, visitors: int) -> None:
        self.clicks += clicks
        self.visitors += visitors


async def check_links(session: AsyncSession, principal: Principal, slugs: Sequence[str]) -> None:
    """404 unless every slug names a link the key sees (its workspace's; every one for
    admin). A slug of another workspace gets the same answer as one that does not exist;
    the message names the unknown slugs."""
    wanted = list(dict.fromkeys(slugs))
    found: set[str] = set()
    own = [] if principal.is_admin else [Link.workspace_id == principal.workspace_id]
    for start in range(0, len(wanted), LINKS_PER_LOOKUP):  # asyncpg takes 32,767 parameters
        chunk = wanted[start : start + LINKS_PER_LOOKUP]
        found.update(await session.scalars(select(Link.slug).where(*own, Link.slug.in_(chunk))))
    unknown = [slug for slug in wanted if slug not in found]
    if unknown:
        names = ", ".join(f"'{slug}'" for slug in unknown)
        message = f"link{'s' if len(unknown) > 1 else ''} {names} not found"
        raise AppError(404, "not_found", message, {"field": "link", "unknown": unknown})


def _scope(table: Any, principal: Principal, q: StatsQuery) -> list[ColumnElement[bool]]:
    """Which links' clicks count: the key's workspace (all for admin), narrowed by the
    link filters."""
    own = [] if principal.is_admin else [Link.workspace_id == principal.workspace_id]
    if q.link_filters:
        # Only by link: the link's own index (not the workspace's) is the way in.
        return [table.link_id.in_(select(Link.id).where(*own, *q.link_filters))]
    return [] if principal.is_admin else [table.workspace_id == principal.workspace_id]


def _raw(
    principal: Principal,
    q: StatsQuery,
    *,
    bots: bool | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions on `clicks` in [start, end) (the query's range unless narrowed); `bots`
    None keeps both humans and bots."""
    start, end = max(start or q.start, q.start), min(end or q.end, q.end)
    conditions = [*_scope(Click, principal, q), Click.ts >= start, Click.ts < end]
    if q.country:
        conditions.append(q.country.condition(Click.country))
    if q.device:
        conditions.append(q.device.condition(Click.device_type))
    if bots is not None:
        conditions.append(Click.is_bot.is_(bots))
    return conditions


NEW_VISITORS = func.sum(case((Click.new_visitor, 1), else_=0))


async def _per_link(session: AsyncSession, principal: Principal, q: StatsQuery) -> Sequence[Any]:
    """(link_id, is_bot, clicks, visitors) rows, humans and bots both."""
    query: Select[Any]
    if q.rollups_apply:
        query = select(
            RollupHour.link_id,
            RollupHour.is_bot,
            func.sum(RollupHour.clicks),
            func.sum(RollupHour.visitors),
        ).where(
            *_scope(RollupHour, principal, q), RollupHour.hour >= q.start, RollupHour.hour < q.end
        )
        query = query.group_by(RollupHour.link_id, RollupHour.is_bot)
    else:
        query = select(Click.link_id, Click.is_bot, func.count(), NEW_VISITORS)
        query = query.where(*_raw(principal, q, bots=None)).group_by(Click.link_id, Click.is_bot)
    return (await session.execute(query)).all()


async def summary(session: AsyncSession, principal: Principal, q: StatsQuery) -> dict[str, Any]:
    rows = await _per_link(session, principal, q)
    counted = [r for r in rows if q.include_bots or not r[1]]
    clicks = sum(r[2] for r in counted)
    first, last = await _first_and_last(session, principal, q) if clicks else (None, None)
    return {
        "clicks": clicks,
        "unique_visitors": sum(r[3] for r in counted),
        "bot_clicks": sum(r[2] for r in rows if r[1]),
        "links": len({r[0] for r in counted}),
        "first_click": first,
        "last_click": last,
    }


async def _first_and_last(
    session: AsyncSession, principal: Principal, q: StatsQuery
) -> tuple[datetime | None, datetime | None]:
    """The first and last counted click. The rollups tell in which hours they fall, so
    only those two hours of raw clicks are read; if those were purged, the hour it is."""
    bots = None if q.include_bots else False
    first_hour = last_hour = None
    if q.rollups_apply:
        conditions = [
            *_scope(RollupHour, principal, q),
            RollupHour.hour >= q.start,
            RollupHour.hour < q.end,
        ]
        if bots is not None:
            conditions.append(RollupHour.is_bot.is_(False))
        hours = select(func.min(RollupHour.hour), func.max(RollupHour.hour)).where(*conditions)
        first_hour, last_hour = (await session.execute(hours)).one()
    hour = timedelta(hours=1)

    def at(moment: datetime | None) -> Select[Any]:
        window = {"start": moment, "end": moment + hour} if moment else {}
        return select(Click.ts).where(*_raw(principal, q, bots=bots, **window))

    return (
        await session.scalar(at(first_hour).order_by(Click.ts).limit(1)) or first_hour,
        await session.scalar(at(last_hour).order_by(Click.ts.desc()).limit(1)) or last_hour,
    )


def _slot_of(session: AsyncSession) -> ColumnElement[int]:
    """The 15-minute UTC slot of a click, as seconds since the epoch divided by 900."""
    if session.get_bind().dialect.name == "sqlite":
        seconds: ColumnElement[Any] = cast(func.strftime("%s", Click.ts), Integer)
    else:
        seconds = cast(func.floor(func.extract("epoch", Click.ts)), BigInteger)
    return seconds // int(SLOT.total_seconds())  # integer division: one group per slot


async def _slots(
    session: AsyncSession, principal: Principal, q: StatsQuery, *, rollups: bool
) -> list[tuple[datetime, int, int]]:
    """Clicks and visitors per UTC hour (rollups) or per 15 minutes (raw clicks)."""
    bots = None if q.include_bots else False
    if rollups:
        conditions = [
            *_scope(RollupHour, principal, q),
            RollupHour.hour >= q.start,
            RollupHour.hour < q.end,
        ]
        if bots is not None:
            conditions.append(RollupHour.is_bot.is_(False))
        query = select(RollupHour.hour, func.sum(RollupHour.clicks), func.sum(RollupHour.visitors))
        rows = await session.execute(query.where(*conditions).group_by(RollupHour.hour))
        return [(hour, clicks, visitors) for hour, clicks, visitors in rows]
    slot = _slot_of(session).label("slot")
    query = select(slot, func.count(), NEW_VISITORS).where(*_raw(principal, q, bots=bots))
    rows = await session.execute(query.group_by(slot))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [(epoch + int(n) * SLOT, clicks, visitors) for n, clicks, visitors in rows]


async def timeseries(
    session: AsyncSession, principal: Principal, q: StatsQuery, interval: Interval
) -> list[dict[str, Any]]:
    starts = bucket_starts(q.start, q.end, interval, q.tz)
    rollups = q.rollups_apply and all(is_hour_aligned(s) for s in starts)
    counts = [Count() for _ in starts]
    for slot, clicks, visitors in await _slots(session, principal, q, rollups=rollups):
        counts[bisect_right(starts, slot) - 1].add(clicks, visitors)
    return [
        {"start": start.isoformat(), "clicks": c.clicks, "unique_visitors": c.visitors}
        for start, c in zip(starts, counts, strict=True)
    ]


async def _by_click_attribute(
    session: AsyncSession, principal: Principal, q: StatsQuery, dimension: str
) -> dict[str | None, Count]:
    counts: dict[str | None, Count] = defaultdict(Count)
    edges = [(q.start, q.end)]  # what raw clicks must answer
    first_day = (q.start + timedelta(days=1) - timedelta(microseconds=1)).date()
    last_day = q.end.date()  # exclusive
    if q.rollups_apply and dimension in ROLLUP_DIMENSIONS and first_day < last_day:
        conditions = [
            *_scope(RollupDay, principal, q),
            RollupDay.dimension == dimension,
            RollupDay.day >= first_day,
            RollupDay.day < last_day,
        ]
        if not q.include_bots:
            conditions.append(RollupDay.is_bot.is_(False))
        query = select(RollupDay.value, func.sum(RollupDay.clicks), func.sum(RollupDay.visitors))
        for value, clicks, visitors in await session.execute(
            query.where(*conditions).group_by(RollupDay.value)
        ):
            counts[value].add(clicks, visitors)
        day_start = datetime.combine(first_day, datetime.min.time(), UTC)
        day_end = datetime.combine(last_day, datetime.min.time(), UTC)
        edges = [(q.start, day_start), (day_end, q.end)]
    column = getattr(Click, dimension)
    for start, end in edges:  # one query each, so that each reads only its own range
        if start < end:
            query = select(column, func.count(), NEW_VISITORS).where(
                *_raw(principal, q, bots=None if q.include_bots else False, start=start, end=end)
            )
            for value, clicks, visitors in await session.execute(query.group_by(column)):
                counts[value].add(clicks, visitors)
    return counts


async def _by_link_attribute(
    session: AsyncSession, principal: Principal, q: StatsQuery, dimension: str
) -> dict[str | None, Count]:
    per_link: dict[int, Count] = defaultdict(Count)
    for link_id, is_bot, clicks, visitors in await _per_link(session, principal, q):
        if q.include_bots or not is_bot:
            per_link[link_id].add(clicks, visitors)
    column = LINK_DIMENSIONS[dimension]
    ids = list(per_link)
    values: dict[int, str | None] = {}
    for start in range(0, len(ids), LINKS_PER_LOOKUP):  # asyncpg takes 32,767 parameters
        lookup = select(Link.id, column).where(Link.id.in_(ids[start : start + LINKS_PER_LOOKUP]))
        values.update((await session.execute(lookup)).all())
    counts: dict[str | None, Count] = defaultdict(Count)
    for link_id, count in per_link.items():
        counts[values.get(link_id)].add(count.clicks, count.visitors)
    return counts


async def _by_time(
    session: AsyncSession, principal: Principal, q: StatsQuery, dimension: str
) -> dict[str | None, Count]:
    counts: dict[str | None, Count] = defaultdict(Count)
    rollups = q.rollups_apply and q.whole_hour_zone
    for slot, clicks, visitors in await _slots(session, principal, q, rollups=rollups):
        local = slot.astimezone(q.tz)
        value = str(local.hour) if dimension == "hour_of_day" else WEEKDAYS[local.weekday()]
        counts[value].add(clicks, visitors)
    return counts


async def breakdown(
    session: AsyncSession, principal: Principal, q: StatsQuery, dimension: str, limit: int
) -> list[dict[str, Any]]:
    """Rows largest first; nulls form `(unknown)` (`(none)` for in_app and bot_name), rows
    past `limit` are summed into `(other)`, so the rows always add up to the summary's
    clicks."""
    if dimension in LINK_DIMENSIONS:
        counts = await _by_link_attribute(session, principal, q, dimension)
    elif dimension in TIME_DIMENSIONS:
        counts = await _by_time(session, principal, q, dimension)
    else:
        counts = await _by_click_attribute(session, principal, q, dimension)
    merged: dict[str, Count] = defaultdict(Count)
    missing = NONE if dimension in NONE_FOR_NULL else UNKNOWN
    for value, count in counts.items():
        label = missing if value in (None, NO_VALUE) else str(value)
        merged[label].add(count.clicks, count.visitors)
    ranked = sorted(
        ((v, c) for v, c in merged.items() if c.clicks), key=lambda vc: (-vc[1].clicks, vc[0])
    )
    if len(ranked) > limit:
        rest = Count()
        for _, count in ranked[limit:]:
            rest.add(count.clicks, count.visitors)
        ranked = [*ranked[:limit], (OTHER, rest)]
    total = sum(c.clicks for _, c in ranked) or 1
    return [
        {
            "value": value,
            "clicks": c.clicks,
            "unique_visitors": c.visitors,
            "share": round(c.clicks / total, 4),
        }
        for value, c in ranked
    ]


CSV_COLUMNS = (
    "id", "ts", "link", "visitor_id", "new_visitor", "is_bot", "bot_name", "device_type", "os",
    "os_version", "browser", "browser_version", "device_brand", "device_model", "in_app",
    "referrer_url", "referrer_domain", "referrer_source", "country", "region", "city",
    "latitude", "longitude", "timezone", "language", "ip", "trigger",
)  # fmt: skip


async def raw_clicks(
    session: AsyncSession, principal: Principal, q: StatsQuery
) -> AsyncIterator[Sequence[Any]]:
    """Every click the filters select, oldest first, as rows in CSV_COLUMNS order."""
    columns = [Link.slug if name == "link" else getattr(Click, name) for name in CSV_COLUMNS]
    query = (
        select(*columns)
        .join(Link, Link.id == Click.link_id)
        .where(*_raw(principal, q, bots=None if q.include_bots else False))
        .order_by(Click.id)
        .execution_options(yield_per=1000)
    )
    async for partition in (await session.stream(query)).partitions():
        for row in partition:
            yield row
