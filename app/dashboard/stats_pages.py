"""The dashboard's analytics pages: the workspace overview, the campaigns (each
`utm_campaign` value), one campaign, two campaigns or periods side by side, and a link's
page. Each is an analytics view (app/dashboard/analytics.py): a period, the filters set by
clicking rows, the period before; and each has the same parts, at its path followed by
`/chart.svg`, `/chart.png`, `/map.svg` or `/export.csv`."""

import gzip
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import QueryParams

from app.api.deps import ReadSession, ShortUrls, State, StatsReads
from app.core.errors import AppError
from app.core.principal import Principal
from app.dashboard import analytics, charts, views
from app.dashboard.analytics import Fixed, View
from app.dashboard.routes import (
    CHART_CSP,
    ZONES,
    DomainParam,
    MayRead,
    MayReadStats,
    PageRoute,
    _page,
)  # fmt: skip
from app.links import service as links
from app.links.schemas import LinkOut
from app.stats import service as stats
from app.stats.repository import Scope

router = APIRouter(prefix="/dashboard", route_class=PageRoute, include_in_schema=False)

OVERVIEW = (
    ("link", "Top links"), ("utm_campaign", "Campaigns"), ("utm_source", "Sources"),
    ("referrer_source", "Referrers"), ("device_type", "Devices"),
    ("device_brand", "Phone brands"), ("os", "Operating systems"), ("browser", "Browsers"),
    ("country", "Countries"), ("city", "Cities"),
)  # fmt: skip
CAMPAIGN = (
    ("link", "Links"), ("utm_source", "Sources"), ("utm_medium", "Media"),
    ("referrer_source", "Referrers"), ("device_type", "Devices"),
    ("device_brand", "Phone brands"), ("country", "Countries"), ("city", "Cities"),
)  # fmt: skip
SIDE = (("utm_source", "Sources"), ("device_type", "Devices"), ("country", "Countries"))
CAMPAIGN_ROWS = 50  # campaigns listed, the busiest first
MAP_COUNTRIES = 300  # more than there are: every country on the map
PARTS = ("chart.svg", "chart.png", "map.svg", "export.csv")
Part = Literal["chart.svg", "chart.png", "map.svg", "export.csv"]


class PartConvertor(Convertor[str]):
    """`{part:part}` in a path: one of PARTS, so that `/links/{slug}/{part:part}` leaves
    `/links/{slug}/edit` to its own route."""

    regex = "|".join(re.escape(part) for part in PARTS)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("part", PartConvertor())
CampaignName = Annotated[str, Query(max_length=300)]


ZONE_COOKIE = "tautan_tz"  # the viewer's time zone, as dashboard.js read it from the browser
KNOWN_ZONES = frozenset(ZONES)


def _asked(request: Request) -> QueryParams:
    """The page's query, in the viewer's time zone unless it names one."""
    zone = request.cookies.get(ZONE_COOKIE, "")
    if "tz" in request.query_params or zone not in KNOWN_ZONES:
        return request.query_params
    return QueryParams([*request.query_params.multi_items(), ("tz", zone)])


def view_for(request: Request, path: str, base_host: str, **page: Any) -> View:
    """The view a page's URL asks for; a part of the page (its chart, map, CSV) asking for
    something impossible is a 422."""
    try:
        return analytics.view_of(path, _asked(request), base_host, **page)
    except ValueError as exc:
        raise AppError(422, "invalid_parameter", str(exc)) from None


def view_or_default(
    request: Request, path: str, base_host: str, **page: Any
) -> tuple[View, str | None]:
    """The view a page's URL asks for; or, when it asks for something impossible, the same
    period without its filters, else the default view, and a message saying why."""
    asked = _asked(request)
    try:
        return analytics.view_of(path, asked, base_host, **page), None
    except ValueError as exc:
        why = str(exc)
    period = {name: asked[name] for name in ("range", "from", "to", "tz") if name in asked}
    try:
        without_filters = analytics.view_of(path, period, base_host, **page)
        return without_filters, f"{why}. Showing it without filters."
    except ValueError:
        default = analytics.view_of(path, {}, base_host, **page)
        return default, f"{why}. Showing the last 30 days in UTC instead."


