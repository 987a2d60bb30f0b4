"""KPIs: which source answers (the rollups when they can give the answer exactly: the range
falls on whole UTC hours and no click attribute is filtered on; else raw clicks, which give
the same numbers), and the shape of the answers. The reads are app/stats/repository.py's
(SqlReads), or app/stats/clickhouse.py's with ClickHouse as the click store."""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse.client import ClickHouse
from app.clicks.rollups import NO_VALUE, ROLLUP_DIMENSIONS
from app.core.tables import Link
from app.domains.service import stored_or_as_given
from app.stats import repository
from app.stats.clickhouse import ClickHouseReads
from app.stats.periods import Interval, bucket_starts, is_hour_aligned
from app.stats.repository import CLICK_DIMENSIONS, CLICK_FILTERS, LinkRef, Match, Scope, SqlReads

UNKNOWN, OTHER, NONE = "(unknown)", "(other)", "(none)"
# Dimensions whose missing value is a fact, not a gap: an ordinary browser is in no app,
# a person is no bot.
NONE_FOR_NULL = frozenset({"in_app", "bot_name", "route"})
LINK_DIMENSIONS = {
    "link": repository.LINK_NAME,
    "utm_source": Link.utm_source,
    "utm_medium": Link.utm_medium,
    "utm_campaign": Link.utm_campaign,
    "domain": Link.domain,
}
TIME_DIMENSIONS = ("hour_of_day", "weekday")
# The breakdowns whose rows can narrow a query, each with the query parameter that does.
FILTERS = {
    "link": "link", "utm_campaign": "utm_campaign", "utm_source": "utm_source",
    "utm_medium": "utm_medium", "domain": "domain",
    **{attribute: name for name, attribute in CLICK_FILTERS.items()},
}  # fmt: skip
DIMENSIONS = (*CLICK_DIMENSIONS, *LINK_DIMENSIONS, *TIME_DIMENSIONS)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


Reads = SqlReads | ClickHouseReads


def link_ref(name: str, base_host: str) -> LinkRef:
    """A link as the `link` filter names it: `slug` on the base host, or `host/slug`."""
    host, _, slug = name.rpartition("/")
    return (stored_or_as_given(host, base_host) if host else ""), slug


def stored_hosts(hosts: Match | None, base_host: str) -> Match | None:
    """A `domain` filter's hosts as links store them: the base host's are ""."""
    if hosts is None:
        return None
    return Match(tuple(stored_or_as_given(h, base_host) for h in hosts.values), hosts.exclude)


def reads_for(session: AsyncSession, clickhouse: ClickHouse | None) -> Reads:
    """The reads of the click store: ClickHouse's when it is one (TAUTAN_CLICKHOUSE_URL),
    else the SQL database's. `session` reads the links either way."""
    return ClickHouseReads(session, clickhouse) if clickhouse else SqlReads(session)


@dataclass
class Count:
    clicks: int = 0
    visitors: int = 0

    def add(self, clicks: int, visitors: int) -> None:
        self.clicks += clicks
        self.visitors += visitors


async def _per_link(reads: Reads, scope: Scope) -> list[tuple[int, bool, int, int]]:
    """Each link's clicks and visitors, read once a request: a page's summary and its
    breakdowns by link, campaign, source … all add them up (and so agree)."""
    if scope not in reads.per_link:
        if scope.q.rollups_apply:
            reads.per_link[scope] = await reads.per_link_from_rollups(scope)
        else:
            reads.per_link[scope] = await reads.per_link_from_clicks(scope)
    return reads.per_link[scope]


async def summary(reads: Reads, scope: Scope) -> dict[str, Any]:
    rows = await _per_link(reads, scope)
    counted = [r for r in rows if scope.q.include_bots or not r[1]]
    clicks = sum(r[2] for r in counted)
    first, last = await reads.first_and_last(scope) if clicks else (None, None)
    return {
        "clicks": clicks,
        "unique_visitors": sum(r[3] for r in counted),
        "bot_clicks": sum(r[2] for r in rows if r[1]),
        "links": len({r[0] for r in counted}),
        "first_click": first,
        "last_click": last,
    }


async def _slots(reads: Reads, scope: Scope, *, rollups: bool) -> list[Any]:
    """Clicks and visitors per UTC hour (rollups) or per 15 minutes (raw clicks)."""
    if rollups:
        return await reads.per_hour(scope)
    return await reads.per_slot(scope)


