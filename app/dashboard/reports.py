"""Client reports in the dashboard: the owners' page that makes, lists and revokes them,
and the report itself at /reports/{token}: an analytics view of one campaign's or a set of
links' KPIs with no sign-in, showing nothing else of the workspace. A filter in its URL can
narrow what it shows, never widen it (analytics.Fixed). The report's link is shown once,
in the page that answers the form that made it."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import ReadSession, ShortUrls, State, StatsReads, WriteSession
from app.core.errors import AppError, NotFound
from app.core.principal import Principal
from app.dashboard import analytics, stats_pages
from app.dashboard.analytics import Fixed
from app.dashboard.routes import MayOwn, Owning, PageRoute, SameOrigin, _page
from app.links.schemas import LARGEST_INTEGER
from app.ratelimit import count_failure
from app.reports import service as reports
from app.reports.service import Opened
from app.stats import service as stats

router = APIRouter(prefix="/dashboard", route_class=PageRoute, include_in_schema=False)
public = APIRouter(prefix="/reports", route_class=PageRoute, include_in_schema=False)

ReportId = Annotated[int, Path(ge=1, le=LARGEST_INTEGER)]
BREAKDOWNS = (
    ("link", "Links"), ("utm_source", "Sources"), ("referrer_source", "Referrers"),
    ("device_type", "Devices"), ("device_brand", "Phone brands"), ("os", "Operating systems"),
    ("country", "Countries"), ("city", "Cities"),
)  # fmt: skip


async def _reports_page(
    request: Request, db: AsyncSession, principal: Principal, status: int = 200, **context: Any
) -> Response:
    return _page(request, "reports.html", status, principal=principal,
                 campaigns=await reports.campaigns_of(db, principal),
                 reports=await reports.list_reports(db, principal), **context)  # fmt: skip


@router.get("/reports")
async def report_list(request: Request, principal: MayOwn, db: ReadSession) -> Response:
    return await _reports_page(request, db, principal)


@router.post("/reports", dependencies=[SameOrigin])
async def create_report(
    request: Request, principal: Owning, db: WriteSession, ctx: ShortUrls
) -> Response:
    form = await request.form()
    values = {name: str(form.get(name, ""))[:20_000].strip()
              for name in ("name", "campaign", "links", "expires_in_days")}  # fmt: skip
    try:
        names = [n for n in re.split(r"[\s,]+", values["links"]) if n]
        days = values["expires_in_days"]
        if days and not (days.isascii() and days.isdigit()):
            raise AppError(422, "invalid_report", "expiry: a whole number of days, or blank")
        report, token = await reports.create_report(
            db, principal, values["name"], campaign=values["campaign"] or None,
            links=[stats.link_ref(name, ctx.short_host) for name in names],
            expires_in_days=int(days) if days else None,
        )  # fmt: skip
    except AppError as exc:  # nothing was written
        return await _reports_page(request, db, principal, exc.status, error=exc.message,
                                   form_values=values)  # fmt: skip
    made = {"name": report.name, "url": f"{ctx.base_url}/reports/{token}"}
    return await _reports_page(request, db, principal, made=made)


@router.post("/reports/{report_id}/revoke", dependencies=[SameOrigin])
async def revoke_report(report_id: ReportId, principal: Owning, db: WriteSession) -> Response:
    await reports.revoke_report(db, principal, report_id)
    return RedirectResponse("/dashboard/reports", status_code=303)


async def _opened(request: Request, state: Any, db: AsyncSession, token: str) -> Opened:
    """The report the token opens; unknown tokens count as failed authentication (guessing
    them stays slow), and every read counts against the client's report limit."""
    await state.rate_limiter.guard_authentication(request)
    await state.rate_limiter.hit_report_read(request)
    try:
        return await reports.open_report(db, token[:100])
    except AppError as exc:
        if isinstance(exc, NotFound):  # a revoked or expired report's link was a right one
            await count_failure()
        exc.headers = {**(exc.headers or {}), **PRIVATE}
        raise


def _report_page(opened: Opened, token: str) -> dict[str, Any]:
    """A report's own: its path, and its campaign or links whatever its URL says."""
    links = opened.links
    fixed = Fixed(utm_campaign=opened.report.utm_campaign) if links is None else Fixed(links=links)
    return {"path": f"/reports/{token}", "fixed": fixed}


# The URL is the report's key: never indexed, never sent on to another site.
PRIVATE = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE)
    return response


@public.get("/{token}")
async def report_page(
    request: Request, token: str, state: State, db: ReadSession, reads: StatsReads, ctx: ShortUrls
) -> Response:
    opened = await _opened(request, state, db, token)
    page = _report_page(opened, token)
    view, range_error = stats_pages.view_or_default(request, base_host=ctx.short_host, **page)
    shown = await analytics.numbers(reads, opened.principal, view, BREAKDOWNS)
    page = stats_pages.analytics_page(request, "report.html", view, report=opened.report,
                                      range_error=range_error, **shown)  # fmt: skip
    return _private(page)


@public.get("/{token}/{part:part}")
async def report_part(
    request: Request,
    token: str,
    part: stats_pages.Part,
    state: State,
    db: ReadSession,
    reads: StatsReads,
    ctx: ShortUrls,
) -> Response:
    opened = await _opened(request, state, db, token)
    view = stats_pages.view_for(request, base_host=ctx.short_host, **_report_page(opened, token))
    return _private(await stats_pages.part_of(request, part, reads, opened.principal, view,
                                              BREAKDOWNS, "report"))  # fmt: skip