def image(svg: bytes, part: str, request: Request) -> Response:
    """A chart or map as the part asks: SVG (gzipped when the browser takes it: the map
    is some 800 kB of country outlines), or PNG."""
    # Not cached (the pages' no-store): the same URL draws another workspace's clicks after
    # a switch, and nothing after a report is revoked.
    headers = {"Content-Security-Policy": CHART_CSP}
    if part.endswith(".png"):
        return Response(charts.as_png(svg), media_type="image/png", headers=headers)
    headers["Vary"] = "Accept-Encoding"
    if "gzip" in request.headers.get("accept-encoding", ""):
        svg, headers["Content-Encoding"] = gzip.compress(svg, 6), "gzip"
    return Response(svg, media_type="image/svg+xml", headers=headers)


async def part_of(
    request: Request,
    part: Part,
    reads: stats.Reads,
    principal: Principal,
    view: View,
    breakdowns: tuple[tuple[str, str], ...],
    name: str,
) -> Response:
    """A view's chart, map or CSV, as the page showing it draws them."""
    if part == "map.svg":
        scope = Scope(principal, view.query)
        countries = await stats.breakdown(reads, scope, "country", MAP_COUNTRIES)
        return image(charts.world_map(countries), part, request)
    try:
        current, before = await analytics.series(reads, principal, view)
    except ValueError as exc:  # too many buckets for the range
        raise AppError(422, "invalid_parameter", str(exc)) from None
    if part != "export.csv":
        phone = request.query_params.get("size") == "phone"
        return image(
            charts.clicks_chart(current, view.interval, before, phone=phone), part, request
        )
    shown = await analytics.numbers(reads, principal, view, breakdowns)
    return Response(
        analytics.export_csv(view, shown, current),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def analytics_page(request: Request, template: str, view: View, **context: Any) -> Response:
    return _page(request, template, view=view, presets=analytics.PRESETS, zones=ZONES,
                 change=analytics.change, **context)  # fmt: skip


@router.get("/overview")
async def overview(
    request: Request, principal: MayReadStats, reads: StatsReads, ctx: ShortUrls
) -> Response:
    view, range_error = view_or_default(request, "/dashboard/overview", ctx.short_host)
    shown = await analytics.numbers(reads, principal, view, OVERVIEW)
    return analytics_page(request, "overview.html", view, principal=principal,
                          range_error=range_error, **shown)  # fmt: skip


@router.get("/overview/{part:part}")
async def overview_part(
    request: Request, part: Part, principal: MayReadStats, reads: StatsReads, ctx: ShortUrls
) -> Response:
    view = view_for(request, "/dashboard/overview", ctx.short_host)
    return await part_of(request, part, reads, principal, view, OVERVIEW, "overview")


@dataclass(frozen=True)
class CampaignRow:
    name: str
    clicks: int
    unique_visitors: int
    trend: str  # sparkline points
    top_source: str
    top_device: str


async def campaign_rows(reads: stats.Reads, principal: Principal, view: View) -> list[CampaignRow]:
    """The campaigns with clicks in the view, busiest first, each with its trend (a read a
    campaign) and its top source and device (those of every campaign read at once)."""
    scope = Scope(principal, view.query)
    ranked = await stats.breakdown(reads, scope, "utm_campaign", CAMPAIGN_ROWS)
    sources = await stats.breakdowns_per(reads, scope, "utm_source", 1, per="utm_campaign")
    devices = await stats.breakdowns_per(reads, scope, "device_type", 1, per="utm_campaign")
    found = []
    for row in ranked:
        if (name := row["value"]) in analytics.NOT_A_VALUE:
            continue
        one = Scope(principal, analytics.narrowed(view.query, name))
        trend = await stats.timeseries(reads, one, view.interval)
        found.append(CampaignRow(
            name, row["clicks"], row["unique_visitors"],
            analytics.sparkline([b["clicks"] for b in trend]),
            sources[name][0]["value"], devices[name][0]["value"],
        ))  # fmt: skip
    return found


@router.get("/campaigns")
async def campaigns(
    request: Request, principal: MayReadStats, reads: StatsReads, ctx: ShortUrls
) -> Response:
    view, range_error = view_or_default(request, "/dashboard/campaigns", ctx.short_host)
    rows = await campaign_rows(reads, principal, view)
    return analytics_page(request, "campaigns.html", view, principal=principal,
                          range_error=range_error, campaigns=rows)  # fmt: skip


def _campaign_page(name: str) -> dict[str, Any]:
    """A campaign page's own: its path, its name, and its campaign whatever the URL says."""
    return {"path": "/dashboard/campaign", "page_params": [("name", name)],
            "fixed": Fixed(utm_campaign=name)}  # fmt: skip


@router.get("/campaign")
async def campaign(
    request: Request,
    name: CampaignName,
    principal: MayReadStats,
    reads: StatsReads,
    ctx: ShortUrls,
) -> Response:
    view, range_error = view_or_default(request, base_host=ctx.short_host, **_campaign_page(name))
    shown = await analytics.numbers(reads, principal, view, CAMPAIGN)
    return analytics_page(request, "campaign.html", view, principal=principal, campaign=name,
                          range_error=range_error, **shown)  # fmt: skip


@router.get("/campaign/{part:part}")
async def campaign_part(
    request: Request,
    part: Part,
    name: CampaignName,
    principal: MayReadStats,
    reads: StatsReads,
    ctx: ShortUrls,
) -> Response:
    view = view_for(request, base_host=ctx.short_host, **_campaign_page(name))
    return await part_of(request, part, reads, principal, view, CAMPAIGN, "campaign")


@dataclass(frozen=True)
class Side:
    label: str
    summary: dict[str, Any]
    tables: list[analytics.Table]


@router.get("/compare")
async def compare(
    request: Request,
    principal: MayReadStats,
    reads: StatsReads,
    ctx: ShortUrls,
    a: CampaignName = "",
    b: CampaignName = "",
) -> Response:
    """Two campaigns side by side in one period (`a`, `b`); with one campaign or none,
    the period beside the one before it."""
    a, b = (a, b) if a else (b, "")  # one campaign is `a`, whichever field named it
    page = [("a", a), ("b", b)]
    view, range_error = view_or_default(request, "/dashboard/compare", ctx.short_host,
                                        page_params=page)  # fmt: skip
    if a and b:
        queries = [(a, analytics.narrowed(view.query, a)), (b, analytics.narrowed(view.query, b))]
    else:
        query = analytics.narrowed(view.query, a) if a else view.query
        previous = analytics.narrowed(view.previous, a) if a else view.previous
        queries = [(f"{view.start} to {view.end}", query), (view.previous_label, previous)]
    sides = []
    for label, query in queries:
        summary = await stats.summary(reads, Scope(principal, query))
        sides.append(Side(label, summary, await analytics.tables(reads, principal, query, SIDE, 5)))
    offered = await stats.breakdown(
        reads, Scope(principal, view.query), "utm_campaign", CAMPAIGN_ROWS
    )
    names = [row["value"] for row in offered if row["value"] not in analytics.NOT_A_VALUE]
    return analytics_page(request, "compare.html", view, principal=principal, a=a, b=b,
                          sides=sides, campaign_names=names, range_error=range_error)  # fmt: skip


def _link_page(link: LinkOut, ctx: links.LinkContext) -> dict[str, Any]:
    """A link page's own: its path (and branded domain), and its link whatever the URL's
    filters say."""
    stored = "" if link.domain == ctx.short_host else link.domain
    return {
        "path": f"/dashboard/links/{link.slug}",
        "page_params": [("domain", link.domain)] if stored else [],
        "fixed": Fixed(links=((stored, link.slug),)),
    }


@router.get("/links/{slug}")
async def link_page(
    request: Request,
    slug: str,
    principal: MayRead,
    db: ReadSession,
    stats_reads: StatsReads,
    state: State,
    domain: DomainParam = None,
) -> Response:
    on = links.domain_named(domain, state.link_context)
    link = links.to_out(await links.get_link(db, principal, slug, on), state.link_context)
    ctx = state.link_context
    view, range_error = view_or_default(request, base_host=ctx.short_host, **_link_page(link, ctx))
    context: dict[str, Any] = {"principal": principal, "link": link, "range_error": range_error}
    if principal.may("stats:read"):
        context.update(await views.link_stats(stats_reads, principal, view))
        if link.rules or link.variants:
            context["routes"] = await views.routes(stats_reads, principal, view.query, link)
    return analytics_page(request, "link.html", view, **context)


@router.get("/links/{slug}/{part:part}")
async def link_part(
    request: Request,
    slug: str,
    part: Part,
    principal: MayReadStats,
    db: ReadSession,
    stats_reads: StatsReads,
    ctx: ShortUrls,
    domain: DomainParam = None,
) -> Response:
    link = links.to_out(
        await links.get_link(db, principal, slug, links.domain_named(domain, ctx)), ctx
    )
    view = view_for(request, base_host=ctx.short_host, **_link_page(link, ctx))
    return await part_of(request, part, stats_reads, principal, view, views.BREAKDOWNS, link.slug)
