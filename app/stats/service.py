"""KPI queries. Each answer comes from the rollups when they can give it exactly (the
range falls on whole UTC hours and no click attribute is filtered on), else from raw
clicks; both give the same numbers. Unique visitors are first clicks of a visitor on a
link in a UTC day, so they add up over time, links and dimension values like clicks."""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.clicks.rollups import NO_VALUE, ROLLUP_DIMENSIONS
from app.core.dialect import epoch_seconds
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
# Each click counts once in the daily rollup of each dimension: this one gives a link's day.
EVERY_CLICK_DIMENSION = "device_type"
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
    for start in range(0, len(wanted), LINKS_PER_LOOKUP):  # asyncpg takes 32,767 parameters
        chunk = wanted[start : start + LINKS_PER_LOOKUP]
        visible = select(Link.slug).where(*principal.sees(Link), Link.slug.in_(chunk))
        found.update(await session.scalars(visible))
    unknown = [slug for slug in wanted if slug not in found]
    if unknown:
        names = ", ".join(f"'{slug}'" for slug in unknown)
        message = f"link{'s' if len(unknown) > 1 else ''} {names} not found"
        raise AppError(404, "not_found", message, {"field": "link", "unknown": unknown})


@dataclass(frozen=True)
class Scope:
    """Which clicks a stats request counts, built once from the caller and the query: those
    of the caller's links (its workspace's, every one for admin) that the link filters
    keep, in the query's range, of humans only unless the query includes bots."""

    principal: Principal
    q: StatsQuery

    @property
    def bots(self) -> bool | None:
        """The `is_bot` value counted, None for both."""
        return None if self.q.include_bots else False

    def of(self, table: Any) -> list[ColumnElement[bool]]:
        """Conditions on `table` (clicks or a rollup) for the links in scope."""
        if self.q.link_filters:
            # Only by link: the link's own index (not the workspace's) is the way in.
            links = select(Link.id).where(*self.principal.sees(Link), *self.q.link_filters)
            return [table.link_id.in_(links)]
        return self.principal.sees(table)

    @property
    def days(self) -> tuple[date, date] | None:
        """The whole UTC days in the range (first, last exclusive), if there is one."""
        first = (self.q.start + timedelta(days=1) - timedelta(microseconds=1)).date()
        last = self.q.end.date()
        return (first, last) if first < last else None

    @property
    def around_days(self) -> list[tuple[datetime, datetime]]:
        """The parts of the range outside its whole UTC days (all of it when it has none)."""
        if self.days is None:
            return [(self.q.start, self.q.end)]
        first, last = (datetime.combine(day, time(), UTC) for day in self.days)
        return [
            (start, end)
            for start, end in ((self.q.start, first), (last, self.q.end))
            if start < end
        ]

    def hours(
        self, *, bots: bool | None, start: datetime | None = None, end: datetime | None = None
    ) -> list[ColumnElement[bool]]:
        """Conditions on the hourly rollup: the hours of [start, end) (the query's range
        unless narrowed; whole hours: see StatsQuery.rollups_apply)."""
        start, end = max(start or self.q.start, self.q.start), min(end or self.q.end, self.q.end)
        conditions = [*self.of(RollupHour), RollupHour.hour >= start, RollupHour.hour < end]
        if bots is not None:
            conditions.append(RollupHour.is_bot.is_(bots))
        return conditions

    def days_of(self, dimension: str, *, bots: bool | None) -> list[ColumnElement[bool]]:
        """Conditions on the daily rollup: `dimension`'s rows of the whole days."""
        assert self.days is not None
        first, last = self.days
        conditions = [*self.of(RollupDay), RollupDay.dimension == dimension]
        conditions += [RollupDay.day >= first, RollupDay.day < last]
        if bots is not None:
            conditions.append(RollupDay.is_bot.is_(bots))
        return conditions

    def clicks(
        self, *, bots: bool | None, start: datetime | None = None, end: datetime | None = None
    ) -> list[ColumnElement[bool]]:
        """Conditions on raw clicks in [start, end) (the query's range unless narrowed)."""
        start, end = max(start or self.q.start, self.q.start), min(end or self.q.end, self.q.end)
        conditions = [*self.of(Click), Click.ts >= start, Click.ts < end]
        if self.q.country:
            conditions.append(self.q.country.condition(Click.country))
        if self.q.device:
            conditions.append(self.q.device.condition(Click.device_type))
        if bots is not None:
            conditions.append(Click.is_bot.is_(bots))
        return conditions