async def timeseries(reads: Reads, scope: Scope, interval: Interval) -> list[dict[str, Any]]:
    q = scope.q
    starts = bucket_starts(q.start, q.end, interval, q.tz)
    rollups = q.rollups_apply and all(is_hour_aligned(s) for s in starts)
    counts = [Count() for _ in starts]
    # The slots are in UTC: so are the edges they are sorted between, as comparing two times
    # of one zone is ~10× faster than across zones (a link's 90 days are 2,160 hours).
    edges = [start.astimezone(UTC) for start in starts]
    for slot, clicks, visitors in await _slots(reads, scope, rollups=rollups):
        counts[bisect_right(edges, slot) - 1].add(clicks, visitors)
    return [
        {"start": start.isoformat(), "clicks": c.clicks, "unique_visitors": c.visitors}
        for start, c in zip(starts, counts, strict=True)
    ]


def _daily(scope: Scope, dimension: str) -> bool:
    """Whether a click attribute's breakdown reads its whole days from the daily rollup."""
    q = scope.q
    return q.rollups_apply and dimension in ROLLUP_DIMENSIONS and scope.days is not None


async def _by_click_attribute(
    reads: Reads, scope: Scope, dimension: str
) -> dict[str | None, Count]:
    counts: dict[str | None, Count] = defaultdict(Count)
    for value, clicks, visitors in await reads.per_value(
        scope, dimension, days=_daily(scope, dimension)
    ):
        counts[value].add(clicks, visitors)
    return counts


async def _by_link_attribute(reads: Reads, scope: Scope, dimension: str) -> dict[str | None, Count]:
    counts: dict[str | None, Count] = defaultdict(Count)
    for _, value, clicks, visitors in await _per_link_value(reads, scope, dimension):
        counts[value].add(clicks, visitors)
    return counts


async def _per_link_value(reads: Reads, scope: Scope, dimension: str) -> list[Any]:
    """(link_id, value, clicks, visitors) rows of a link or click attribute, to be added up."""
    if dimension in LINK_DIMENSIONS:
        per_link: dict[int, Count] = defaultdict(Count)
        for link_id, is_bot, clicks, visitors in await _per_link(reads, scope):
            if scope.q.include_bots or not is_bot:
                per_link[link_id].add(clicks, visitors)
        column = LINK_DIMENSIONS[dimension]
        values = await repository.link_values(reads.session, list(per_link), column)
        return [(link, values.get(link), c.clicks, c.visitors) for link, c in per_link.items()]
    if dimension in CLICK_DIMENSIONS:
        days = _daily(scope, dimension)
        return await reads.per_value(scope, dimension, days=days, by_link=True)
    raise ValueError(f"no breakdown by {dimension!r} for each value of a link attribute")


async def _by_time(reads: Reads, scope: Scope, dimension: str) -> dict[str | None, Count]:
    counts: dict[str | None, Count] = defaultdict(Count)
    rollups = scope.q.rollups_apply and scope.q.whole_hour_zone
    for slot, clicks, visitors in await _slots(reads, scope, rollups=rollups):
        local = slot.astimezone(scope.q.tz)
        value = str(local.hour) if dimension == "hour_of_day" else WEEKDAYS[local.weekday()]
        counts[value].add(clicks, visitors)
    return counts


async def breakdown(reads: Reads, scope: Scope, dimension: str, limit: int) -> list[dict[str, Any]]:
    """Rows largest first; nulls form `(unknown)` (`(none)` for in_app, bot_name and route), rows
    past `limit` are summed into `(other)`, so the rows always add up to the summary's
    clicks."""
    if dimension in LINK_DIMENSIONS:
        counts = await _by_link_attribute(reads, scope, dimension)
    elif dimension in TIME_DIMENSIONS:
        counts = await _by_time(reads, scope, dimension)
    else:
        counts = await _by_click_attribute(reads, scope, dimension)
    return _ranked(scope, dimension, counts, limit)


async def breakdowns_per(
    reads: Reads, scope: Scope, dimension: str, limit: int, *, per: str
) -> dict[str | None, list[dict[str, Any]]]:
    """For each value of the link attribute `per` (each campaign, say), the breakdown of
    `dimension` that breakdown() gives with the query narrowed to that value: from one or
    two reads in all, rather than one a value. Not of the time dimensions."""
    rows = await _per_link_value(reads, scope, dimension)
    links = sorted({row[0] for row in rows})
    groups = await repository.link_values(reads.session, links, LINK_DIMENSIONS[per])
    counts: dict[str | None, dict[Any, Count]] = defaultdict(lambda: defaultdict(Count))
    for link_id, value, clicks, visitors in rows:
        counts[groups.get(link_id)][value].add(clicks, visitors)
    return {group: _ranked(scope, dimension, of_group, limit) for group, of_group in counts.items()}


def _ranked(
    scope: Scope, dimension: str, counts: dict[Any, Count], limit: int
) -> list[dict[str, Any]]:
    """The rows of a breakdown from each value's counts (see breakdown())."""
    merged: dict[str, Count] = defaultdict(Count)
    missing = NONE if dimension in NONE_FOR_NULL else UNKNOWN
    for value, count in counts.items():
        if dimension == "domain" and value == "":  # the base host's links
            value = scope.q.base_host
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
