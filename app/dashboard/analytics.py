"""What every analytics page shares: the period (a preset or two dates, in a time zone),
the filters a visitor set by clicking breakdown rows, the previous period beside it, and
the numbers. The page's URL holds all of it, so a view can be bookmarked and shared; a
page may also hold a scope of its own (a link, a campaign, a report's links) that no filter
in the URL can widen."""

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from app.core.principal import Principal
from app.spreadsheet import as_text
from app.stats import service as stats
from app.stats.periods import Interval, default_interval, parse_range, parse_zone
from app.stats.repository import CLICK_FILTERS, LinkRef, Match, Scope, StatsQuery

PRESETS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days",
           "month": "This month"}  # fmt: skip
DEFAULT_PRESET = "30d"
# A filter's name in the URL, and how its chip reads.
FILTER_TITLES = {
    "link": "Link", "utm_campaign": "Campaign", "utm_source": "Source", "utm_medium": "Medium",
    "domain": "Domain", "country": "Country", "region": "Region", "city": "City",
    "device": "Device", "os": "OS", "browser": "Browser", "device_brand": "Phone brand",
    "device_model": "Model", "referrer_source": "Referrer", "referrer_domain": "Referring site",
    "in_app": "In-app browser", "language": "Language",
}  # fmt: skip
# Rows that stand for no one value, so no filter.
NOT_A_VALUE = frozenset({stats.UNKNOWN, stats.OTHER, stats.NONE})
MAX_FILTER_VALUES = 20  # values of one filter a URL may hold


@dataclasses.dataclass(frozen=True)
class Fixed:
    """The page's own scope: what it shows whatever its URL says."""

    links: tuple[LinkRef, ...] | None = None  # None: any link; a `link` filter narrows these
    utm_campaign: str | None = None


@dataclasses.dataclass(frozen=True)
class View:
    path: str  # the page
    page_params: tuple[tuple[str, str], ...]  # what the page itself needs (a campaign's name)
    preset: str  # a PRESETS key, or "custom"
    start: str  # the first and last local days, as the pickers show them
    end: str
    tz: str
    filters: tuple[tuple[str, str], ...]  # (name, value), in the order they were set
    query: StatsQuery
    previous: StatsQuery  # as long as `query`, just before it (see _previous)
    previous_label: str

    @property
    def interval(self) -> Interval:
        return default_interval(self.query.start, self.query.end)

    def _period(self, preset: str | None = None) -> list[tuple[str, str]]:
        preset = preset or self.preset
        if preset == "custom":
            return [("from", self.start), ("to", self.end), ("tz", self.tz)]
        return [("range", preset), ("tz", self.tz)]

    @property
    def period_params(self) -> str:
        """The period and zone alone, for links to another page of the same period."""
        return urlencode(self._period())

    def params(
        self, *, preset: str | None = None, filters: Iterable[tuple[str, str]] | None = None
    ) -> str:
        chosen = self.filters if filters is None else filters
        return urlencode([*self.page_params, *self._period(preset), *chosen])

    def url(self, part: str = "", **change: Any) -> str:
        """This view's URL, of the page or one of its parts (`/chart.svg` …), with a
        preset or filters changed."""
        return f"{self.path}{part}?{self.params(**change)}"

    def filtering(self, dimension: str, value: str) -> str | None:
        """The URL of this view also filtered by a breakdown row, if a row of this
        dimension can filter and is not already a filter."""
        name = stats.FILTERS.get(dimension)
        if name is None or value in NOT_A_VALUE or (name, value) in self.filters:
            return None
        return self.url(filters=[*self.filters, (name, value)])

    @property
    def chips(self) -> list[tuple[str, str, str]]:
        """(title, value, URL without it) of each active filter."""
        return [
            (
                FILTER_TITLES[name],
                value,
                self.url(filters=[f for f in self.filters if f != (name, value)]),
            )
            for name, value in self.filters
        ]