NEW_VISITORS = func.sum(case((Click.new_visitor, 1), else_=0))


async def _per_link(session: AsyncSession, scope: Scope) -> list[tuple[int, bool, int, int]]:
    """(link_id, is_bot, clicks, visitors) rows, humans and bots both. From the rollups:
    the whole days from the daily rollup of a dimension every click has a value of
    (NO_VALUE included), a row a link and day rather than 24; the hours around them from
    the hourly rollup."""
    if not scope.q.rollups_apply:
        query = select(Click.link_id, Click.is_bot, func.count(), NEW_VISITORS)
        query = query.where(*scope.clicks(bots=None)).group_by(Click.link_id, Click.is_bot)
        return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]

    def by_link(table: Any, conditions: list[ColumnElement[bool]]) -> Select[Any]:
        columns = (table.link_id, table.is_bot)
        sums = (func.sum(table.clicks), func.sum(table.visitors))
        return select(*columns, *sums).where(*conditions).group_by(*columns)

    queries = [by_link(RollupHour, scope.hours(bots=None, start=start, end=end))
               for start, end in scope.around_days]  # fmt: skip
    if scope.days is not None:
        queries.append(by_link(RollupDay, scope.days_of(EVERY_CLICK_DIMENSION, bots=None)))
    counts: dict[tuple[int, bool], Count] = defaultdict(Count)
    for query in queries:
        for link_id, is_bot, clicks, visitors in await session.execute(query):
            counts[(link_id, is_bot)].add(clicks, visitors)
    return [(link, bot, c.clicks, c.visitors) for (link, bot), c in counts.items()]


