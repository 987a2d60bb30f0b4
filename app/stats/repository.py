"""Reads of clicks and rollups for the KPIs. Each function runs one kind of query within a
`Scope` (which clicks count) and returns rows; which source answers a question, and the
shape of the answer, are app/stats/service.py's. Unique visitors are first clicks of a
visitor on a link in a UTC day, so they add up over time, links and values like clicks."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clicks.rollups import ROLLUP_DIMENSIONS
from app.core.dialect import epoch_seconds
from app.core.errors import AppError
from app.core.principal import Principal
from app.core.tables import Click, Link, LinkTag, RollupDay, RollupHour
from app.stats.periods import is_hour_aligned

# The click attributes a breakdown reads: those of the daily rollup, and those with many
# values, from raw clicks only.
CLICK_DIMENSIONS = (*ROLLUP_DIMENSIONS, "region", "city", "device_model", "referrer_domain")
# The click attributes a query may keep clicks by, under the names the stats API and the
# dashboard's filters give them (the API's `device` predates the others).
CLICK_FILTERS = {
    "country": "country", "region": "region", "city": "city", "device": "device_type",
    "os": "os", "browser": "browser", "device_brand": "device_brand",
    "device_model": "device_model", "referrer_source": "referrer_source",
    "referrer_domain": "referrer_domain", "in_app": "in_app", "language": "language",
}  # fmt: skip
# Each click counts once in the daily rollup of each dimension: this one gives a link's day.
EVERY_CLICK_DIMENSION = "device_type"
SLOT = timedelta(minutes=15)  # every time zone's offset is a multiple of this
LINKS_PER_LOOKUP = 10_000  # link ids per IN list; asyncpg takes 32,767 parameters
NEW_VISITORS = func.sum(case((Click.new_visitor, 1), else_=0))
Totals = tuple[Any, int, int]  # a key (a link, an hour, a value …), clicks, visitors


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


LinkRef = tuple[str, str]  # (domain as links store it, "" for the base host; slug)


def by_domain(refs: Sequence[LinkRef]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for domain, slug in refs:
        grouped.setdefault(domain, []).append(slug)
    return grouped


def named(refs: Sequence[LinkRef]) -> ColumnElement[bool]:
    """The links of `refs`."""
    return or_(*(and_(Link.domain == domain, Link.slug.in_(slugs))
                 for domain, slugs in by_domain(refs).items()))  # fmt: skip


# A link as the `link` breakdown and the clicks CSV name it: its slug, with its branded
# domain in front (`go.tokoku.id/promo`), as the stats' `link` parameter takes it.
LINK_NAME = case((Link.domain == "", Link.slug), else_=Link.domain + "/" + Link.slug)


@dataclass(frozen=True)
class StatsQuery:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    tz: ZoneInfo
    links: tuple[LinkRef, ...] = ()
    tag: Match | None = None
    utm_campaign: Match | None = None
    utm_source: Match | None = None
    utm_medium: Match | None = None
    domain: Match | None = None  # hosts as links store them: "" for the base host
    # (click attribute, match): clicks kept by their own attributes, see CLICK_FILTERS.
    attributes: tuple[tuple[str, Match], ...] = ()
    include_bots: bool = False
    base_host: str = ""  # what the base host's links show as in the `domain` breakdown

    @cached_property  # asked for each statement; built once a query
    def link_filters(self) -> list[ColumnElement[bool]]:
        filters = []
        if self.links:
            filters.append(named(self.links))
        if self.tag:
            has_tag = Link.tag_rows.any(LinkTag.tag.in_(self.tag.values))
            filters.append(~has_tag if self.tag.exclude else has_tag)
        for name in ("utm_campaign", "utm_source", "utm_medium", "domain"):
            match: Match | None = getattr(self, name)
            if match:
                filters.append(match.condition(getattr(Link, name)))
        return filters

    @property
    def rollups_apply(self) -> bool:
        """Whether the hourly and daily rollups hold the answer exactly."""
        return not self.attributes and is_hour_aligned(self.start) and is_hour_aligned(self.end)

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


@dataclass(frozen=True)
class Scope:
    """Which clicks a stats request counts, built once from the caller and the query: those
    of the caller's links (its workspace's, every one for admin) that the link filters
    keep, in the query's range, of humans only unless the query includes bots."""

    principal: Principal
    q: StatsQuery
    # The workspace and id of each link the query names, when the request's check of those
    # names (check_links) found them: a read that needs their ids asks no one again.
    named_links: tuple[tuple[int, int], ...] | None = None

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

    def raw_ranges(self, *, days: bool) -> list[tuple[datetime, datetime]]:
        """The time ranges raw clicks answer for: those around the whole days when the daily
        rollup answers for the days (`days`), else all of the range."""
        return self.around_days if days else [(self.q.start, self.q.end)]

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
        for attribute, match in self.q.attributes:
            conditions.append(match.condition(getattr(Click, attribute)))
        if bots is not None:
            conditions.append(Click.is_bot.is_(bots))
        return conditions


