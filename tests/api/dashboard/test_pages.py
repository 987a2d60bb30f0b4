"""The dashboard over real HTTP (the app's own TestClient): signing in and out with email
and password, the session cookie, security headers, roles, workspaces and the link form."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from starlette.testclient import TestClient

from app import auth
from app.accounts import service as accounts
from app.config import Settings
from app.core.principal import Principal
from app.core.tables import DashboardSession, Membership, User, Workspace
from app.core.tokens import hash_token
from app.dashboard import session
from app.main import create_app
from tests.support.app import BASE_URL, DESKTOP_UA, PEER, create_link, run_in_transaction
from tests.support.clicks import raw_click, seed_clicks, with_writer
from tests.support.people import PASSWORD, make_user, sign_in

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WHATSAPP = "WhatsApp/2.23.20.0 A"
FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
ALL_SCOPES = ("links:read", "links:write", "stats:read")
EDITOR, OWNER = "editor@tautan.test", "owner@tautan.test"
REFUSED = "That email and password do not match an account."


@pytest.fixture
def client(client: TestClient) -> TestClient:
    """The app, as a browser on the dashboard's own pages calls it: browsers send `Origin`
    with every form POST (tests of forms without it take it off)."""
    client.headers["Origin"] = BASE_URL
    return client


def new_key(client: TestClient, *scopes: str, workspace: str = "default") -> tuple[int, str]:
    key, token = run_in_transaction(
        client, lambda s: auth.create_key(s, name="web", scopes=list(scopes), workspace=workspace)
    )
    return key.id, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/dashboard/sign-in", data={"email": email, "password": password})


def use_cookie(client: TestClient, cookie: str) -> None:
    """Be the browser that holds `cookie` (and no other)."""
    client.cookies.clear()
    client.cookies.set(session.COOKIE, cookie, domain="tautan.test", path="/dashboard")


def signed_out(client: TestClient) -> bool:
    response = client.get("/dashboard/links")
    return (response.status_code, response.headers.get("location")) == (
        303,
        "/dashboard/sign-in",
    )


def session_hashes(client: TestClient) -> list[str]:
    """The token hashes of the dashboard sessions the database holds."""

    async def hashes(s):  # type: ignore[no-untyped-def]
        return list(await s.scalars(select(DashboardSession.token_hash)))

    return run_in_transaction(client, hashes)


def workspace_id(client: TestClient, name: str) -> int:
    return run_in_transaction(
        client, lambda s: s.scalar(select(Workspace.id).where(Workspace.name == name))
    )


def text(html: str) -> str:
    """The page's words, without tags, in single spaces."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def kpi(html: str, name: str) -> int:
    """A KPI an analytics page shows: `clicks`, `visitors`, `bots` or `links`."""
    found = re.search(rf'id="kpi-{name}">([\d,]+)<', html)
    assert found, f"no {name} KPI"
    return int(found.group(1).replace(",", ""))


def kpis(html: str) -> tuple[int, int, int]:
    """The clicks, unique visitors and bot fetches an analytics page shows."""
    return kpi(html, "clicks"), kpi(html, "visitors"), kpi(html, "bots")


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    return unescape(match[1]) if match else ""


def slugs_listed(client: TestClient, **params: str) -> list[str]:
    response = client.get("/dashboard/links", params=params)
    assert response.status_code == 200, response.text
    return re.findall(r'<a href="/dashboard/links/([^"/?]+)"><strong>', response.text)


def api_slugs(client: TestClient, token: str) -> list[str]:
    response = client.get("/api/links", headers=bearer(token))
    return [link["slug"] for link in response.json()["links"]]


def signed_in_as(client: TestClient, email: str, role: str, workspace: str = "default") -> str:
    """Sign in a new user of `role` in `workspace`. Returns the token of a key with every
    scope but admin in the same workspace, for the test's own API calls (users have none)."""
    make_user(client, email, role, workspace)
    sign_in(client, email)
    return new_key(client, *ALL_SCOPES, workspace=workspace)[1]


@pytest.fixture
def user(client: TestClient) -> str:
    """A signed-in editor of the default workspace; the token of a key of that workspace."""
    return signed_in_as(client, EDITOR, "editor")


@pytest.fixture
def owner(client: TestClient) -> str:
    """A signed-in owner of the default workspace (owners keep its domains); the token of
    a key of that workspace."""
    return signed_in_as(client, OWNER, "owner")


# Signing in and out


