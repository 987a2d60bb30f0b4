import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from typing_extensions import TypeAliasType

from app.api.deps import ShortUrls, StatsReads, StatsSession
from app.auth import require_scopes
from app.core.errors import Invalid
from app.core.principal import Principal
from app.spreadsheet import as_text
from app.stats import repository, service
from app.stats.periods import Interval, default_interval, parse_range, parse_zone
from app.stats.repository import CLICK_FILTERS, Match, Scope, StatsQuery
from app.stats.schemas import Breakdown, Summary, Timeseries

# Operation ids `stats_summary`, `stats_timeseries` …: the names generated clients give
# their functions.
router = APIRouter(
    prefix="/api/stats",
    tags=["stats"],
    generate_unique_id_function=lambda route: f"stats_{route.name}",
)
StatsRead = Annotated[Principal, Depends(require_scopes("stats:read"))]
MATCH_DOC = "comma-separated values match any; a leading `-` excludes them"
CSV = {"text/csv": {"schema": {"type": "string"}}}


def stats_query(
    ctx: ShortUrls,
    from_: Annotated[
        str | None, Query(alias="from", description="date or datetime, inclusive")
    ] = None,
    to: Annotated[str | None, Query(description="date or datetime, inclusive")] = None,
    tz: Annotated[str, Query(description="IANA time zone for dates and buckets")] = "UTC",
    link: Annotated[
        list[str],
        Query(
            description="slug (`host/slug` for a link on a branded domain); repeatable; 404 "
            "if one is not a link the key sees"
        ),
    ] = [],  # noqa: B006
    tag: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    utm_campaign: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    utm_source: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    utm_medium: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    country: Annotated[str | None, Query(description=MATCH_DOC + " (ISO codes)")] = None,
    region: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    city: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    device: Annotated[str | None, Query(description=MATCH_DOC + " (device types)")] = None,
    os: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    browser: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    device_brand: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    device_model: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    referrer_source: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    referrer_domain: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    in_app: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    language: Annotated[str | None, Query(description=MATCH_DOC)] = None,
    domain: Annotated[str | None, Query(description=MATCH_DOC + " (hosts)")] = None,
    include_bots: bool = False,
) -> StatsQuery:
    try:
        zone = parse_zone(tz)
        start, end = parse_range(from_, to, zone)
    except ValueError as exc:
        raise Invalid("invalid_parameter", str(exc)) from None
    match = Match.parse
    given = {
        "country": country, "region": region, "city": city, "device": device, "os": os,
        "browser": browser, "device_brand": device_brand, "device_model": device_model,
        "referrer_source": referrer_source, "referrer_domain": referrer_domain,
        "in_app": in_app, "language": language,
    }  # fmt: skip
    attributes = tuple(
        (CLICK_FILTERS[name], found) for name, text in given.items() if (found := match(text))
    )
    return StatsQuery(
        start=start, end=end, tz=zone, links=tuple(service.link_ref(name, ctx.short_host) for name in link),
        tag=match(tag),
        utm_campaign=match(utm_campaign), utm_source=match(utm_source),
        utm_medium=match(utm_medium), attributes=attributes,
        domain=service.stored_hosts(match(domain), ctx.short_host), include_bots=include_bots,
        base_host=ctx.short_host,
    )  # fmt: skip


QueryDep = Annotated[StatsQuery, Depends(stats_query)]


async def stats_scope(principal: StatsRead, q: QueryDep, session: StatsSession) -> Scope:
    """The clicks the request counts; 404 unless every `link` names a link the key sees."""
    named_links = await repository.check_links(session, principal, q.links) if q.links else None
    return Scope(principal, q, named_links)


ScopeDep = Annotated[Scope, Depends(stats_scope)]


@router.get("/summary", response_model=Summary)
async def summary(scope: ScopeDep, reads: StatsReads) -> dict:
    return await service.summary(reads, scope)


# Named, so that OpenAPI holds it as the schema `Interval` (generated clients get an enum
# of that name, not one named after the operation); the route still receives a string.
IntervalName = TypeAliasType("Interval", Interval)


@router.get("/timeseries", response_model=Timeseries)
async def timeseries(
    scope: ScopeDep,
    reads: StatsReads,
    interval: Annotated[
        IntervalName | None, Query(description="default: from the range's length")
    ] = None,
) -> dict:
    interval = interval or default_interval(scope.q.start, scope.q.end)
    try:
        buckets = await service.timeseries(reads, scope, interval)
    except ValueError as exc:
        raise Invalid("invalid_parameter", str(exc), "interval") from None
    return {"interval": interval, "tz": scope.q.tz.key, "buckets": buckets}


# The schema `Dimension`, as `Interval` above.
Dimension = TypeAliasType("Dimension", Literal[service.DIMENSIONS])  # type: ignore[valid-type]


@router.get("/breakdown/{dimension}", response_model=Breakdown)
async def breakdown(
    scope: ScopeDep,
    reads: StatsReads,
    dimension: Annotated[Dimension, Path()],
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> dict:
    rows = await service.breakdown(reads, scope, dimension, limit)
    return {"dimension": dimension, "rows": rows}


def _cell(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else as_text(value)


@router.get(
    "/clicks.csv",
    response_class=StreamingResponse,
    responses={200: {"description": "CSV with a header row", "content": CSV}},
)
async def clicks_csv(scope: ScopeDep, reads: StatsReads) -> StreamingResponse:
    """Raw clicks, oldest first, streamed as CSV (RFC 4180) with a header row; booleans
    (`new_visitor`, `is_bot`) are `true` or `false`."""

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(repository.CSV_COLUMNS)
        async for row in reads.raw_clicks(scope):
            writer.writerow([_cell(v) for v in row])
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="clicks.csv"'},
    )
