"""Who may call what: every API route of the app against every kind of caller, the
stats of one workspace never holding another's clicks, and a client report showing its
own links' clicks and nothing else.

The routes come from the app itself, so a route added without an expectation here fails
`test_every_api_route_has_an_expectation` by name: add it to MATRIX."""

import csv
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import update
from starlette.testclient import TestClient

from app import auth
from app.accounts import service as accounts
from app.config import Settings
from app.core.principal import OWNER, Principal
from app.core.tables import ApiKey, Report
from app.domains import service as domains
from app.domains.schemas import DomainCreate
from app.stats.service import DIMENSIONS
from app.utm_templates import service as utm_templates
from app.utm_templates.schemas import UtmTemplateCreate
from tests.api.dashboard.test_analytics import make_report
from tests.api.dashboard.test_pages import kpis
from tests.support.app import create_link, run_in_transaction
from tests.support.clicks import raw_click, seed_clicks
from tests.support.people import make_user, sign_in

# Not the API: the framework's docs, the ops endpoints (open to all by design), and the
# dashboard, which signs in with a session of its own and is tested with it.
NOT_API_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/healthz",
                 "/readyz", "/metrics"}  # fmt: skip
NOT_API_PREFIXES = ("/dashboard", "/reports")  # a report is a dashboard page, for anyone

SCOPES = ("links:read", "links:write", "stats:read", OWNER)
T = TypeVar("T")
SHOP = "https://shop.example.com/"


@dataclass(frozen=True)
class Access:
    """How to call a route, and what it needs: `request(link, new)` gives the keyword
    arguments of the call for an existing link `link` of workspace A and an unused slug
    `new`, which a route that makes links should use."""

    scope: str | None  # None: open to all (the TLS proxies' domain check)
    on_link: bool = False  # names A's link (domain, template): another workspace's key gets 404
    makes_link: bool = False
    request: Callable[[str, str], dict[str, Any]] = field(default=lambda link, new: {})


def _csv(link: str, new: str) -> dict[str, Any]:
    return {"files": {"file": ("links.csv", f"url,slug\n{SHOP}i,{new}\n", "text/csv")}}