def test_pages_need_a_session(client: TestClient) -> None:
    link = create_link(client, bearer(new_key(client, "admin")[1]), slug="promo")
    for path in ("/dashboard", "/dashboard/links", "/dashboard/new", "/dashboard/links/promo",
                 "/dashboard/links/promo/edit", "/dashboard/links/promo/chart.svg",
                 "/dashboard/links/promo/qr.png", "/dashboard/domains"):  # fmt: skip
        response = client.get(path, follow_redirects=True)
        assert response.url.path == "/dashboard/sign-in", path
        # The page asks for an account's email and password, not an API key.
        assert 'name="email" type="email"' in response.text
        assert 'name="password" type="password"' in response.text
        assert "API key" not in text(response.text)
    response = client.post("/dashboard/new", data={"url": "https://shop.example/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in"
    switch = client.post("/dashboard/workspace", data={"workspace": "1"})
    assert (switch.status_code, switch.headers["location"]) == (303, "/dashboard/sign-in")
    assert api_slugs(client, new_key(client, "admin")[1]) == [link["slug"]]


def test_the_sign_in_page_says_how_to_make_the_first_owner(client: TestClient) -> None:
    first = "tautan users create you@example.com --workspace default --role owner"
    assert first in text(client.get("/dashboard/sign-in").text)
    make_user(client, OWNER, "owner")
    assert first not in text(client.get("/dashboard/sign-in").text)


def test_a_good_password_signs_in_with_a_strict_httponly_cookie(client: TestClient) -> None:
    make_user(client, EDITOR)
    # The email as typed: spaces around it and capitals count for nothing.
    response = post_sign_in(client, "  Editor@Tautan.TEST ")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/overview"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    # The cookie holds a session's token, neither the password nor the hash the table
    # keeps of the token: it opens no API.
    value = cookie.split(";")[0].partition("=")[2]
    payload = URLSafeTimedSerializer("").load_payload(value.rsplit(".", 2)[0].encode())
    assert session_hashes(client) == [hash_token(payload)]
    assert PASSWORD not in value and payload != PASSWORD
    assert hash_token(payload) not in value
    assert client.get("/api/links", headers=bearer(value)).status_code == 401
    assert client.get("/api/links", headers=bearer(payload)).status_code == 401
    flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/dashboard"} <= flags
    assert "secure" not in flags  # TAUTAN_BASE_URL is http here
    page = client.get("/dashboard/links")
    assert page.status_code == 200
    assert "Sign out" in page.text and EDITOR in page.text


def test_cookie_is_secure_when_the_base_url_is_https(settings: Settings) -> None:
    https = settings.model_copy(update={"base_url": "https://tautan.test"})
    with with_writer(
        TestClient(create_app(https), base_url="https://tautan.test", client=PEER)
    ) as client:
        make_user(client, EDITOR, "viewer")
        response = client.post(
            "/dashboard/sign-in",
            data={"email": EDITOR, "password": PASSWORD},
            headers={"Origin": "https://tautan.test"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower().split("; ")


INVITED = "invited@tautan.test"  # a member who has not set a password yet


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("nobody@tautan.test", PASSWORD),  # no such account
        (EDITOR, "not the password"),
        (EDITOR, PASSWORD.upper()),
        (EDITOR, ""),
        ("", ""),
        ("x" * 300, "x" * 300),
        (EDITOR, "x" * 300),
        (INVITED, ""),
        (INVITED, PASSWORD),
    ],
    ids=["unknown", "wrong", "wrong-case", "no-password", "empty", "junk", "long", "invited",
         "invited-guess"],
)  # fmt: skip
def test_bad_email_or_password_shows_one_error_and_sets_no_cookie(
    client: TestClient, email: str, password: str
) -> None:
    make_user(client, EDITOR)
    make_user(client, INVITED)

    async def no_password_yet(s):  # type: ignore[no-untyped-def]
        await s.execute(update(User).where(User.email == INVITED).values(password_hash=None))

    run_in_transaction(client, no_password_yet)
    response = post_sign_in(client, email, password)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    # One message for every case: the page tells nobody which accounts exist.
    assert REFUSED in text(response.text)
    if password:
        assert password not in response.text  # never shown back
    assert client.get("/dashboard/links").status_code == 303
    assert session_hashes(client) == []


def test_a_user_of_no_workspace_is_told_so_and_not_signed_in(client: TestClient) -> None:
    user_id = make_user(client, EDITOR)
    run_in_transaction(
        client, lambda s: s.execute(delete(Membership).where(Membership.user_id == user_id))
    )
    response = post_sign_in(client, EDITOR)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert "Your account belongs to no workspace yet" in text(response.text)
    assert client.get("/dashboard/links").status_code == 303


def test_a_removed_membership_signs_out_at_once(client: TestClient, user: str) -> None:
    assert client.get("/dashboard/links").status_code == 200
    # Only the membership goes, not the session: the next request finds its user a
    # member of no workspace.
    run_in_transaction(client, lambda s: s.execute(delete(Membership)))
    response = client.get("/dashboard/links")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in"
    assert 'tautan_session=""' in response.headers["set-cookie"]  # cleared
    assert "max-age=0" in response.headers["set-cookie"].lower()
    # Signing in again is refused as well.
    assert post_sign_in(client, EDITOR).status_code == 403


def test_removing_a_member_ends_their_sessions_there(client: TestClient, owner: str) -> None:
    """Sessions in that workspace end, rather than move on to the person's other one."""
    owners_cookie = client.cookies[session.COOKIE]
    make_user(client, EDITOR)
    make_user(client, EDITOR, "viewer", workspace="kopi")
    sign_in(client, EDITOR)  # in the default workspace, the first by name
    editors_cookie = client.cookies[session.COOKIE]
    assert slugs_listed(client) == []

    async def remove(s):  # type: ignore[no-untyped-def]
        default = await s.scalar(select(Workspace.id).where(Workspace.name == "default"))
        await accounts.remove_member(s, Principal.operator(), default, EDITOR)

    run_in_transaction(client, remove)
    use_cookie(client, editors_cookie)
    assert signed_out(client)
    use_cookie(client, owners_cookie)
    assert client.get("/dashboard/links").status_code == 200


def test_a_password_reset_ends_every_session_of_the_user(client: TestClient, user: str) -> None:
    """Whoever had the old password (and a browser signed in with it) is out once the
    person sets a new one through a one-time reset link."""
    first = client.cookies[session.COOKIE]
    sign_in(client, EDITOR)  # as another browser
    second = client.cookies[session.COOKIE]
    other = signed_in_as(client, OWNER, "owner")  # someone else, who stays signed in
    others = client.cookies[session.COOKIE]

    async def reset_link(s):  # type: ignore[no-untyped-def]
        return await accounts.issue_password_token(s, await accounts.user_named(s, EDITOR), "reset")

    token = run_in_transaction(client, reset_link)
    client.cookies.clear()  # the link is opened on a phone
    new = "a brand new passphrase"
    response = client.post(
        f"/dashboard/set-password/{token}", data={"password": new, "password_again": new}
    )
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/overview")
    assert client.get("/dashboard/links").status_code == 200  # the phone is signed in
    for cookie in (first, second):
        use_cookie(client, cookie)
        assert signed_out(client)
    use_cookie(client, others)
    assert client.get("/dashboard/links").status_code == 200
    assert api_slugs(client, other) == []  # the other's key is untouched too
    # The old password no longer opens the account; the new one does; the link is spent.
    client.cookies.clear()
    assert post_sign_in(client, EDITOR).status_code == 401
    assert post_sign_in(client, EDITOR, new).status_code == 303
    again = client.post(
        f"/dashboard/set-password/{token}", data={"password": new, "password_again": new}
    )
    assert again.status_code == 410


def test_a_lapsed_session_signs_out(client: TestClient, user: str) -> None:
    assert client.get("/dashboard/links").status_code == 200

    async def lapse(s):  # type: ignore[no-untyped-def]
        await s.execute(
            update(DashboardSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    run_in_transaction(client, lapse)
    assert signed_out(client)


def test_tampered_or_foreign_cookie_is_signed_out(client: TestClient, user: str) -> None:
    good = client.cookies[session.COOKIE]
    payload, _, signature = good.rpartition(".")
    token = URLSafeTimedSerializer("").load_payload(good.rsplit(".", 2)[0].encode())
    other_secret = URLSafeTimedSerializer("another instance", salt=session.SALT)
    for cookie in (
        payload + "." + signature[::-1],  # signature changed
        good.replace(good[2], "A" if good[2] != "A" else "B", 1),  # payload changed
        other_secret.dumps(token),  # the right session, another secret
        "garbage",
    ):
        use_cookie(client, cookie)
        assert signed_out(client), cookie
    use_cookie(client, good)
    assert client.get("/dashboard/links").status_code == 200


def test_sign_out_clears_the_cookie(client: TestClient, user: str) -> None:
    response = client.post("/dashboard/sign-out")
    assert response.status_code == 303
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert client.get("/dashboard/links").status_code == 303


def test_sign_out_ends_that_session_and_no_other(client: TestClient, user: str) -> None:
    """A copy of a signed-out cookie (kept by malware, or in a shared computer's profile)
    opens nothing; another browser signed in to the same account stays signed in."""
    first = client.cookies[session.COOKIE]
    sign_in(client, EDITOR)  # as another browser
    second = client.cookies[session.COOKIE]
    use_cookie(client, first)
    assert client.post("/dashboard/sign-out").status_code == 303

    use_cookie(client, first)
    assert signed_out(client)
    use_cookie(client, second)
    assert client.get("/dashboard/links").status_code == 200


def test_forms_from_another_site_are_refused(client: TestClient, user: str) -> None:
    response = client.post(
        "/dashboard/new",
        data={"url": "https://shop.example/", "slug": "csrf"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert api_slugs(client, user) == []
    same = client.post(
        "/dashboard/new",
        data={"url": "https://shop.example/", "slug": "mine"},
        headers={"Origin": BASE_URL},
    )
    assert same.status_code == 303
    # Behind a reverse proxy that sends its upstream as Host, the public origin still counts.
    proxied = client.post(
        "/dashboard/new",
        data={"url": "https://shop.example/", "slug": "proxied"},
        headers={"Origin": BASE_URL, "Host": "127.0.0.1:8000"},
    )
    assert proxied.status_code == 303
    # The Origin decides when there is one, whatever the Referer says.
    spoofed = client.post(
        "/dashboard/new",
        data={"url": "https://shop.example/", "slug": "spoofed"},
        headers={"Origin": "https://evil.example", "Referer": f"{BASE_URL}/dashboard/new"},
    )
    assert spoofed.status_code == 403
    assert sorted(api_slugs(client, user)) == ["mine", "proxied"]


def test_forms_without_an_origin_are_judged_by_their_referer(client: TestClient, user: str) -> None:
    del client.headers["Origin"]  # an old browser, or a proxy that strips it
    create_link(client, bearer(user), slug="kept")
    for path, form in (("/dashboard/new", {"url": "https://shop.example/", "slug": "csrf"}),
                       ("/dashboard/links/kept/archive", {})):  # fmt: skip
        response = client.post(path, data=form, headers={"Referer": "https://evil.example/x"})
        assert response.status_code == 403, path
    assert api_slugs(client, user) == ["kept"]
    assert client.get("/kept").status_code == 302  # not archived
    same = client.post(
        "/dashboard/new",
        data={"url": "https://shop.example/", "slug": "mine"},
        headers={"Referer": f"{BASE_URL}/dashboard/new"},
    )
    assert same.status_code == 303
    # Behind a reverse proxy: the public origin, or the Host the proxy sends, both count.
    for referer in (f"{BASE_URL}/dashboard/links/kept", "http://127.0.0.1:8000/dashboard/links"):
        proxied = client.post(
            "/dashboard/links/kept/archive",
            headers={"Referer": referer, "Host": "127.0.0.1:8000"},
        )
        assert proxied.status_code == 303, referer
    assert sorted(api_slugs(client, user)) == ["mine"]


def test_forms_with_neither_origin_nor_referer_are_refused(client: TestClient) -> None:
    del client.headers["Origin"]
    make_user(client, EDITOR)
    token = new_key(client, *ALL_SCOPES)[1]
    response = post_sign_in(client, EDITOR)  # the right email and password
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert "allow the Referer for this site" in text(response.text)
    client.headers["Origin"] = BASE_URL
    sign_in(client, EDITOR)
    del client.headers["Origin"]
    response = client.post("/dashboard/new", data={"url": "https://shop.example/", "slug": "x"})
    assert response.status_code == 403
    assert api_slugs(client, token) == []


# Headers


def test_security_headers_on_every_dashboard_response(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo")
    paths = ["/dashboard/links", "/dashboard/new", "/dashboard/links/promo",
             "/dashboard/links/promo/edit", "/dashboard/links/promo/chart.svg",
             "/dashboard/links/promo/qr.svg", "/dashboard/static/dashboard.css",
             "/dashboard/static/utm.js", "/dashboard/links/missing", "/dashboard/no/such/page",
             "/dashboard/links?sort=nonsense"]  # fmt: skip
    client.cookies.clear()
    paths.append("/dashboard/sign-in")
    sign_in(client, EDITOR)
    for path in paths:
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().partition(" ")[::2] for d in csp.split(";"))
        assert directives["default-src"] == "'self'", path
        assert "'unsafe-inline'" not in directives.get("script-src", "'self'"), path
        assert directives["frame-ancestors"] == "'none'", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
    for path in ("/dashboard/links", "/dashboard/new", "/dashboard/links/promo"):
        html = client.get(path).text
        # Nothing the CSP would block: no inline script, style or handler, nothing off-site.
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), path
        assert not re.search(r'(?:\ssrc|<link[^>]*\shref)="(?:https?:)?//', html), path


def test_dashboard_is_not_in_the_openapi_schema(client: TestClient) -> None:
    assert not [p for p in client.get("/openapi.json").json()["paths"] if "dashboard" in p]


def test_chart_is_an_svg_that_loads_nothing_from_elsewhere(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo")
    response = client.get("/dashboard/links/promo/chart.svg", params={"from": "2026-03-01"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.lstrip().startswith("<?xml")
    assert not re.search(r'(?:src|href)="(?:https?:)?//', response.text)
    assert "script-src 'none'" in response.headers["content-security-policy"]


def test_the_chart_draws_clicks_over_unique_visitors(client: TestClient, clicked: dict) -> None:
    """Unique visitors never exceed clicks; drawn last, clicks are never hidden under them."""
    svg = client.get(
        "/dashboard/links/promo/chart.svg", params={"from": "2026-03-01", "to": "2026-03-31"}
    ).text
    # pygal draws its series in the order of its legend.
    legends = re.search(r'"legends": \[(.*?)\]', svg)
    assert legends is not None
    assert legends[1] == '"Clicks, previous period", "Unique visitors", "Clicks"'


# Roles and workspaces


def test_a_viewer_reads_links_and_stats_but_cannot_write(client: TestClient) -> None:
    admin = new_key(client, "admin")[1]
    link = create_link(client, bearer(admin), slug="promo", title="Before")
    seed_clicks(client, [raw_click(link, datetime.now(UTC), ua=IPHONE)])
    make_user(client, "viewer@tautan.test", "viewer")
    sign_in(client, "viewer@tautan.test")
    listed = client.get("/dashboard/links")
    assert listed.status_code == 200 and "promo" in listed.text
    assert "New link" not in listed.text
    # The link, its KPIs and its chart.
    page = client.get("/dashboard/links/promo")
    assert page.status_code == 200
    assert kpis(page.text)[:2] == (1, 1)
    assert client.get("/dashboard/links/promo/chart.svg").status_code == 200
    assert 'action="/dashboard/links/promo/archive"' not in page.text
    # No form to write with, nor a way around one.
    for path in ("/dashboard/new", "/dashboard/links/promo/edit"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "links:write" in text(response.text), path
    for path, form in (("/dashboard/new", {"url": "https://shop.example/x", "slug": "x"}),
                       ("/dashboard/links/promo/edit", {"url": "https://x.example/", "title": "After"}),
                       ("/dashboard/links/promo/archive", {})):  # fmt: skip
        response = client.post(path, data=form)
        assert response.status_code == 403, path
        assert "lacks the scope" in text(response.text), path
        assert "links:write" in text(response.text), path
    assert api_slugs(client, admin) == ["promo"]
    after = client.get("/api/links/promo", headers=bearer(admin)).json()
    assert (after["title"], after["archived"]) == ("Before", False)


def test_an_editor_writes_links(client: TestClient, user: str) -> None:
    page = client.get("/dashboard/links").text
    assert 'href="/dashboard/new">New link' in page
    made = client.post("/dashboard/new", data={"url": "https://shop.example/", "slug": "mine"})
    assert made.status_code == 303
    edited = client.post("/dashboard/links/mine/edit", data={"url": "https://shop.example/b"})
    assert edited.status_code == 303
    assert client.post("/dashboard/links/mine/archive").status_code == 303
    link = client.get("/api/links/mine", headers=bearer(user)).json()
    assert (link["url"], link["archived"]) == ("https://shop.example/b", True)


def test_only_owners_add_or_remove_domains(client: TestClient, user: str) -> None:
    """A workspace's domains are its owners' to add and remove; an editor sees them."""
    admin = new_key(client, "admin")[1]
    made = client.post("/api/domains", json={"host": "go.toko.test"}, headers=bearer(admin))
    assert made.status_code == 201
    domains = client.get("/dashboard/domains")
    assert domains.status_code == 200 and "go.toko.test" in domains.text
    assert 'action="/dashboard/domains"' not in domains.text
    assert 'action="/dashboard/domains/go.toko.test/remove"' not in domains.text
    added = client.post("/dashboard/domains", data={"host": "go.kopi.test"})
    assert added.status_code == 403
    assert "owner" in text(added.text)  # what it takes
    assert client.post("/dashboard/domains/go.toko.test/remove").status_code == 403
    hosts = client.get("/api/domains", headers=bearer(admin)).json()["domains"]
    assert [domain["host"] for domain in hosts] == ["go.toko.test"]


def test_workspaces_never_see_each_other(client: TestClient) -> None:
    _, token_a = new_key(client, *ALL_SCOPES, workspace="agency-a")
    _, token_b = new_key(client, *ALL_SCOPES, workspace="agency-b")
    a = create_link(client, bearer(token_a), slug="a-launch", tags=["spring"])
    b = create_link(client, bearer(token_b), slug="b-secret", tags=["spring"], title="B only")
    now = datetime.now(UTC)
    seed_clicks(client, [raw_click(b, now, ua=IPHONE), raw_click(b, now, ua=WHATSAPP),
                         raw_click(a, now, ua=IPHONE)])  # fmt: skip
    make_user(client, "a@agency-a.test", "owner", workspace="agency-a")
    make_user(client, "b@agency-b.test", "owner", workspace="agency-b")
    sign_in(client, "a@agency-a.test")
    assert slugs_listed(client) == ["a-launch"]
    assert slugs_listed(client, q="secret") == []
    assert slugs_listed(client, tag="spring") == ["a-launch"]
    for path in ("", "/edit", "/chart.svg", "/qr.svg", "/qr.png"):
        response = client.get(f"/dashboard/links/b-secret{path}")
        assert response.status_code == 404, path
        assert "B only" not in response.text
    for path, form in (("/edit", {"url": "https://a.example/"}), ("/archive", {})):
        response = client.post(f"/dashboard/links/b-secret{path}", data=form)
        assert response.status_code == 404, path
    b_now = client.get("/api/links/b-secret", headers=bearer(token_b)).json()
    assert (b_now["url"], b_now["archived"]) == (b["url"], False)
    # A's own page counts A's clicks only.
    html = client.get("/dashboard/links/a-launch").text
    assert kpis(html) == (1, 1, 0)
    page = text(html)
    assert "Shared on" not in page
    # Nor is the other workspace offered in the switcher, or reachable through it.
    assert "agency-b" not in client.get("/dashboard/links").text
    b_id = str(workspace_id(client, "agency-b"))
    assert client.post("/dashboard/workspace", data={"workspace": b_id}).status_code == 403
    # B's owner sees B's, and not A's.
    sign_in(client, "b@agency-b.test")
    assert slugs_listed(client) == ["b-secret"]
    assert client.get("/dashboard/links/a-launch").status_code == 404


def test_the_workspace_switcher(client: TestClient) -> None:
    """A person in two workspaces (an editor in one, a viewer in the other) looks at one
    at a time, with the role held there."""
    create_link(client, bearer(new_key(client, *ALL_SCOPES, workspace="agency-a")[1]), slug="a1")
    create_link(client, bearer(new_key(client, *ALL_SCOPES, workspace="agency-b")[1]), slug="b1")
    create_link(client, bearer(new_key(client, *ALL_SCOPES)[1]), slug="default1")
    both = "both@tautan.test"
    make_user(client, both, "editor", workspace="agency-a")
    make_user(client, both, "viewer", workspace="agency-b")
    a, b = workspace_id(client, "agency-a"), workspace_id(client, "agency-b")
    sign_in(client, both)
    # The first workspace by name, and a switcher offering both with their roles.
    page = client.get("/dashboard/links").text
    assert re.search(rf'<option value="{a}" selected>agency-a \(editor\)</option>', page)
    assert f'<option value="{b}">agency-b (viewer)</option>' in page
    switcher = re.search(r'<select id="workspace-switcher".*?</select>', page, re.S)
    assert switcher is not None and "default" not in switcher[0]  # not a member there
    assert slugs_listed(client) == ["a1"]

    switched = client.post("/dashboard/workspace", data={"workspace": str(b)})
    assert (switched.status_code, switched.headers["location"]) == (303, "/dashboard/overview")
    assert slugs_listed(client) == ["b1"]
    assert client.get("/dashboard/links/b1").status_code == 200
    assert client.get("/dashboard/links/a1").status_code == 404
    assert "New link" not in client.get("/dashboard/links").text  # a viewer here
    assert client.post("/dashboard/new", data={"url": "https://shop.example/"}).status_code == 403

    # A workspace the person is no member of: refused, and the session stays where it was.
    for other in (workspace_id(client, "default"), 999_999):
        refused = client.post("/dashboard/workspace", data={"workspace": str(other)})
        assert refused.status_code == 403, other
        assert slugs_listed(client) == ["b1"]
    # From another site: refused too.
    cross = client.post(
        "/dashboard/workspace",
        data={"workspace": str(a)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert slugs_listed(client) == ["b1"]

    # Each browser looks where it switched to.
    viewing_b = client.cookies[session.COOKIE]
    sign_in(client, both)
    assert slugs_listed(client) == ["a1"]
    use_cookie(client, viewing_b)
    assert slugs_listed(client) == ["b1"]
    # Taken out of the workspace it looks at, the browser is signed out; signed in again,
    # the person sees the workspace left to them and cannot switch back.
    run_in_transaction(
        client, lambda s: s.execute(delete(Membership).where(Membership.workspace_id == b))
    )
    response = client.get("/dashboard/links")
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/sign-in")
    sign_in(client, both)
    assert slugs_listed(client) == ["a1"]
    assert f'<option value="{b}"' not in client.get("/dashboard/links").text
    switch_back = client.post("/dashboard/workspace", data={"workspace": str(b)})
    assert switch_back.status_code == 403


# The link form


def test_create_through_the_form(client: TestClient, user: str) -> None:
    form = {
        "url": "https://shop.example.com/sale?utm_source=old&ref=a+b#top",
        "slug": "spring",
        "title": "Spring sale",
        "tags": "ig, launch , ig",
        "utm_source": " instagram ",
        "utm_medium": "social",
        "utm_campaign": "spring sale",
        "redirect_code": "307",
    }
    response = client.post("/dashboard/new", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/links/spring"
    link = client.get("/api/links/spring", headers=bearer(user)).json()
    assert link["destination"] == (
        "https://shop.example.com/sale?utm_source=instagram&ref=a+b"
        "&utm_medium=social&utm_campaign=spring%20sale#top"
    )
    assert link["tags"] == ["ig", "launch"]
    assert link["redirect_code"] == 307
    assert link["forward_query"] is False  # the box was not ticked
    page = client.get("/dashboard/links/spring")
    assert link["destination"] in unescape(page.text)
    assert client.get("/spring").headers["location"] == link["destination"]


def test_tags_are_separated_by_commas_or_bars_as_in_csv(client: TestClient, user: str) -> None:
    form = {"url": "https://shop.example.com/", "slug": "bars", "tags": "ig|launch, spring |"}
    assert client.post("/dashboard/new", data=form).status_code == 303
    link = client.get("/api/links/bars", headers=bearer(user)).json()
    assert link["tags"] == ["ig", "launch", "spring"]


def test_a_links_title_in_the_list_opens_its_page(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="titled", title="Spring sale")
    page = client.get("/dashboard/links").text
    anchor = re.search(r'<a href="/dashboard/links/titled">(.*?)</a>', page, re.DOTALL)
    assert anchor is not None and "Spring sale" in anchor[1]


def test_new_form_previews_the_destination_without_script(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo", url="https://a.example/?x=1", utm_term="t 1")
    page = client.get("/dashboard/links/promo/edit").text
    preview = re.search(r'<output id="destination-preview"[^>]*>([^<]*)</output>', page)
    assert preview is not None
    assert unescape(preview[1]) == "https://a.example/?x=1&utm_term=t%201"


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"url": ""}, "url", "a destination URL is required"),
        ({"url": "ftp://files.example/a"}, "url", "only http and https URLs are accepted"),
        ({"url": "https://u:p@shop.example/"}, "url", "credentials (user:password@) are not allowed in the URL"),
        ({"url": f"{BASE_URL}/other"}, "url", "url must not point at this service"),
        ({"url": "https://shop.example/", "slug": "a b"}, "slug", "String should match pattern '^[A-Za-z0-9_-]{1,64}$'"),
        ({"url": "https://shop.example/", "slug": "dashboard"}, "slug", "'dashboard' is a reserved word"),
        ({"url": "https://shop.example/", "slug": "taken"}, "slug", "the slug 'taken' is taken"),
        ({"url": "https://shop.example/", "utm_source": "x" * 256}, "utm_source", "String should have at most 255 characters"),
        ({"url": "https://shop.example/", "redirect_code": "303"}, "redirect_code", "Input should be 301, 302, 307 or 308"),
        ({"url": "https://shop.example/", "max_clicks": "0"}, "max_clicks", "Input should be greater than 0"),
        ({"url": "https://shop.example/", "max_clicks": "many"}, "max_clicks", "Input should be a valid integer"),
        ({"url": "https://shop.example/", "expires_at": "soon"}, "expires_at", "Input should be a valid datetime"),
        ({"url": "https://shop.example/", "og_image": "javascript:alert(1)"}, "og_image", "only http and https URLs are accepted"),
    ],
)  # fmt: skip
def test_form_errors_are_shown_and_nothing_is_saved(
    client: TestClient, user: str, form: dict[str, str], field: str, message: str
) -> None:
    create_link(client, bearer(user), slug="taken")
    response = client.post("/dashboard/new", data={"title": "Kept", **form})
    assert response.status_code == 422
    assert field_error(response.text, field).startswith(message)
    assert "The link was not saved" in text(response.text)
    assert 'value="Kept"' in response.text  # what was typed is still there
    assert api_slugs(client, user) == ["taken"]


@pytest.mark.parametrize("code", ["²", "9" * 5000])
def test_a_redirect_code_that_is_no_number_is_a_field_error(
    client: TestClient, user: str, code: str
) -> None:
    form = {"url": "https://shop.example/", "slug": "odd", "redirect_code": code}
    response = client.post("/dashboard/new", data=form)
    assert response.status_code == 422
    assert field_error(response.text, "redirect_code") == "Input should be 301, 302, 307 or 308"
    assert api_slugs(client, user) == []
    create_link(client, bearer(user), slug="promo")
    edit = client.post("/dashboard/links/promo/edit", data={**form, "redirect_code": code})
    assert edit.status_code == 422
    assert client.get("/api/links/promo", headers=bearer(user)).json()["redirect_code"] == 302


def test_a_link_named_new_has_its_own_page(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="new", title="Slug new")
    (row,) = slugs_listed(client)
    page = client.get(f"/dashboard/links/{row}")  # where its row in the list leads
    assert page.status_code == 200
    assert "<h1>Slug new</h1>" in page.text and "Create link" not in page.text
    # The new-link form has a path of its own, and still creates links.
    assert 'href="/dashboard/new">New link' in client.get("/dashboard/links").text
    assert "Create link" in client.get("/dashboard/new").text
    response = client.post("/dashboard/new", data={"url": "https://shop.example/", "slug": "x"})
    assert response.headers["location"] == "/dashboard/links/x"
    assert sorted(api_slugs(client, user)) == ["new", "x"]


def test_refused_edit_changes_nothing(client: TestClient, user: str) -> None:
    before = create_link(client, bearer(user), slug="promo", url="https://a.example/", title="T")
    response = client.post(
        "/dashboard/links/promo/edit", data={"url": f"{BASE_URL}/loop", "title": "Changed"}
    )
    assert response.status_code == 422
    assert field_error(response.text, "url") == "url must not point at this service"
    after = client.get("/api/links/promo", headers=bearer(user)).json()
    assert (after["url"], after["title"]) == (before["url"], "T")
    assert client.get("/promo").headers["location"] == "https://a.example/"


def test_edit_through_the_form(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo", utm_source="ig", tags=["a"])
    assert client.get("/promo").headers["location"] == "https://shop.example.com/?utm_source=ig"
    response = client.post(
        "/dashboard/links/promo/edit",
        data={"url": "https://shop.example.com/new", "utm_source": "", "utm_campaign": "june",
              "tags": "", "forward_query": "on", "redirect_code": "302"},
    )  # fmt: skip
    assert response.status_code == 303
    link = client.get("/api/links/promo", headers=bearer(user)).json()
    assert link["destination"] == "https://shop.example.com/new?utm_campaign=june"
    assert (link["utm_source"], link["tags"]) == (None, [])
    # The redirect cache of this process forgets the old destination at once.
    assert client.get("/promo").headers["location"] == link["destination"]


def test_an_edit_keeps_the_seconds_of_an_unchanged_expiry(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo", expires_at="2031-01-01T12:00:30Z")
    edit_page = client.get("/dashboard/links/promo/edit").text
    assert 'value="2031-01-01T12:00"' in edit_page  # the field shows minutes only
    form = {"url": "https://shop.example.com/", "expires_at": "2031-01-01T12:00", "title": "New"}
    assert client.post("/dashboard/links/promo/edit", data=form).status_code == 303
    link = client.get("/api/links/promo", headers=bearer(user)).json()
    assert (link["title"], link["expires_at"]) == ("New", "2031-01-01T12:00:30Z")
    # Another minute is a change, and is saved as typed.
    moved = {**form, "expires_at": "2031-01-01T12:05"}
    assert client.post("/dashboard/links/promo/edit", data=moved).status_code == 303
    link = client.get("/api/links/promo", headers=bearer(user)).json()
    assert link["expires_at"] == "2031-01-01T12:05:00Z"


def test_social_preview_and_limits_through_the_form(client: TestClient, user: str) -> None:
    form = {
        "url": "https://shop.example.com/drop",
        "slug": "drop",
        "og_title": "The <spring> drop",
        "og_description": "Limited pairs",
        "og_image": "https://shop.example.com/card.jpg",
        "expires_at": "2030-01-31T18:30",
        "max_clicks": "2",
        "fallback_url": "https://shop.example.com/sold-out",
    }
    assert client.post("/dashboard/new", data=form).status_code == 303
    link = client.get("/api/links/drop", headers=bearer(user)).json()
    assert (link["og_title"], link["og_image"]) == ("The <spring> drop", form["og_image"])
    assert (link["expires_at"], link["max_clicks"]) == ("2030-01-31T18:30:00Z", 2)
    edit = client.get("/dashboard/links/drop/edit").text
    assert 'value="2030-01-31T18:30"' in edit and 'value="The &lt;spring&gt; drop"' in edit
    preview = client.get("/drop", headers={"User-Agent": "WhatsApp/2.23.20.0 A"})
    assert preview.status_code == 200 and "The &lt;spring&gt; drop" in preview.text
    people = [client.get("/drop").headers["location"] for _ in range(3)]
    assert people == [link["destination"]] * 2 + [form["fallback_url"]]
    # Blank fields clear them on edit.
    cleared = {**form, "og_title": "", "max_clicks": "", "expires_at": "", "fallback_url": ""}
    assert client.post("/dashboard/links/drop/edit", data=cleared).status_code == 303
    link = client.get("/api/links/drop", headers=bearer(user)).json()
    assert (link["og_title"], link["max_clicks"], link["expires_at"]) == (None, None, None)
    assert client.get("/drop").headers["location"] == link["destination"]


def test_archive_and_restore_through_the_dashboard(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo")
    assert client.post("/dashboard/links/promo/archive").status_code == 303
    assert client.get("/promo").status_code == 404  # this process's cache forgot it at once
    assert slugs_listed(client) == []
    assert slugs_listed(client, archived="true") == ["promo"]
    page = client.get("/dashboard/links/promo").text
    assert "archived" in page and 'action="/dashboard/links/promo/restore"' in page
    assert client.post("/dashboard/links/promo/restore").status_code == 303
    assert client.get("/promo").status_code == 302
    assert slugs_listed(client) == ["promo"]


def test_archiving_needs_the_editor_role_same_origin_and_the_workspace(
    client: TestClient,
) -> None:
    create_link(client, bearer(new_key(client, "links:write", workspace="b")[1]), slug="theirs")
    create_link(client, bearer(new_key(client, "links:write")[1]), slug="mine")
    make_user(client, "viewer@tautan.test", "viewer")
    make_user(client, EDITOR, "editor")
    sign_in(client, "viewer@tautan.test")
    assert client.post("/dashboard/links/mine/archive").status_code == 403
    sign_in(client, EDITOR)
    assert client.post("/dashboard/links/theirs/archive").status_code == 404
    cross = client.post("/dashboard/links/mine/archive", headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert (client.get("/mine").status_code, client.get("/theirs").status_code) == (302, 302)


# The link page


@pytest.fixture
def clicked(client: TestClient, user: str) -> dict:
    link = create_link(client, bearer(user), slug="promo", utm_campaign="spring")
    day = datetime(2026, 3, 10, 9, tzinfo=UTC)
    seed_clicks(client, [
        raw_click(link, day, ua=IPHONE, referer="https://l.instagram.com/"),
        raw_click(link, day + timedelta(minutes=5), ua=IPHONE, referer="https://l.instagram.com/"),
        raw_click(link, day + timedelta(hours=14), ip="198.51.100.7"),
        raw_click(link, day, ua=WHATSAPP),
        raw_click(link, day, ua=WHATSAPP, ip="198.51.100.8"),
        raw_click(link, day, ua=FACEBOOK),
    ])  # fmt: skip
    return link


def test_link_page_shows_kpis_breakdowns_and_where_it_was_shared(
    client: TestClient, clicked: dict
) -> None:
    response = client.get(
        "/dashboard/links/promo", params={"from": "2026-03-01", "to": "2026-03-31"}
    )
    assert response.status_code == 200
    page = text(response.text)
    assert kpis(response.text) == (3, 2, 3)
    assert "Shared on WhatsApp: 2 preview fetches" in page
    assert "Shared on Facebook: 1 preview fetch " in page
    assert "Device type mobile 2 desktop 1" in page
    assert "Referrer instagram 2 direct 1" in page
    assert "utm_campaign spring 3" in page
    assert "Hour of day 0 0 1 0" in page  # every hour in clock order, from midnight
    assert "9 2 10 0" in page
    assert 'src="/dashboard/links/promo/chart.svg?from=2026-03-01&amp;to=2026-03-31&amp;tz=UTC"' in response.text  # fmt: skip
    # The same clicks seen from Jakarta (UTC+7): 09:00 UTC is 16:00 there.
    jakarta = text(client.get("/dashboard/links/promo", params={"from": "2026-03-01", "to": "2026-03-31", "tz": "Asia/Jakarta"}).text)  # fmt: skip
    assert "16 2 17 0" in jakarta
    # Another range holds none of them.
    empty_page = client.get("/dashboard/links/promo", params={"from": "2026-04-01"}).text
    assert kpis(empty_page) == (0, 0, 0)
    empty = text(empty_page)
    assert "No link-preview fetches in this range." in empty
    # No geo database here: the place breakdowns say how to get one.
    assert "tautan geo update --dbip" in page and "TAUTAN_GEOIP_DB" in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"from": "2026-03-31", "to": "2026-03-01"}, "'from' must not be after 'to'"),
        ({"from": "yesterday"}, "'yesterday' is neither a date"),
    ],
)
def test_a_bad_range_is_explained(client: TestClient, clicked: dict, params: dict, message: str) -> None:  # fmt: skip
    response = client.get("/dashboard/links/promo", params=params)
    assert response.status_code == 200
    assert message in text(response.text)
    assert "Showing the last 30 days in UTC instead." in text(response.text)
    assert client.get("/dashboard/links/promo/chart.svg", params=params).status_code == 422


def test_qr_downloads(client: TestClient, user: str) -> None:
    create_link(client, bearer(user), slug="promo")
    svg = client.get("/dashboard/links/promo/qr.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-disposition"] == 'attachment; filename="promo-qr.svg"'
    assert "<svg" in svg.text
    png = client.get("/dashboard/links/promo/qr.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert client.get("/dashboard/links/promo/qr.gif").status_code == 422


def test_list_searches_filters_and_pages(client: TestClient, user: str) -> None:
    for i in range(55):
        create_link(client, bearer(user), slug=f"l{i:02}", tags=["even" if i % 2 == 0 else "odd"])
    first = client.get("/dashboard/links")
    assert len(re.findall(r"<strong>l\d\d</strong>", first.text)) == 50
    more = re.search(r'<a href="(\?[^"]+)">More links', first.text)
    assert more is not None
    rest = client.get("/dashboard/links" + unescape(more[1]))
    assert re.findall(r"<strong>(l\d\d)</strong>", rest.text) == ["l04", "l03", "l02", "l01", "l00"]
    assert slugs_listed(client, q="l5") == ["l54", "l53", "l52", "l51", "l50"]
    assert slugs_listed(client, q="l1", tag="odd") == ["l19", "l17", "l15", "l13", "l11"]
    bad = client.get("/dashboard/links", params={"cursor": "!!"})
    assert bad.status_code == 400
    assert "the cursor is not one this API gave out" in text(bad.text)


# Branded domains


def test_the_domains_page_adds_lists_and_removes_a_workspaces_domains(
    client: TestClient, owner: str
) -> None:
    added = client.post(
        "/dashboard/domains", data={"host": "GO.Toko.test", "root_url": "https://toko.example/"}
    )
    assert added.status_code == 303
    page = text(client.get("/dashboard/domains").text)
    assert "go.toko.test" in page and "https://toko.example/" in page
    refused = client.post("/dashboard/domains", data={"host": "https://x.test/"})
    assert refused.status_code == 422 and "domain name alone" in text(refused.text)
    taken = client.post("/dashboard/domains", data={"host": "go.toko.test"})
    assert taken.status_code == 422 and "registered already" in text(taken.text)

    # A new link offers the domain, and its page and paths carry it.
    form = client.get("/dashboard/new").text
    assert '<option value="go.toko.test"' in form
    made = client.post("/dashboard/new", data={"url": "https://shop.example.com/", "slug": "p",
                                                "domain": "go.toko.test"})  # fmt: skip
    assert made.headers["location"] == "/dashboard/links/p?domain=go.toko.test"
    link_page = client.get(made.headers["location"]).text
    assert "http://go.toko.test/p" in link_page
    assert 'href="/dashboard/links/p/edit?domain=go.toko.test"' in link_page
    assert client.get("/dashboard/links/p").status_code == 404  # not on the base host
    client.post("/dashboard/new", data={"url": "https://shop.example.com/", "slug": "q"})
    listed = client.get("/dashboard/links", params={"domain": "go.toko.test"}).text
    assert '<option value="go.toko.test" selected>' in listed
    assert "links/p?domain=go.toko.test" in listed and "/dashboard/links/q" not in listed
    assert (
        "/dashboard/links/q"
        in client.get("/dashboard/links", params={"domain": "tautan.test"}).text
    )

    in_use = client.post("/dashboard/domains/go.toko.test/remove")
    assert in_use.status_code == 409 and "archive" in text(in_use.text)
    archived = client.post("/dashboard/links/p/archive", params={"domain": "go.toko.test"})
    assert archived.headers["location"] == "/dashboard/links/p?domain=go.toko.test"
    removed = client.post("/dashboard/domains/go.toko.test/remove")
    assert removed.status_code == 303
    assert "go.toko.test" not in text(client.get("/dashboard/domains").text)


def test_another_workspaces_domain_is_neither_shown_nor_offered_nor_removable(
    client: TestClient, owner: str
) -> None:
    _, other = new_key(client, "admin", workspace="kopi")  # domains are an owner's: admin keys
    response = client.post("/api/domains", json={"host": "go.kopi.test"}, headers=bearer(other))
    assert response.status_code == 201
    assert "go.kopi.test" not in client.get("/dashboard/domains").text
    assert "go.kopi.test" not in client.get("/dashboard/new").text
    assert client.post("/dashboard/domains/go.kopi.test/remove").status_code == 404
    used = client.post(
        "/dashboard/new", data={"url": "https://shop.example.com/", "domain": "go.kopi.test"}
    )
    assert used.status_code == 422 and "not a domain of this workspace" in text(used.text)


# Targeting, passwords and UTM templates through the form


def input_value(html: str, name: str) -> str | None:
    """The value an <input name=…> shows (None when the page has no such field)."""
    match = re.search(rf'<input id="{name}" name="{name}"[^>]*?value="([^"]*)"', html)
    return unescape(match[1]) if match else None


def ticked(html: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)" checked>', html)


TARGETED = {
    "url": "https://shop.example.com/sale",
    "slug": "targeted",
    "redirect_code": "302",
    "rule-0-name": "iphone-id",
    "rule-0-device": ["mobile", "tablet"],
    "rule-0-os": "iOS",
    "rule-0-country": "id, my",
    "rule-0-url": "https://apps.apple.com/app/x",
    # A blank row between two rules is left out: the rules keep the rows' order.
    "rule-1-name": "", "rule-1-os": "", "rule-1-country": "", "rule-1-language": "",
    "rule-1-url": "",
    "rule-2-name": "indonesian",
    "rule-2-language": "id",
    "rule-2-url": "https://shop.example.com/id",
    "rule-3-name": "", "rule-3-url": "",
    "variant-0-name": "b",
    "variant-0-url": "https://shop.example.com/sale-b",
    "variant-0-weight": "30",
    "variant-1-name": "c",
    "variant-1-url": "https://shop.example.com/sale-c",
    "variant-1-weight": "20",
    "variant-2-name": "", "variant-2-url": "", "variant-2-weight": "",
}  # fmt: skip


def test_rules_and_variants_through_the_form(client: TestClient, user: str) -> None:
    form = client.get("/dashboard/new").text
    for field in ("rule-0-name", "rule-1-url", "variant-1-weight", "password"):
        assert f'name="{field}"' in form, field
    assert 'name="rule-2-name"' not in form  # two blank rows, no more
    assert ticked(form, "rule-0-device") == []
    response = client.post("/dashboard/new", data=TARGETED)
    assert response.status_code == 303, text(response.text)
    link = client.get("/api/links/targeted", headers=bearer(user)).json()
    assert link["rules"] == [
        {"name": "iphone-id", "if": {"device": ["mobile", "tablet"], "os": ["iOS"],
                                     "country": ["ID", "MY"]},
         "url": "https://apps.apple.com/app/x"},
        {"name": "indonesian", "if": {"language": ["id"]}, "url": "https://shop.example.com/id"},
    ]  # fmt: skip
    assert link["variants"] == [
        {"name": "b", "url": "https://shop.example.com/sale-b", "weight": 30},
        {"name": "c", "url": "https://shop.example.com/sale-c", "weight": 20},
    ]
    assert link["has_password"] is False
    to = client.get("/targeted", headers={"User-Agent": DESKTOP_UA, "Accept-Language": "id-ID"})
    assert to.headers["location"] == "https://shop.example.com/id"

    # The edit form shows them, each in its row, and two blank rows of each kind after.
    edit = client.get("/dashboard/links/targeted/edit").text
    assert input_value(edit, "rule-0-name") == "iphone-id"
    assert ticked(edit, "rule-0-device") == ["mobile", "tablet"]
    assert (input_value(edit, "rule-0-country"), input_value(edit, "rule-0-os")) == (
        "ID, MY",
        "iOS",
    )
    assert input_value(edit, "rule-1-language") == "id"
    assert (input_value(edit, "rule-2-name"), input_value(edit, "rule-3-name")) == ("", "")
    assert input_value(edit, "rule-4-name") is None
    assert input_value(edit, "variant-1-weight") == "20"
    assert input_value(edit, "variant-3-name") == ""

    # Changed: the first rule's countries and URL; blanked: the second rule and a variant.
    changed = {
        **TARGETED,
        "rule-0-country": "SG",
        "rule-0-url": "https://apps.apple.com/app/sg",
        "rule-2-name": "", "rule-2-language": "", "rule-2-url": "",
        "variant-0-name": "", "variant-0-url": "", "variant-0-weight": "",
    }  # fmt: skip
    assert client.post("/dashboard/links/targeted/edit", data=changed).status_code == 303
    link = client.get("/api/links/targeted", headers=bearer(user)).json()
    assert link["rules"] == [
        {"name": "iphone-id", "if": {"device": ["mobile", "tablet"], "os": ["iOS"],
                                     "country": ["SG"]},
         "url": "https://apps.apple.com/app/sg"},
    ]  # fmt: skip
    assert [variant["name"] for variant in link["variants"]] == ["c"]
    # The redirect of this process forgot the removed rule at once.
    to = client.get("/targeted", headers={"User-Agent": DESKTOP_UA, "Accept-Language": "id-ID"})
    assert to.headers["location"] != "https://shop.example.com/id"

    # Every row left blank (no box ticked): no rule, no variant.
    blank = {key: ("" if key.startswith(("rule-", "variant-")) else value)
             for key, value in TARGETED.items() if not key.endswith("-device")}  # fmt: skip
    assert client.post("/dashboard/links/targeted/edit", data=blank).status_code == 303
    link = client.get("/api/links/targeted", headers=bearer(user)).json()
    assert (link["rules"], link["variants"]) == (None, None)
    assert client.get("/targeted").headers["location"] == "https://shop.example.com/sale"


def test_an_edit_without_targeting_rows_leaves_the_rules(client: TestClient, user: str) -> None:
    """A form from before targeting (or a script's) says nothing of rules: they stay."""
    rules = [{"name": "ios", "if": {"os": ["iOS"]}, "url": "https://apps.apple.com/app/x"}]
    create_link(client, bearer(user), slug="promo", rules=rules)
    edit = client.post("/dashboard/links/promo/edit", data={"url": "https://a.example/"})
    assert edit.status_code == 303
    assert client.get("/api/links/promo", headers=bearer(user)).json()["rules"] == rules


@pytest.mark.parametrize(
    ("rows", "field", "message"),
    [
        # The bad row comes after a blank one: its error is beside the row it is shown in.
        ({"rule-2-name": "loop", "rule-2-os": "iOS", "rule-2-url": f"{BASE_URL}/other"},
         "rule-1-url", "this URL must not point at this service"),
        ({"rule-2-name": "ids", "rule-2-country": "ID, IDN", "rule-2-url": "https://a.example/"},
         "rule-1-country", "'IDN' is no two-letter country code (ISO 3166), e.g. ID"),
        ({"rule-2-name": "any", "rule-2-url": "https://a.example/"},
         "rule-1", "a rule needs at least one condition: device, os, country or language"),
        ({"rule-2-name": "", "rule-2-os": "iOS", "rule-2-url": "https://a.example/"},
         "rule-1-name", "a name is required"),
        ({"rule-2-name": "x", "rule-2-os": "iOS"}, "rule-1-url", "a URL is required"),
        ({"rule-2-name": "x", "rule-2-device": "fridge", "rule-2-url": "https://a.example/"},
         "rule-1-device", "Input should be 'mobile', 'tablet'"),
        ({"variant-0-name": "ios", "variant-0-url": "https://a.example/", "variant-0-weight": "5"},
         "variant-0-name", "'ios' is rule 1's name too"),
        ({"variant-0-name": "b", "variant-0-url": "https://a.example/", "variant-0-weight": "lots"},
         "variant-0-weight", "a whole number of per cent, 1 to 100"),
        ({"variant-0-name": "b", "variant-0-url": "https://a.example/", "variant-0-weight": "60",
          "variant-1-name": "c", "variant-1-url": "https://b.example/", "variant-1-weight": "50"},
         "variants", "the variants' weights are per cent of the clicks: at most 100 in all"),
    ],
)  # fmt: skip
def test_a_bad_rule_or_variant_is_shown_beside_its_row_and_nothing_changes(
    client: TestClient, user: str, rows: dict[str, str], field: str, message: str
) -> None:
    rules = [{"name": "ios", "if": {"os": ["iOS"]}, "url": "https://apps.apple.com/app/x"}]
    before = create_link(client, bearer(user), slug="promo", title="Before", rules=rules)
    form = {
        "url": "https://shop.example.com/",
        "title": "After",
        "rule-0-name": "ios", "rule-0-os": "iOS", "rule-0-url": "https://apps.apple.com/app/y",
        "rule-1-name": "", "rule-1-url": "",
        **rows,
    }  # fmt: skip
    for path in ("/dashboard/links/promo/edit", "/dashboard/new"):
        response = client.post(path, data=form)
        assert response.status_code == 422, path
        assert field_error(response.text, field).startswith(message), text(response.text)
        assert "The link was not saved: see the fields marked below." in text(response.text)
        # What was typed is still there, each row where it was shown.
        assert input_value(response.text, "rule-0-url") == "https://apps.apple.com/app/y"
        assert input_value(response.text, "title") == "After"
        for key, value in rows.items():
            if not key.endswith("-device"):
                shown = key.replace("rule-2-", "rule-1-")
                assert input_value(response.text, shown) == value, shown
    assert client.get("/api/links/promo", headers=bearer(user)).json() == before
    assert api_slugs(client, user) == ["promo"]


def test_password_set_kept_and_removed_through_the_form(client: TestClient, user: str) -> None:
    form = {"url": "https://private.example/deal", "slug": "vip", "password": "open sesame"}
    assert client.post("/dashboard/new", data=form).status_code == 303
    assert client.get("/api/links/vip", headers=bearer(user)).json()["has_password"] is True
    assert client.get("/vip").status_code == 401
    assert client.post("/vip", data={"password": "open sesame"}).status_code == 303
    page = client.get("/dashboard/links/vip").text
    assert '<span class="tag" title="Visitors must give its password">password</span>' in page

    edit = client.get("/dashboard/links/vip/edit").text
    assert "open sesame" not in edit and "argon2" not in edit
    assert input_value(edit, "password") is None  # the field has no value at all
    assert "leave this blank to keep it" in text(edit)
    assert 'name="remove_password"' in edit
    # Blank: kept.
    kept = {"url": "https://private.example/deal", "title": "VIP", "password": ""}
    assert client.post("/dashboard/links/vip/edit", data=kept).status_code == 303
    link = client.get("/api/links/vip", headers=bearer(user)).json()
    assert (link["title"], link["has_password"]) == ("VIP", True)
    assert client.post("/vip", data={"password": "open sesame"}).status_code == 303
    # A new one replaces it.
    new = {**kept, "password": "new secret"}
    assert client.post("/dashboard/links/vip/edit", data=new).status_code == 303
    assert client.post("/vip", data={"password": "open sesame"}).status_code == 401
    assert client.post("/vip", data={"password": "new secret"}).status_code == 303
    # A refused form does not show it back, and says to type it again.
    refused = client.post("/dashboard/links/vip/edit", data={**new, "url": "ftp://x.example/"})
    assert refused.status_code == 422
    assert "new secret" not in refused.text
    assert field_error(refused.text, "password").startswith("Type the password again")
    both = client.post("/dashboard/links/vip/edit", data={**new, "remove_password": "on"})
    assert field_error(both.text, "password") == "type a new password or remove it, not both"
    short = client.post("/dashboard/links/vip/edit", data={**kept, "password": "abc"})
    assert field_error(short.text, "password") == "String should have at least 4 characters"
    assert client.post("/vip", data={"password": "new secret"}).status_code == 303
    # Removed.
    removed = {**kept, "remove_password": "on"}
    assert client.post("/dashboard/links/vip/edit", data=removed).status_code == 303
    assert client.get("/api/links/vip", headers=bearer(user)).json()["has_password"] is False
    assert client.get("/vip").status_code == 302
    edit = client.get("/dashboard/links/vip/edit").text
    assert 'name="remove_password"' not in edit
    assert "password</span>" not in client.get("/dashboard/links/vip").text


def test_a_utm_template_fills_the_utm_fields_left_blank(client: TestClient, user: str) -> None:
    template = {"name": "Newsletter", "utm_source": "newsletter", "utm_medium": "email",
                "utm_campaign": "weekly"}  # fmt: skip
    # Templates are kept by owners: in the API, by admin keys (each of its workspace).
    admin = new_key(client, "admin")[1]
    added = client.post("/api/utm-templates", json=template, headers=bearer(admin))
    assert added.status_code == 201
    _, other = new_key(client, "admin", workspace="kopi")
    theirs = {"name": "Theirs", "utm_source": "x"}
    assert client.post("/api/utm-templates", json=theirs, headers=bearer(other)).status_code == 201

    form = client.get("/dashboard/new").text
    assert '<option value="">None</option>' in form
    assert re.search(r'<option value="Newsletter" data-utm-source="newsletter" '
                     r'data-utm-medium="email" data-utm-campaign="weekly">', form)  # fmt: skip
    assert "Theirs" not in form
    assert 'name="utm_template"' not in client.get("/dashboard/links/x/edit").text  # a 404 page
    made = {"url": "https://shop.example.com/", "slug": "news", "utm_template": "Newsletter",
            "utm_campaign": "june"}  # fmt: skip
    assert client.post("/dashboard/new", data=made).status_code == 303
    link = client.get("/api/links/news", headers=bearer(user)).json()
    assert (link["utm_source"], link["utm_medium"], link["utm_campaign"]) == (
        "newsletter",
        "email",
        "june",
    )
    edit = client.get("/dashboard/links/news/edit").text
    assert 'name="utm_template"' not in edit  # a template fills a new link only
    assert input_value(edit, "utm_source") == "newsletter"

    unknown = client.post("/dashboard/new", data={**made, "slug": "n2", "utm_template": "Theirs"})
    assert unknown.status_code == 422
    assert field_error(unknown.text, "utm_template") == (
        "utm_template: the workspace has no UTM template 'Theirs'"
    )
    # The preview shows what will be saved: the template's values in the blank fields.
    refused = client.post("/dashboard/new", data={**made, "slug": "a b"})
    preview = re.search(r'<output id="destination-preview"[^>]*>([^<]*)</output>', refused.text)
    assert preview is not None and unescape(preview[1]) == (
        "https://shop.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=june"
    )
    assert '<option value="Newsletter" data-utm-source' in refused.text
    assert re.search(r'<option value="Newsletter"[^>]* selected>', refused.text)


def test_without_templates_the_form_says_how_to_add_one(client: TestClient, user: str) -> None:
    form = client.get("/dashboard/new").text
    assert 'name="utm_template"' not in form
    assert "POST /api/utm-templates" in text(form)


def test_link_page_shows_its_routes_side_by_side(client: TestClient, user: str) -> None:
    link = create_link(
        client, bearer(user), slug="ab", utm_campaign="spring",
        rules=[{"name": "ios", "if": {"os": ["iOS"], "country": ["ID"]},
                "url": "https://apps.apple.com/app/x"}],
        variants=[{"name": "b", "url": "https://shop.example.com/b", "weight": 30},
                  {"name": "c", "url": "https://shop.example.com/c", "weight": 20}],
    )  # fmt: skip
    day = datetime(2026, 3, 10, 9, tzinfo=UTC)
    seed_clicks(client, [
        raw_click(link, day, ua=IPHONE, route="ios"),
        raw_click(link, day, route="b", ip="198.51.100.1"),
        raw_click(link, day, route="b", ip="198.51.100.2"),
        raw_click(link, day, route="b", ip="198.51.100.2"),
        raw_click(link, day),
        raw_click(link, day, route="old-test", ip="198.51.100.3"),
        raw_click(link, day, ua=WHATSAPP),  # a preview fetch: not a click of any route
    ])  # fmt: skip
    response = client.get("/dashboard/links/ab", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert response.status_code == 200
    assert kpis(response.text)[0] == 6
    routes = text(
        re.search(r'<section class="card routes">(.*?)</section>', response.text, re.S)[1]
    )  # type: ignore[index]
    assert routes.startswith(
        "Routes Route Destination Weight Clicks Unique visitors Share of clicks"
    )
    assert (
        "ios rule os: iOS · country: ID https://apps.apple.com/app/x?utm_campaign=spring — 1 1 17% "
        "b variant https://shop.example.com/b?utm_campaign=spring 30% 3 2 50% "
        "c variant https://shop.example.com/c?utm_campaign=spring 20% 0 0 0% "
        "(link's own URL) https://shop.example.com/?utm_campaign=spring 50% 1 1 17% "
        "old-test no longer on the link — — 1 1 17%"
    ) in routes
    # Another range: every route, with no click.
    empty = text(client.get("/dashboard/links/ab", params={"from": "2026-04-01"}).text)
    assert "b variant https://shop.example.com/b?utm_campaign=spring 30% 0 0 0%" in empty
    assert "old-test" not in empty
    # A link without rules or variants has no such card.
    create_link(client, bearer(user), slug="plain")
    assert "Routes" not in text(client.get("/dashboard/links/plain").text)