def _preset_days(preset: str, today: date) -> tuple[date, date]:
    if preset == "today":
        return today, today
    if preset == "month":
        return today.replace(day=1), today
    return today - timedelta(days=int(preset.removesuffix("d")) - 1), today


def view_of(
    path: str,
    params: Mapping[str, Any],
    base_host: str,
    *,
    page_params: Sequence[tuple[str, str]] = (),
    fixed: Fixed = Fixed(),
) -> View:
    """The view a page's query parameters ask for. ValueError, saying why, for an unknown
    zone, a bad range or too many values."""
    getall = getattr(params, "getlist", lambda name: [params[name]] if name in params else [])
    tz = str(params.get("tz") or "UTC")[:64]
    zone = parse_zone(tz)
    start, end = str(params.get("from") or "")[:40], str(params.get("to") or "")[:40]
    preset = str(params.get("range") or "")
    if start or end:
        preset = "custom"
    elif preset not in PRESETS:
        preset = DEFAULT_PRESET
    if preset != "custom":
        first, last = _preset_days(preset, datetime.now(zone).date())
        start, end = first.isoformat(), last.isoformat()
    try:
        lower, upper = parse_range(start or None, end or None, zone)
    except OverflowError:
        raise ValueError("that range reaches past the calendar") from None
    last_moment = upper - timedelta(microseconds=1)
    start = start or lower.astimezone(zone).date().isoformat()
    end = end or last_moment.astimezone(zone).date().isoformat()
    # What the page holds itself is no filter: its own parameters, its own campaign.
    held = {name for name, _ in page_params} | ({"utm_campaign"} if fixed.utm_campaign else set())
    filters: list[tuple[str, str]] = []
    for name in FILTER_TITLES.keys() - held:
        values = list(dict.fromkeys(str(v)[:300] for v in getall(name) if str(v)))
        if len(values) > MAX_FILTER_VALUES:
            raise ValueError(f"at most {MAX_FILTER_VALUES} values of {name}")
        filters += [(name, value) for value in values]
    filters.sort(key=lambda f: list(FILTER_TITLES).index(f[0]))
    query = _query(lower, upper, zone, filters, base_host, fixed)
    try:
        before, label = _previous(lower, upper, start, end, zone)
    except OverflowError:
        raise ValueError("that range reaches past the calendar") from None
    previous = dataclasses.replace(query, start=before[0], end=before[1])
    return View(path, tuple(page_params), preset, start, end, zone.key, tuple(filters), query,
                previous, label)  # fmt: skip


def _previous(
    lower: datetime, upper: datetime, start: str, end: str, zone: ZoneInfo
) -> tuple[tuple[datetime, datetime], str]:
    """The period before [lower, upper) and how to call it: as many local days, just
    before (a range of times: as long); of a period still going on, only as much as has
    gone by of it, to the next whole hour (so that 9 hours of today meet 10 of yesterday,
    not all of it)."""
    try:
        days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
        first = date.fromisoformat(start)
        before = parse_range(
            str(first - timedelta(days=days)), str(first - timedelta(days=1)), zone
        )
        label = f"previous {days} day{'s' if days != 1 else ''}"
    except ValueError:  # times, not days
        before, label = (lower - (upper - lower), lower), "previous period"
    gone_by = datetime.now(UTC) - lower
    if gone_by < upper - lower:
        hours = max(0, math.ceil(gone_by / timedelta(hours=1)))
        before = (before[0], min(before[1], before[0] + timedelta(hours=hours)))
        label += ", to the same time"
    return before, label