MATRIX: dict[tuple[str, str], tuple[Access, ...]] = {
    ("POST", "/api/links"): (
        Access("links:write", makes_link=True,
               request=lambda link, new: {"json": {"url": SHOP, "slug": new}}),
    ),
    ("POST", "/api/links/bulk"): (
        Access("links:write", makes_link=True,
               request=lambda link, new: {"json": {"links": [{"url": SHOP, "slug": new}]}}),
    ),
    ("POST", "/api/links/import"): (
        Access("links:write", makes_link=True, request=_csv),
        Access("links:write",
               request=lambda link, new: {**_csv(link, new), "params": {"dry_run": "true"}}),
    ),
    ("GET", "/api/links"): (Access("links:read"),),
    ("GET", "/api/links/export.csv"): (Access("links:read"),),
    ("GET", "/api/links/{slug}"): (Access("links:read", on_link=True),),
    ("PATCH", "/api/links/{slug}"): (
        Access("links:write", on_link=True, request=lambda link, new: {"json": {"title": "x"}}),
    ),
    ("DELETE", "/api/links/{slug}"): (
        Access("links:write", on_link=True),
        Access("links:write", on_link=True,
               request=lambda link, new: {"params": {"purge": "true"}}),
    ),
    ("GET", "/api/links/{slug}/qr"): (Access("links:read", on_link=True),),
    ("GET", "/api/stats/summary"): (Access("stats:read"),),
    ("GET", "/api/stats/timeseries"): (Access("stats:read"),),
    ("GET", "/api/stats/breakdown/{dimension}"): (Access("stats:read"),),
    ("GET", "/api/stats/clicks.csv"): (Access("stats:read"),),
    # A cell's domain, of workspace A, is `host_of(link)`; a new one `host_of(new)`.
    # Domains, templates, members and the audit log are kept by owners (scope `owner`).
    ("POST", "/api/domains"): (
        Access(OWNER, request=lambda link, new: {"json": {"host": host_of(new)}}),
    ),
    ("GET", "/api/domains"): (Access("links:read"),),
    ("GET", "/api/domains/check"): (
        Access(None, request=lambda link, new: {"params": {"domain": host_of(link)}}),
    ),
    ("GET", "/api/domains/{host}"): (Access("links:read", on_link=True),),
    ("PATCH", "/api/domains/{host}"): (
        Access(OWNER, on_link=True, request=lambda link, new: {"json": {"root_url": SHOP}}),
    ),
    ("DELETE", "/api/domains/{host}"): (Access(OWNER, on_link=True),),
    # A cell's UTM template, of workspace A, is named as its link; a new one as `new`.
    ("POST", "/api/utm-templates"): (
        Access(OWNER, request=lambda link, new: {"json": {"name": new, "utm_source": "x"}}),
    ),
    ("GET", "/api/utm-templates"): (Access("links:read"),),
    ("GET", "/api/utm-templates/{name}"): (Access("links:read", on_link=True),),
    ("PATCH", "/api/utm-templates/{name}"): (
        Access(OWNER, on_link=True,
               request=lambda link, new: {"json": {"utm_source": "y", "name": new}}),
    ),
    ("DELETE", "/api/utm-templates/{name}"): (Access(OWNER, on_link=True),),
    # Workspaces are the instance's (admin keys). A cell's workspace is A's; its member
    # of A is `member_of(link)`.
    ("GET", "/api/workspaces"): (Access("admin"),),
    ("POST", "/api/workspaces"): (
        Access("admin", request=lambda link, new: {"json": {"name": new}}),
    ),
    ("GET", "/api/workspaces/{workspace_id}/members"): (Access(OWNER, on_link=True),),
    ("POST", "/api/workspaces/{workspace_id}/members"): (
        Access(OWNER, on_link=True,
               request=lambda link, new: {"json": {"email": member_of(new), "role": "owner"}}),
    ),
    ("PATCH", "/api/workspaces/{workspace_id}/members/{email}"): (
        Access(OWNER, on_link=True, request=lambda link, new: {"json": {"role": "owner"}}),
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/members/{email}"): (Access(OWNER, on_link=True),),
    ("GET", "/api/audit"): (Access(OWNER),),
}  # fmt: skip


def host_of(slug: str) -> str:
    return f"{slug}.acme.test"


def member_of(slug: str) -> str:
    return f"{slug}@acme.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every route is called with revoked and expired keys, all from one address: far more
    failed authentication than a person's (tests/api/test_ratelimit.py tests that limit)."""
    return settings.model_copy(update={"auth_failure_rate_limit": "1000000/minute"})


CALLERS = ("no key", "revoked key", "expired key", "key of A lacking the scope",
           "key of A", "key of B", "admin key")  # fmt: skip


def api_routes(client: TestClient) -> list[tuple[str, str, int]]:
    """(method, path, success status) of every route of the app outside NOT_API."""
    routes = []
    for route in iter_route_contexts(client.app.api.routes):  # type: ignore[attr-defined]
        # as OpenAPI names them
        path = route.path.replace("{host:host}", "{host}").replace("{name:path}", "{name}")
        if path in NOT_API_PATHS or path.startswith(NOT_API_PREFIXES):
            continue
        for method in sorted((route.methods or {"(any)"}) - {"HEAD"}):
            routes.append((method, path, getattr(route, "status_code", None) or 200))
    return routes


def test_every_api_route_has_an_expectation(client: TestClient) -> None:
    missing = [f"{m} {p}" for m, p, _ in api_routes(client) if (m, p) not in MATRIX]
    assert not missing, (
        f"routes with no expectation in tests/api/test_isolation.py MATRIX: {', '.join(missing)}"
    )


def _key(client: TestClient, workspace: str, scopes: list[str]) -> tuple[int, dict[str, str]]:
    key, token = run_in_transaction(
        client, lambda s: auth.create_key(s, name="t", scopes=scopes, workspace=workspace)
    )
    return key.id, {"Authorization": f"Bearer {token}"}


def callers(client: TestClient) -> dict[str, Callable[[str], dict[str, str]]]:
    """Each caller's headers, given the scope the route needs."""
    revoked_id, revoked = _key(client, "acme", list(SCOPES))
    run_in_transaction(client, lambda s: auth.revoke_key(s, revoked_id))
    expired_id, expired = _key(client, "acme", list(SCOPES))
    yesterday = datetime.now(UTC) - timedelta(days=1)
    run_in_transaction(client, lambda s: s.execute(
        update(ApiKey).where(ApiKey.id == expired_id).values(expires_at=yesterday)
    ))  # fmt: skip
    lacking = {
        scope: _key(client, "acme", [s for s in SCOPES if s != scope])[1] for scope in SCOPES
    }
    lacking["admin"] = _key(client, "acme", list(SCOPES))[1]
    a = _key(client, "acme", list(SCOPES))[1]
    b = _key(client, "globex", list(SCOPES))[1]
    admin = _key(client, "default", ["admin"])[1]  # of a third workspace
    return {
        "no key": lambda scope: {},
        "revoked key": lambda scope: revoked,
        "expired key": lambda scope: expired,
        "key of A lacking the scope": lambda scope: lacking[scope],
        "key of A": lambda scope: a,
        "key of B": lambda scope: b,
        "admin key": lambda scope: admin,
    }


def expected_status(caller: str, access: Access, success: int) -> int:
    if access.scope is None:
        return success
    if caller in ("no key", "revoked key", "expired key"):
        return 401
    if caller == "key of A lacking the scope":
        return 403
    if access.scope == "admin" and caller != "admin key":
        return 403
    if caller == "key of B" and access.on_link:
        return 404  # the same answer as for a slug that does not exist: nothing leaks
    return success


def test_every_api_route_answers_each_caller_as_designed(client: TestClient) -> None:
    headers_of = callers(client)
    setup = headers_of["admin key"]("admin")
    acme = headers_of["key of A"]("links:write")
    b_key = headers_of["key of B"]("links:read")
    acme_id = in_acme(client, lambda s, a: _nothing(a.workspace_id))
    unknown_link = client.get("/api/links/no-such-link", headers=b_key).json()
    unknown_domain = client.get("/api/domains/no-such.test", headers=b_key).json()
    unknown_template = client.get("/api/utm-templates/no-such-template", headers=b_key).json()
    unknown_workspace = client.get("/api/workspaces/999999/members", headers=b_key).json()
    wrong: list[str] = []
    cell = 0
    for method, path, success in api_routes(client):
        for variant, access in enumerate(MATRIX.get((method, path), ())):
            for caller in CALLERS:
                cell += 1
                link, new = f"l{cell}", f"n{cell}"
                create_link(client, acme, slug=link, url=SHOP, title="kept")
                domain = f"/api/domains/{host_of(link)}"
                if path.startswith("/api/domains"):
                    in_acme(client, lambda s, a, link=link: domains.create_domain(
                        s, a, DomainCreate(host=host_of(link)), "tautan.test"))  # fmt: skip
                template = f"/api/utm-templates/{link}"
                if path.startswith("/api/utm-templates"):
                    in_acme(client, lambda s, a, link=link: utm_templates.create_template(
                        s, a, UtmTemplateCreate(name=link, utm_source="a")))  # fmt: skip
                members = f"/api/workspaces/{acme_id}/members"
                if path.startswith("/api/workspaces/{workspace_id}/members/"):
                    in_acme(client, lambda s, a, link=link: accounts.add_member(
                        s, a, a.workspace_id, member_of(link), "viewer"))  # fmt: skip
                before = client.get(f"/api/links/{link}", headers=setup).json()
                before_domain = client.get(domain, headers=setup).json()
                before_template = client.get(template, headers=setup).json()
                before_members = client.get(members, headers=setup).json()
                url = path.format(slug=link, dimension="country", host=host_of(link), name=link,
                                  workspace_id=acme_id, email=member_of(link))  # fmt: skip
                response = client.request(method, url,
                                          headers=headers_of[caller](access.scope or "links:read"),
                                          **access.request(link, new))  # fmt: skip
                expected = expected_status(caller, access, success)
                name = f"{method} {path} #{variant} by {caller}"
                if response.status_code != expected:
                    wrong.append(f"{name}: {response.status_code}, expected {expected}")
                    continue
                unknown = (unknown_domain if path.startswith("/api/domains") else
                           unknown_template if path.startswith("/api/utm-templates") else
                           unknown_workspace if path.startswith("/api/workspaces/") else
                           unknown_link)  # fmt: skip
                if expected == 404 and response.json() != unknown:
                    wrong.append(f"{name}: 404 unlike an unknown one's: {response.text}")
                if expected != success:  # refused: nothing changed, nothing made
                    after = client.get(f"/api/links/{link}", headers=setup)
                    if after.json() != before:
                        wrong.append(f"{name}: refused, but the link changed: {after.text}")
                    made = client.get(f"/api/links/{new}", headers=setup).status_code
                    if access.makes_link and made != 404:
                        wrong.append(f"{name}: refused, but it made a link")
                    if client.get(domain, headers=setup).json() != before_domain:
                        wrong.append(f"{name}: refused, but the domain changed")
                    if client.get(f"/api/domains/{host_of(new)}", headers=setup).status_code != 404:
                        wrong.append(f"{name}: refused, but it made a domain")
                    if client.get(template, headers=setup).json() != before_template:
                        wrong.append(f"{name}: refused, but the template changed")
                    if client.get(f"/api/utm-templates/{new}", headers=setup).status_code != 404:
                        wrong.append(f"{name}: refused, but it made a template")
                    if client.get(members, headers=setup).json() != before_members:
                        wrong.append(f"{name}: refused, but the members changed")
                    listed = client.get("/api/workspaces", headers=setup).json()["workspaces"]
                    if new in {workspace["name"] for workspace in listed}:
                        wrong.append(f"{name}: refused, but it made a workspace")
    assert not wrong, "\n".join(wrong)


def in_acme(client: TestClient, work: Callable[[Any, Principal], Awaitable[T]]) -> T:
    """Run `work(session, principal)` as workspace A's owner at the command line (in the
    API only an admin key may make A's domains, templates and members)."""

    async def go(session: Any) -> T:
        acme = await auth.get_or_create_workspace(session, "acme")
        return await work(session, Principal.operator(acme.id))

    return run_in_transaction(client, go)


async def _nothing(value: T) -> T:
    return value


def _make_link(client: TestClient, headers: dict[str, str], slug: str) -> dict[str, Any]:
    return create_link(client, headers, slug=slug, url=SHOP, tags=["shared-tag"],
                       utm_campaign="shared")  # fmt: skip


def test_link_collections_show_only_the_workspace(client: TestClient) -> None:
    headers_of = callers(client)
    a, b, admin = (headers_of[c]("links:read") for c in ("key of A", "key of B", "admin key"))
    _make_link(client, a, "a1")
    _make_link(client, a, "a2")
    _make_link(client, b, "b1")
    for headers, own in ((a, {"a1", "a2"}), (b, {"b1"}), (admin, {"a1", "a2", "b1"})):
        for params in ({}, {"tag": "shared-tag"}, {"utm_campaign": "shared"}, {"sort": "clicks"},
                       {"limit": "1"}):  # fmt: skip
            assert _listed(client, headers, params) == own, (params, own)
        assert _listed(client, headers, {"q": "2"}) == own & {"a2"}
        exported = client.get("/api/links/export.csv", headers=headers).text
        assert {row["slug"] for row in csv.DictReader(io.StringIO(exported))} == own


def _listed(client: TestClient, headers: dict[str, str], params: dict[str, str]) -> set[str]:
    """The slugs of every page of GET /api/links."""
    slugs: set[str] = set()
    cursor: str | None = None
    while True:
        page = client.get("/api/links", params={**params, **({"cursor": cursor} if cursor else {})},
                          headers=headers).json()  # fmt: skip
        slugs |= {link["slug"] for link in page["links"]}
        if not (cursor := page["next_cursor"]):
            return slugs


# Clicks per workspace, each a different mix so a leak shows in every dimension.
A_CLICKS = {"ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "referer": "https://t.co/x", "language": "id-ID", "ip": "203.0.113.5"}  # fmt: skip
B_CLICKS = {"referer": "https://www.facebook.com/", "language": "en-US", "ip": "198.51.100.7"}
STATS_PATHS = ("/api/stats/summary", "/api/stats/timeseries", "/api/stats/breakdown/link",
               "/api/stats/clicks.csv")  # fmt: skip


def test_stats_never_hold_another_workspaces_clicks(client: TestClient) -> None:
    headers_of = callers(client)
    a, b, admin = (headers_of[c]("stats:read") for c in ("key of A", "key of B", "admin key"))
    a_link = _make_link(client, a, "a1")
    b_link = _make_link(client, b, "b1")
    now = datetime.now(UTC).replace(microsecond=0)
    seed_clicks(client, [raw_click(a_link, now - timedelta(minutes=i), **A_CLICKS) for i in range(3)]
                + [raw_click(b_link, now - timedelta(minutes=i), **B_CLICKS) for i in range(5)])  # fmt: skip
    today = now.date()
    ranges = {  # whole days read the rollups; a click filter reads raw clicks
        "rollups": {"from": str(today - timedelta(days=1)), "to": str(today)},
        "raw clicks": {"from": str(today - timedelta(days=1)), "to": str(today),
                       "country": "-ZZ"},
    }  # fmt: skip
    for headers, slugs in ((a, {"a1"}), (b, {"b1"}), (admin, {"a1", "b1"})):
        for source, params in ranges.items():
            for extra in ({}, {"link": "a1"}, {"link": "b1"}, {"tag": "shared-tag"},
                          {"utm_campaign": "shared"}):  # fmt: skip
                q = {**params, **extra}
                where = f"{source} {extra} with the key of {sorted(slugs)}"
                if "link" in extra and extra["link"] not in slugs:
                    # Another workspace's link is unknown here, as a missing one: 404 on
                    # every stats endpoint, never zeros that tell it exists.
                    for path in STATS_PATHS:
                        response = client.get(path, params=q, headers=headers)
                        missing = client.get(path, params={**q, "link": "zz"}, headers=headers)
                        assert response.status_code == missing.status_code == 404, (path, where)
                        assert response.text == missing.text.replace("zz", extra["link"]), where
                    continue
                # Each workspace's clicks come from one visitor.
                seen = slugs & {extra["link"]} if "link" in extra else slugs
                want = sum({"a1": 3, "b1": 5}[slug] for slug in seen)
                summary = client.get("/api/stats/summary", params=q, headers=headers).json()
                assert (summary["clicks"], summary["unique_visitors"]) == (want, len(seen)), where
                series = client.get("/api/stats/timeseries", params=q, headers=headers).json()
                assert sum(bucket["clicks"] for bucket in series["buckets"]) == want, where
                # Every dimension once; under the link filters, the one that names links.
                for dimension in DIMENSIONS if not extra else ("link",):
                    rows = client.get(f"/api/stats/breakdown/{dimension}", params=q,
                                      headers=headers).json()["rows"]  # fmt: skip
                    assert sum(row["clicks"] for row in rows) == want, (dimension, where)
                    if dimension == "link":
                        assert {row["value"] for row in rows} <= slugs, where
                raw = client.get("/api/stats/clicks.csv", params=q, headers=headers).text
                assert len(raw.splitlines()) - 1 == want, where


REPORT_PARTS = ("", "/chart.svg", "/map.svg", "/export.csv")


def test_a_report_shows_only_its_own_links_and_a_revoked_or_expired_one_nothing(
    client: TestClient,
) -> None:
    """Workspaces A and B each have a link of the campaign `shared`; A also a link of no
    campaign. A report of A's campaign, and one of A's other link, show those clicks
    alone, whatever filter their URL adds; a revoked or expired one shows nothing."""
    headers_of = callers(client)
    a, b = headers_of["key of A"]("links:write"), headers_of["key of B"]("links:write")
    a1, b1 = _make_link(client, a, "a1"), _make_link(client, b, "b1")
    a2 = create_link(client, a, slug="a2", url=SHOP)
    now = datetime.now(UTC).replace(microsecond=0)
    seed_clicks(client, [raw_click(a1, now - timedelta(minutes=i), **A_CLICKS) for i in range(3)]
                + [raw_click(a2, now - timedelta(minutes=i), **A_CLICKS) for i in range(2)]
                + [raw_click(b1, now - timedelta(minutes=i), **B_CLICKS) for i in range(5)])  # fmt: skip
    client.headers["Origin"] = "http://tautan.test"
    make_user(client, "owner@acme.test", "owner", workspace="acme")
    sign_in(client, "owner@acme.test")
    campaign = make_report(client, campaign="shared")
    of_a2 = make_report(client, links="a2")
    revoked, expired = make_report(client, campaign="shared"), make_report(client, links="a1")
    # Newest first: `expired`, then `revoked`.
    listed = re.findall(
        r'action="/dashboard/reports/(\d+)/revoke"', client.get("/dashboard/reports").text
    )
    client.post(f"/dashboard/reports/{listed[1]}/revoke")
    run_in_transaction(client, lambda s: s.execute(
        update(Report).where(Report.id == int(listed[0])).values(expires_at=now)))  # fmt: skip
    client.cookies.clear()  # the client's browser: no session
    today = {"range": "today", "tz": "UTC"}
    # (filter, clicks shown): a filter narrows a report; a link outside a report of links
    # is refused (the report is shown without the filter); B's clicks never count.
    cases = {
        campaign: ({"a1"}, [({}, 3), ({"link": "a1"}, 3), ({"link": "a2"}, 0), ({"link": "b1"}, 0),
                            ({"utm_campaign": "other"}, 3), ({"device": "mobile"}, 3)]),
        of_a2: ({"a2"}, [({}, 2), ({"link": "a2"}, 2), ({"link": "a1"}, 2), ({"link": "b1"}, 2),
                         ({"utm_campaign": "shared"}, 0), ({"device": "mobile"}, 2)]),
    }  # fmt: skip
    for path, (own, expected) in cases.items():
        for extra, want in expected:
            page = client.get(path, params={**today, **extra})
            assert (page.status_code, kpis(page.text)[0]) == (200, want), (path, extra)
            exported = client.get(f"{path}/export.csv", params={**today, **extra})
            if exported.status_code == 422:  # the filter names no link of the report
                continue
            links = {row["value"] for row in csv.DictReader(io.StringIO(exported.text))
                     if row["section"] == "Links"}  # fmt: skip
            assert links <= own, (path, extra, links)
            for part in REPORT_PARTS[1:3]:
                assert client.get(path + part, params={**today, **extra}).status_code == 200
    for path in (revoked, expired):
        for part in REPORT_PARTS:
            response = client.get(path + part, params=today)
            assert response.status_code == 410, (path, part)
            assert "a1" not in response.text and "shared" not in response.text
