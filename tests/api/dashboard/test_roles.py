"""The dashboard's role axis: every page and form of the dashboard against each role a
person may hold in a workspace, and against an owner of another workspace.

The routes come from the app itself, so a page added without an expectation here fails
`test_every_dashboard_route_has_a_role` by name: add it to ROLES_NEEDED."""

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.core.tables import AuditEvent, Link, Report, Workspace
from tests.support.app import BASE_URL, create_link, make_key, run_in_transaction
from tests.support.people import make_user, sign_in

# The request's keyword arguments, given the cell's names (`new`: one not used yet;
# `member`: a viewer of A of the cell's own) and workspace A's id (`a`).
Form = Callable[[dict[str, Any]], dict[str, Any]]

# The least role that may use each route (None: anyone, signed in or not), and whether it
# names a thing of workspace A (an owner of B then gets the 404 of a thing that is not).
ROLES_NEEDED: dict[tuple[str, str], tuple[str | None, bool, Form]] = {
    ("GET", "/dashboard/static/{name}"): (None, False, lambda c: {}),
    ("GET", "/dashboard"): (None, False, lambda c: {}),
    ("GET", "/dashboard/"): (None, False, lambda c: {}),
    ("GET", "/dashboard/sign-in"): (None, False, lambda c: {}),
    ("POST", "/dashboard/sign-in"): (None, False, lambda c: {}),
    ("POST", "/dashboard/sign-out"): (None, False, lambda c: {}),
    ("GET", "/dashboard/set-password/{token}"): (None, False, lambda c: {}),
    ("POST", "/dashboard/set-password/{token}"): (None, False, lambda c: {}),
    ("GET", "/dashboard/forgot-password"): (None, False, lambda c: {}),
    ("POST", "/dashboard/forgot-password"): (None, False, lambda c: {"data": {"email": "x@y.z"}}),
    ("GET", "/dashboard/{path:path}"): (None, False, lambda c: {}),
    ("POST", "/dashboard/{path:path}"): (None, False, lambda c: {}),
    ("POST", "/dashboard/workspace"): ("viewer", False, lambda c: {"data": {"workspace": str(c["a"])}}),
    ("GET", "/dashboard/links"): ("viewer", False, lambda c: {}),
    ("GET", "/dashboard/links/{slug}"): ("viewer", True, lambda c: {}),
    ("GET", "/dashboard/links/{slug}/{part:part}"): ("viewer", True, lambda c: {}),
    ("GET", "/dashboard/overview"): ("viewer", False, lambda c: {}),
    ("GET", "/dashboard/overview/{part:part}"): ("viewer", False, lambda c: {}),
    ("GET", "/dashboard/campaigns"): ("viewer", False, lambda c: {}),
    ("GET", "/dashboard/campaign"): ("viewer", False, lambda c: {"params": {"name": "spring"}}),
    ("GET", "/dashboard/campaign/{part:part}"): (
        "viewer", False, lambda c: {"params": {"name": "spring"}}),
    ("GET", "/dashboard/compare"): ("viewer", False, lambda c: {}),
    ("GET", "/dashboard/reports"): ("owner", False, lambda c: {}),
    ("POST", "/dashboard/reports"): ("owner", True, lambda c: {"data": {"name": "r", "links": c["slug"]}}),
    ("POST", "/dashboard/reports/{report_id}/revoke"): ("owner", True, lambda c: {}),
    ("GET", "/dashboard/links/{slug}/qr.{kind}"): ("viewer", True, lambda c: {}),
    ("GET", "/dashboard/domains"): ("viewer", False, lambda c: {}),
    ("GET", "/dashboard/new"): ("editor", False, lambda c: {}),
    ("POST", "/dashboard/new"): (
        "editor", False, lambda c: {"data": {"url": "https://shop.example/", "slug": c["new"]}}),
    ("GET", "/dashboard/links/{slug}/edit"): ("editor", True, lambda c: {}),
    ("POST", "/dashboard/links/{slug}/edit"): (
        "editor", True, lambda c: {"data": {"url": "https://shop.example/changed"}}),
    ("POST", "/dashboard/links/{slug}/archive"): ("editor", True, lambda c: {}),
    ("POST", "/dashboard/links/{slug}/restore"): ("editor", True, lambda c: {}),
    ("POST", "/dashboard/domains"): ("owner", False, lambda c: {"data": {"host": f"{c['new']}.test"}}),
    ("POST", "/dashboard/domains/{host}/remove"): ("owner", True, lambda c: {}),
    ("GET", "/dashboard/members"): ("owner", False, lambda c: {}),
    ("POST", "/dashboard/members"): (
        "owner", False, lambda c: {"data": {"email": f"{c['new']}@acme.test", "role": "owner"}}),
    ("POST", "/dashboard/members/role"): (
        "owner", True, lambda c: {"data": {"email": c["member"], "role": "owner"}}),
    ("POST", "/dashboard/members/remove"): ("owner", True, lambda c: {"data": {"email": c["member"]}}),
    ("POST", "/dashboard/members/reset"): ("owner", True, lambda c: {"data": {"email": c["member"]}}),
    ("GET", "/dashboard/keys"): ("owner", False, lambda c: {}),
    ("POST", "/dashboard/keys"): (
        "owner", False, lambda c: {"data": {"name": c["new"], "scope": ["links:read"]}}),
    ("POST", "/dashboard/keys/{key_id}/revoke"): ("owner", True, lambda c: {}),
    ("GET", "/dashboard/audit"): ("owner", False, lambda c: {}),
}  # fmt: skip
RANKS = {"viewer": 0, "editor": 1, "owner": 2}