def _query(
    start: datetime,
    end: datetime,
    zone: Any,
    filters: Sequence[tuple[str, str]],
    base_host: str,
    fixed: Fixed,
) -> StatsQuery:
    chosen: dict[str, tuple[str, ...]] = {}
    for name, value in filters:
        chosen[name] = (*chosen.get(name, ()), value)
    links = tuple(stats.link_ref(name, base_host) for name in chosen.pop("link", ()))
    if fixed.links is not None:
        links = tuple(ref for ref in links if ref in fixed.links) if links else fixed.links
        if not links:  # no links at all would mean every link of the workspace
            raise ValueError("the link filter names no link of this page")
    campaigns = chosen.pop("utm_campaign", None)
    if fixed.utm_campaign is not None:
        campaigns = (fixed.utm_campaign,)
    matches = {name: Match(values) for name, values in chosen.items()}
    return StatsQuery(
        start=start,
        end=end,
        tz=zone,
        links=links,
        utm_campaign=Match(campaigns) if campaigns else None,
        utm_source=matches.get("utm_source"),
        utm_medium=matches.get("utm_medium"),
        domain=stats.stored_hosts(matches.get("domain"), base_host),
        attributes=tuple(
            (CLICK_FILTERS[name], match) for name, match in matches.items() if name in CLICK_FILTERS
        ),
        base_host=base_host,
    )


@dataclasses.dataclass(frozen=True)
class Table:
    dimension: str
    title: str
    rows: list[dict[str, Any]]


def narrowed(query: StatsQuery, campaign: str) -> StatsQuery:
    """`query` kept to one campaign's links."""
    return dataclasses.replace(query, utm_campaign=Match((campaign,)))


async def tables(
    reads: stats.Reads,
    principal: Principal,
    query: StatsQuery,
    breakdowns: Sequence[tuple[str, str]],
    rows: int = 10,
) -> list[Table]:
    scope = Scope(principal, query)
    return [
        # Every hour of the day, never an `(other)` of hours.
        Table(dimension, title, await stats.breakdown(
            reads, scope, dimension, 24 if dimension == "hour_of_day" else rows))
        for dimension, title in breakdowns
    ]  # fmt: skip


async def numbers(
    reads: stats.Reads, principal: Principal, view: View, breakdowns: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """The KPIs of the view and of the period before, and the breakdown tables."""
    return {
        "summary": await stats.summary(reads, Scope(principal, view.query)),
        "previous": await stats.summary(reads, Scope(principal, view.previous)),
        "tables": await tables(reads, principal, view.query, breakdowns),
    }


async def series(
    reads: stats.Reads, principal: Principal, view: View
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The buckets of the view and those of the period before (no more of them)."""
    current = await stats.timeseries(reads, Scope(principal, view.query), view.interval)
    before = await stats.timeseries(reads, Scope(principal, view.previous), view.interval)
    return current, before[: len(current)]  # bucket for bucket from the start


def change(now: int, before: int) -> str:
    """`+12 %`, `−40 %`, or `new` from nothing."""
    if before == 0:
        return "new" if now else "—"
    percent = round((now - before) / before * 100)
    return f"{'+' if percent >= 0 else '−'}{abs(percent)} %"


def sparkline(values: Sequence[int], width: int = 120, height: int = 28) -> str:
    """The points of an SVG polyline drawing `values` left to right, the largest at the
    top (drawn inline in the page: attributes only, nothing the CSP would block)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )


def export_csv(view: View, shown: dict[str, Any], buckets: list[dict[str, Any]]) -> str:
    """What a page shows, as one CSV: its KPIs, its series, and each breakdown."""
    out = io.StringIO()
    write = csv.writer(out).writerow
    write(["section", "value", "clicks", "unique_visitors", "share"])
    summary, previous = shown["summary"], shown["previous"]
    write(["period", f"{view.start} to {view.end} ({view.tz})", summary["clicks"],
           summary["unique_visitors"], ""])  # fmt: skip
    write([view.previous_label, "", previous["clicks"], previous["unique_visitors"], ""])
    for name, value in view.filters:
        write(["filter", as_text(f"{FILTER_TITLES[name]}: {value}"), "", "", ""])
    for bucket in buckets:
        write([f"per {view.interval}", bucket["start"], bucket["clicks"],
               bucket["unique_visitors"], ""])  # fmt: skip
    for table in shown["tables"]:
        for row in table.rows:
            write([table.title, as_text(row["value"]), row["clicks"], row["unique_visitors"],
                   row["share"]])  # fmt: skip
    return out.getvalue()