def link_name(ref: LinkRef) -> str:
    domain, slug = ref
    return f"{domain}/{slug}" if domain else slug


async def check_links(
    session: AsyncSession, principal: Principal, links: Sequence[LinkRef]
) -> tuple[tuple[int, int], ...]:
    """The workspace and id of each link, sorted; 404 unless every link is one the key sees
    (its workspace's; every one for admin). A link of another workspace gets the same answer
    as one that does not exist; the message names the unknown ones."""
    wanted = list(dict.fromkeys(links))
    found: dict[LinkRef, tuple[int, int]] = {}
    for start in range(0, len(wanted), LINKS_PER_LOOKUP):  # asyncpg takes 32,767 parameters
        chunk = wanted[start : start + LINKS_PER_LOOKUP]
        visible = select(Link.domain, Link.slug, Link.workspace_id, Link.id).where(
            *principal.sees(Link), named(chunk)
        )
        rows = await session.execute(visible)
        found.update(((domain, slug), (workspace, id_)) for domain, slug, workspace, id_ in rows)
    unknown = [link_name(ref) for ref in wanted if ref not in found]
    if unknown:
        names = ", ".join(f"'{name}'" for name in unknown)
        message = f"link{'s' if len(unknown) > 1 else ''} {names} not found"
        raise AppError(404, "not_found", message, {"field": "link", "unknown": unknown})
    return tuple(sorted(found.values()))


async def link_values(session: AsyncSession, ids: list[int], column: Any) -> dict[int, Any]:
    """Each link's value of a link column (a slug, a UTM field)."""
    values: dict[int, Any] = {}
    for start in range(0, len(ids), LINKS_PER_LOOKUP):
        lookup = select(Link.id, column).where(Link.id.in_(ids[start : start + LINKS_PER_LOOKUP]))
        values.update((await session.execute(lookup)).all())
    return values


CSV_COLUMNS = (
    "id", "ts", "link", "visitor_id", "new_visitor", "is_bot", "bot_name", "device_type", "os",
    "os_version", "browser", "browser_version", "device_brand", "device_model", "in_app",
    "referrer_url", "referrer_domain", "referrer_source", "country", "region", "city",
    "latitude", "longitude", "timezone", "language", "ip", "trigger", "route",
)  # fmt: skip