def dashboard_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in iter_route_contexts(client.app.api.routes):  # type: ignore[attr-defined]
        if route.path.startswith("/dashboard"):
            routes.extend(
                (method, route.path) for method in sorted((route.methods or set()) - {"HEAD"})
            )
    return routes


def test_every_dashboard_route_has_a_role(client: TestClient) -> None:
    missing = [f"{m} {p}" for m, p in dashboard_routes(client) if (m, p) not in ROLES_NEEDED]
    assert not missing, f"add to ROLES_NEEDED in {__file__}: {', '.join(missing)}"


def _writes(client: TestClient) -> tuple[int, int]:
    """What any write leaves: an audit entry; and links (which a refused form must not make)."""

    async def count(s: Any) -> tuple[int, int]:
        return (await s.scalar(select(func.count()).select_from(AuditEvent)),
                await s.scalar(select(func.count()).select_from(Link)))  # fmt: skip

    return run_in_transaction(client, count)


@pytest.mark.parametrize("role", ["viewer", "editor", "owner", "owner of B"])
def test_each_role_may_use_what_its_role_allows_and_nothing_more(
    client: TestClient, role: str
) -> None:
    client.headers["Origin"] = BASE_URL
    owner = make_key(client, "links:read", "links:write", "stats:read", "owner", workspace="acme")
    make_user(client, "person@acme.test" if role != "owner of B" else "person@b.test",
              role.split()[0], workspace="acme" if role != "owner of B" else "globex")  # fmt: skip
    sign_in(client, "person@acme.test" if role != "owner of B" else "person@b.test")
    acme_id = run_in_transaction(client, _acme_id)
    wrong: list[str] = []
    for cell, (method, path) in enumerate(dashboard_routes(client)):
        needed, on_a_thing, form = ROLES_NEEDED[(method, path)]
        if needed is None:
            continue  # open to all: tested with their pages
        slug, new = f"l{cell}", f"n{cell}"
        create_link(client, owner, slug=slug)
        host = f"{slug}.acme.test"
        client.post("/api/domains", json={"host": host}, headers=owner)
        key_id = run_in_transaction(client, _new_key_id)
        report_id = run_in_transaction(client, _new_report_id)
        member = f"{slug}@acme.test"
        make_user(client, member, "viewer", workspace="acme")
        url = path.replace("{part:part}", "chart.svg").format(
            slug=slug, kind="svg", host=host, key_id=key_id, report_id=report_id
        )
        before = _writes(client)
        response = client.request(
            method, url, **form({"new": new, "member": member, "a": acme_id, "slug": slug})
        )
        if role == "owner of B":
            # Its own workspace's pages; A's things are as unknown as missing ones, and A
            # is not one it may switch to.
            expected = (
                {404} if on_a_thing else {403} if path == "/dashboard/workspace" else {200, 303}
            )
        else:
            expected = {200, 303} if RANKS[role] >= RANKS[needed] else {403}
        name = f"{method} {path} as {role}"
        if response.status_code not in expected:
            wrong.append(f"{name}: {response.status_code}, expected {expected}")
        if response.status_code in (403, 404) and _writes(client) != before:
            wrong.append(f"{name}: refused, but something was written")
        accepted = method == "POST" and response.status_code in (200, 303)
        if accepted and path != "/dashboard/workspace" and _writes(client)[0] == before[0]:
            wrong.append(f"{name}: accepted, but no audit entry says who")
    assert not wrong, "\n".join(wrong)


async def _acme_id(session: Any) -> int:
    return int(await session.scalar(select(Workspace.id).where(Workspace.name == "acme")))


async def _new_report_id(session: Any) -> int:
    report = Report(workspace_id=await _acme_id(session), token_hash=secrets.token_hex(32),
                    name="spare", utm_campaign="spring", created_by="test")  # fmt: skip
    session.add(report)
    await session.flush()
    return report.id


async def _new_key_id(session: Any) -> int:
    from app import auth

    key, _ = await auth.create_key(session, name="spare", scopes=["links:read"], workspace="acme")
    return key.id