async def summary(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    rows = await _per_link(session, scope)
    counted = [r for r in rows if scope.q.include_bots or not r[1]]
    clicks = sum(r[2] for r in counted)
    first, last = await _first_and_last(session, scope) if clicks else (None, None)
    return {
        "clicks": clicks,
        "unique_visitors": sum(r[3] for r in counted),
        "bot_clicks": sum(r[2] for r in rows if r[1]),
        "links": len({r[0] for r in counted}),
        "first_click": first,
        "last_click": last,
    }


async def _first_and_last(
    session: AsyncSession, scope: Scope
) -> tuple[datetime | None, datetime | None]:
    """The first and last counted click. The rollups tell in which hours they fall, so
    only those two hours of raw clicks are read; if those were purged, the hour it is."""
    first_hour = last_hour = None
    if scope.q.rollups_apply:
        hours = select(func.min(RollupHour.hour), func.max(RollupHour.hour))
        first_hour, last_hour = (
            await session.execute(hours.where(*scope.hours(bots=scope.bots)))
        ).one()
    hour = timedelta(hours=1)

    def at(moment: datetime | None) -> Select[Any]:
        window = {"start": moment, "end": moment + hour} if moment else {}
        return select(Click.ts).where(*scope.clicks(bots=scope.bots, **window))

    return (
        await session.scalar(at(first_hour).order_by(Click.ts).limit(1)) or first_hour,
        await session.scalar(at(last_hour).order_by(Click.ts.desc()).limit(1)) or last_hour,
    )


def _slot_of(session: AsyncSession) -> ColumnElement[int]:
    """The 15-minute UTC slot of a click, as seconds since the epoch divided by 900."""
    # Integer division: one group per slot.
    return epoch_seconds(session, Click.ts) // int(SLOT.total_seconds())


async def _slots(
    session: AsyncSession, scope: Scope, *, rollups: bool
) -> list[tuple[datetime, int, int]]:
    """Clicks and visitors per UTC hour (rollups) or per 15 minutes (raw clicks)."""
    if rollups:
        query = select(RollupHour.hour, func.sum(RollupHour.clicks), func.sum(RollupHour.visitors))
        query = query.where(*scope.hours(bots=scope.bots)).group_by(RollupHour.hour)
        return [(hour, clicks, visitors) for hour, clicks, visitors in await session.execute(query)]
    slot = _slot_of(session).label("slot")
    query = select(slot, func.count(), NEW_VISITORS).where(*scope.clicks(bots=scope.bots))
    rows = await session.execute(query.group_by(slot))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return [(epoch + int(n) * SLOT, clicks, visitors) for n, clicks, visitors in rows]


async def timeseries(
    session: AsyncSession, scope: Scope, interval: Interval
) -> list[dict[str, Any]]:
    q = scope.q
    starts = bucket_starts(q.start, q.end, interval, q.tz)
    rollups = q.rollups_apply and all(is_hour_aligned(s) for s in starts)
    counts = [Count() for _ in starts]
    for slot, clicks, visitors in await _slots(session, scope, rollups=rollups):
        counts[bisect_right(starts, slot) - 1].add(clicks, visitors)
    return [
        {"start": start.isoformat(), "clicks": c.clicks, "unique_visitors": c.visitors}
        for start, c in zip(starts, counts, strict=True)
    ]


async def _by_click_attribute(
    session: AsyncSession, scope: Scope, dimension: str
) -> dict[str | None, Count]:
    q = scope.q
    counts: dict[str | None, Count] = defaultdict(Count)
    edges = [(q.start, q.end)]  # what raw clicks must answer
    if q.rollups_apply and dimension in ROLLUP_DIMENSIONS and scope.days is not None:
        query = select(RollupDay.value, func.sum(RollupDay.clicks), func.sum(RollupDay.visitors))
        query = query.where(*scope.days_of(dimension, bots=scope.bots))
        for value, clicks, visitors in await session.execute(query.group_by(RollupDay.value)):
            counts[value].add(clicks, visitors)
        edges = scope.around_days
    column = getattr(Click, dimension)
    for start, end in edges:  # one query each, so that each reads only its own range
        query = select(column, func.count(), NEW_VISITORS).where(
            *scope.clicks(bots=scope.bots, start=start, end=end)
        )
        for value, clicks, visitors in await session.execute(query.group_by(column)):
            counts[value].add(clicks, visitors)
    return counts


async def _by_link_attribute(
    session: AsyncSession, scope: Scope, dimension: str
) -> dict[str | None, Count]:
    per_link: dict[int, Count] = defaultdict(Count)
    for link_id, is_bot, clicks, visitors in await _per_link(session, scope):
        if scope.q.include_bots or not is_bot:
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


async def _by_time(session: AsyncSession, scope: Scope, dimension: str) -> dict[str | None, Count]:
    counts: dict[str | None, Count] = defaultdict(Count)
    rollups = scope.q.rollups_apply and scope.q.whole_hour_zone
    for slot, clicks, visitors in await _slots(session, scope, rollups=rollups):
        local = slot.astimezone(scope.q.tz)
        value = str(local.hour) if dimension == "hour_of_day" else WEEKDAYS[local.weekday()]
        counts[value].add(clicks, visitors)
    return counts


async def breakdown(
    session: AsyncSession, scope: Scope, dimension: str, limit: int
) -> list[dict[str, Any]]:
    """Rows largest first; nulls form `(unknown)` (`(none)` for in_app and bot_name), rows
    past `limit` are summed into `(other)`, so the rows always add up to the summary's
    clicks."""
    if dimension in LINK_DIMENSIONS:
        counts = await _by_link_attribute(session, scope, dimension)
    elif dimension in TIME_DIMENSIONS:
        counts = await _by_time(session, scope, dimension)
    else:
        counts = await _by_click_attribute(session, scope, dimension)
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


async def raw_clicks(session: AsyncSession, scope: Scope) -> AsyncIterator[Sequence[Any]]:
    """Every click the filters select, oldest first, as rows in CSV_COLUMNS order."""
    columns = [Link.slug if name == "link" else getattr(Click, name) for name in CSV_COLUMNS]
    query = (
        select(*columns)
        .join(Link, Link.id == Click.link_id)
        .where(*scope.clicks(bots=scope.bots))
        .order_by(Click.id)
        .execution_options(yield_per=1000)
    )
    async for partition in (await session.stream(query)).partitions():
        for row in partition:
            yield row