class SqlReads:
    """The stats' reads of clicks and rollups in the SQL database (stats/clickhouse.py has
    the same for ClickHouse)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.per_link: dict[Scope, list[tuple[int, bool, int, int]]] = {}  # service._per_link

    async def per_link_from_rollups(self, scope: Scope) -> list[tuple[int, bool, int, int]]:
        """(link_id, is_bot, clicks, visitors), humans and bots both, a link's rows to be added
        up: the whole days from the daily rollup of a dimension every click has a value of (a
        row a link and day rather than 24), the hours around them from the hourly rollup."""

        def by_link(table: Any, conditions: list[ColumnElement[bool]]) -> Select[Any]:
            columns = (table.link_id, table.is_bot)
            sums = (func.sum(table.clicks), func.sum(table.visitors))
            return select(*columns, *sums).where(*conditions).group_by(*columns)

        queries = [by_link(RollupHour, scope.hours(bots=None, start=start, end=end))
                   for start, end in scope.around_days]  # fmt: skip
        if scope.days is not None:
            queries.append(by_link(RollupDay, scope.days_of(EVERY_CLICK_DIMENSION, bots=None)))
        rows = []
        for query in queries:
            rows += [tuple(row) for row in await self.session.execute(query)]
        return rows  # type: ignore[return-value]

    async def per_link_from_clicks(self, scope: Scope) -> list[tuple[int, bool, int, int]]:
        """(link_id, is_bot, clicks, visitors), humans and bots both, from raw clicks."""
        query = select(Click.link_id, Click.is_bot, func.count(), NEW_VISITORS)
        query = query.where(*scope.clicks(bots=None)).group_by(Click.link_id, Click.is_bot)
        return [tuple(row) for row in await self.session.execute(query)]  # type: ignore[misc]

    async def first_and_last(self, scope: Scope) -> tuple[datetime | None, datetime | None]:
        """The first and last counted click. The rollups tell in which hours they fall, so
        only those two hours of raw clicks are read; if those were purged, the hour it is."""
        first_hour = last_hour = None
        if scope.q.rollups_apply:
            first_hour, last_hour = await self.counted_hours(scope)
        first = await self.edge_click(scope, last=False, within_hour=first_hour)
        last = await self.edge_click(scope, last=True, within_hour=last_hour)
        return first or first_hour, last or last_hour

    async def counted_hours(self, scope: Scope) -> tuple[datetime | None, datetime | None]:
        """The first and last hour with a counted click, from the hourly rollup."""
        hours = select(func.min(RollupHour.hour), func.max(RollupHour.hour))
        first, last = (await self.session.execute(hours.where(*scope.hours(bots=scope.bots)))).one()
        return first, last

    async def edge_click(
        self, scope: Scope, *, last: bool, within_hour: datetime | None = None
    ) -> datetime | None:
        """The time of the first (or `last`) counted click, in `within_hour` if given."""
        window = (
            {"start": within_hour, "end": within_hour + timedelta(hours=1)} if within_hour else {}
        )
        query = select(Click.ts).where(*scope.clicks(bots=scope.bots, **window))
        return await self.session.scalar(
            query.order_by(Click.ts.desc() if last else Click.ts).limit(1)
        )

    async def per_hour(self, scope: Scope) -> list[Totals]:
        """(UTC hour, clicks, visitors) from the hourly rollup."""
        query = select(RollupHour.hour, func.sum(RollupHour.clicks), func.sum(RollupHour.visitors))
        query = query.where(*scope.hours(bots=scope.bots)).group_by(RollupHour.hour)
        return [
            (hour, clicks, visitors) for hour, clicks, visitors in await self.session.execute(query)
        ]

    async def per_slot(self, scope: Scope) -> list[Totals]:
        """(start of the 15-minute UTC slot, clicks, visitors) from raw clicks."""
        # Integer division: one group per slot.
        slot = (epoch_seconds(self.session, Click.ts) // int(SLOT.total_seconds())).label("slot")
        query = select(slot, func.count(), NEW_VISITORS).where(*scope.clicks(bots=scope.bots))
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        rows = await self.session.execute(query.group_by(slot))
        return [(epoch + int(n) * SLOT, clicks, visitors) for n, clicks, visitors in rows]

    async def per_value(
        self, scope: Scope, dimension: str, *, days: bool, by_link: bool = False
    ) -> list[Any]:
        """(value, clicks, visitors) rows of a click attribute, to be added up (a value may
        come more than once), or (link_id, value, clicks, visitors) rows `by_link`: with
        `days`, the whole days from the daily rollup (NO_VALUE where the attribute is null)
        and the hours around them from raw clicks; else all of the range from raw clicks, a
        query per range, so that each reads only its own range of the index."""
        rows: list[Any] = []
        if days:
            keys = (RollupDay.link_id, RollupDay.value) if by_link else (RollupDay.value,)
            sums = select(*keys, func.sum(RollupDay.clicks), func.sum(RollupDay.visitors))
            query = sums.where(*scope.days_of(dimension, bots=scope.bots)).group_by(*keys)
            rows += [tuple(row) for row in await self.session.execute(query)]
        column = getattr(Click, dimension)
        keys = (Click.link_id, column) if by_link else (column,)
        for start, end in scope.raw_ranges(days=days):
            query = select(*keys, func.count(), NEW_VISITORS).group_by(*keys)
            query = query.where(*scope.clicks(bots=scope.bots, start=start, end=end))
            rows += [tuple(row) for row in await self.session.execute(query)]
        return rows

    async def raw_clicks(self, scope: Scope) -> AsyncIterator[Sequence[Any]]:
        """Every click the filters select, oldest first, as rows in CSV_COLUMNS order."""
        columns = [LINK_NAME if name == "link" else getattr(Click, name) for name in CSV_COLUMNS]
        query = (
            select(*columns)
            .join(Link, Link.id == Click.link_id)
            .where(*scope.clicks(bots=scope.bots))
            .order_by(Click.id)
            .execution_options(yield_per=1000)
        )
        async for partition in (await self.session.stream(query)).partitions():
            for row in partition:
                yield row
