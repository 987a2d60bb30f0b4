"""Client reports: an owner makes a read-only link to one campaign's KPIs or a set of
links' (an unguessable token, an optional expiry, revocable); whoever holds the link sees
those KPIs and nothing else of the workspace. The token is stored only as its hash."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.clock import utcnow
from app.core.errors import AppError, Invalid, NotFound
from app.core.principal import OWNER, Principal
from app.core.tables import Link, Report, ReportLink
from app.core.tokens import hash_token
from app.stats.repository import LINK_NAME, LinkRef, check_links, named

MAX_NAME = 100
MAX_LINKS = 500  # links one report may hold
MAX_DAYS = 3650


def _require_owner(principal: Principal) -> None:
    if not principal.may(OWNER):
        raise AppError(403, "forbidden", "only the workspace's owners make and revoke reports")


@dataclass(frozen=True)
class Shown:
    """A report as its owners' list shows it."""

    report: Report
    links: list[str]  # the links' names (`slug`, `host/slug`), none for a campaign's

    @property
    def status(self) -> str:
        if self.report.revoked_at is not None:
            return "revoked"
        if self.report.expires_at is not None and self.report.expires_at <= utcnow():
            return "expired"
        return "active"


async def create_report(
    session: AsyncSession,
    principal: Principal,
    name: str,
    *,
    campaign: str | None = None,
    links: Sequence[LinkRef] = (),
    expires_in_days: int | None = None,
) -> tuple[Report, str]:
    """A report of `campaign`'s links or of `links` (one, not both), and its token. The
    campaign must be one of the workspace's; every link one it holds (404 naming the
    others)."""
    _require_owner(principal)
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise Invalid(
            "invalid_report", f"give the report a name of 1 to {MAX_NAME} characters", "name"
        )
    if bool(campaign) == bool(links):
        raise Invalid(
            "invalid_report", "choose a campaign or a list of links (one of them)", "campaign"
        )
    if len(links) > MAX_LINKS:
        raise Invalid("invalid_report", f"a report holds at most {MAX_LINKS} links", "links")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_DAYS:
        raise Invalid("invalid_report", f"expiry: 1 to {MAX_DAYS} days, or none", "expires_in_days")
    mine = Principal(principal.workspace_id, frozenset())  # the workspace's own links only
    if campaign:
        found = await session.scalar(
            select(func.count()).where(*mine.sees(Link), Link.utm_campaign == campaign)
        )
        if not found:
            raise Invalid(
                "invalid_report",
                f"no link of this workspace has utm_campaign {campaign!r}",
                "campaign",
            )
    else:
        await check_links(session, mine, links)
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    report = Report(
        workspace_id=principal.workspace_id,
        token_hash=hash_token(token),
        name=name,
        utm_campaign=campaign or None,
        created_by=principal.actor[: audit.MAX_TEXT],
        expires_at=expires_at,
    )
    session.add(report)
    await session.flush()
    if links:
        ids = await session.scalars(select(Link.id).where(*mine.sees(Link), named(links)))
        session.add_all(ReportLink(report_id=report.id, link_id=link_id) for link_id in ids)
    details = (
        {"campaign": campaign}
        if campaign
        else {"links": sorted({f"{d}/{s}" if d else s for d, s in links})}
    )
    if expires_at is not None:
        details["expires_at"] = expires_at.isoformat()
    audit.record(
        session, principal, "report.create", name, details, workspace_id=report.workspace_id
    )
    return report, token


async def campaigns_of(session: AsyncSession, principal: Principal) -> list[str]:
    """The campaigns a report may show: the `utm_campaign` values of the workspace's links."""
    found = select(Link.utm_campaign).where(
        *Principal(principal.workspace_id, frozenset()).sees(Link)
    )
    found = found.where(Link.utm_campaign.is_not(None)).distinct().order_by(Link.utm_campaign)
    return list(await session.scalars(found))


async def list_reports(session: AsyncSession, principal: Principal) -> list[Shown]:
    _require_owner(principal)
    reports = list(await session.scalars(
        select(Report).where(Report.workspace_id == principal.workspace_id).order_by(Report.id.desc())
    ))  # fmt: skip
    names: dict[int, list[str]] = {}
    if reports:
        rows = await session.execute(
            select(ReportLink.report_id, LINK_NAME)
            .join(Link, Link.id == ReportLink.link_id)
            .where(ReportLink.report_id.in_([r.id for r in reports]))
            .order_by(LINK_NAME)
        )
        for report_id, link_name in rows:
            names.setdefault(report_id, []).append(link_name)
    return [Shown(report, names.get(report.id, [])) for report in reports]


async def revoke_report(session: AsyncSession, principal: Principal, report_id: int) -> Report:
    """The report's link stops working at once; revoking it again changes nothing."""
    _require_owner(principal)
    report = await session.get(Report, report_id)
    if report is None or report.workspace_id != principal.workspace_id:
        raise NotFound("report")
    if report.revoked_at is None:
        report.revoked_at = utcnow()
        audit.record(session, principal, "report.revoke", report.name, {"id": report.id},
                     workspace_id=report.workspace_id)  # fmt: skip
    return report


@dataclass(frozen=True)
class Opened:
    """A working report link: what it shows, and as whom it reads the stats."""

    report: Report
    links: tuple[LinkRef, ...] | None  # None: a campaign's links

    @property
    def principal(self) -> Principal:
        return Principal(self.report.workspace_id, frozenset({"stats:read"}),
                         actor=f"report {self.report.id}")  # fmt: skip


class ReportGone(AppError):
    def __init__(self) -> None:
        super().__init__(410, "report_gone", "This report link no longer works: ask for a new one.")


async def open_report(session: AsyncSession, token: str, now: datetime | None = None) -> Opened:
    """The report a link opens: NotFound for a token that is none, ReportGone for one
    revoked or past its expiry."""
    report = await session.scalar(select(Report).where(Report.token_hash == hash_token(token)))
    if report is None:
        raise NotFound("report")
    now = now or utcnow()
    if report.revoked_at is not None or (
        report.expires_at is not None and report.expires_at <= now
    ):
        raise ReportGone()
    if report.utm_campaign is not None:
        return Opened(report, None)
    rows = await session.execute(
        select(Link.domain, Link.slug).join(ReportLink, ReportLink.link_id == Link.id)
        .where(ReportLink.report_id == report.id)
    )  # fmt: skip
    links = tuple((domain, slug) for domain, slug in rows)
    if not links:  # every link it showed was deleted
        raise ReportGone()
    return Opened(report, links)
