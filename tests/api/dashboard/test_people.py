"""The owners' dashboard pages over real HTTP (the app's own TestClient): members and
their one-time links (shown, or mailed through a real SMTP server), API keys, and the
audit log; and that nobody but an owner of the workspace reaches any of them."""

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from app.config import Settings
from app.core.clock import utcnow
from app.core.principal import ROLE_SCOPES, SCOPES
from app.core.tables import ApiKey, Membership, PasswordToken, User
from app.dashboard import session
from app.main import create_app
from tests.support.app import BASE_URL, PEER, run_in_transaction
from tests.support.clicks import with_writer
from tests.support.mail import Inbox, smtp_server
from tests.support.people import make_user, sign_in

OWNER, EDITOR, VIEWER = "owner@shop.test", "editor@shop.test", "viewer@shop.test"
NEW_PASSWORD = "a long enough passphrase"


@pytest.fixture
def client(client: TestClient) -> TestClient:
    """The app, as a browser on the dashboard's own pages calls it (with `Origin`)."""
    client.headers["Origin"] = BASE_URL
    return client


@pytest.fixture
def owner(client: TestClient) -> str:
    """The owner of the default workspace, signed in; their session's cookie."""
    make_user(client, OWNER, "owner")
    sign_in(client, OWNER)
    return client.cookies[session.COOKIE]


def text(html: str) -> str:
    """The page's words, without tags, in single spaces."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def error_of(html: str) -> str:
    match = re.search(r'<p class="error" role="alert">([^<]*)</p>', html)
    return unescape(match[1]) if match else ""


def shown(html: str, element_id: str) -> str | None:
    """The one-time link or token a page shows in the element of this id, if any."""
    match = re.search(rf'id="{element_id}">([^<]+)<', html)
    return unescape(match[1]) if match else None


def link_path(html: str) -> str:
    """The path of the one-time link the page shows."""
    url = shown(html, "one-time-link")
    assert url is not None and url.startswith(f"{BASE_URL}/dashboard/set-password/"), html
    return urlsplit(url).path


def use_cookie(client: TestClient, cookie: str | None) -> None:
    """Be the browser that holds `cookie` (None: a browser that holds none)."""
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set(session.COOKIE, cookie, domain="tautan.test", path="/dashboard")


def signed_out(client: TestClient) -> bool:
    response = client.get("/dashboard/links")
    return (response.status_code, response.headers.get("location")) == (303, "/dashboard/sign-in")


def set_password(client: TestClient, path: str, password: str, again: str | None = None) -> Any:
    data = {"password": password, "password_again": password if again is None else again}
    return client.post(path, data=data)


def count(client: TestClient, table: Any, *where: Any) -> int:
    query = select(func.count()).select_from(table).where(*where)
    return run_in_transaction(client, lambda s: s.scalar(query))


def role_of(client: TestClient, email: str) -> str | None:
    query = select(Membership.role).join(User, User.id == Membership.user_id)
    return run_in_transaction(client, lambda s: s.scalar(query.where(User.email == email)))


def add_member(client: TestClient, email: str, role: str = "editor") -> Any:
    return client.post("/dashboard/members", data={"email": email, "role": role})


def member_row(html: str, email: str) -> str:
    """The words of a member's row on the members page."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    found = [row for row in rows if f"<strong>{email}</strong>" in row]
    assert len(found) == 1, html
    selected = re.search(r'<option value="(\w+)" selected>', found[0])
    return f"{selected[1] if selected else ''} {text(found[0])}"


# Members and their one-time links


def test_owner_invites_an_editor_whose_link_is_shown_once_and_works_once(
    client: TestClient, owner: str
) -> None:
    page = add_member(client, "Editor@Shop.test", "editor")
    assert page.status_code == 200  # the page itself, not a redirect: no token in a URL
    path = link_path(page.text)
    assert "An invite for editor@shop.test" in text(page.text)
    assert member_row(page.text, EDITOR).startswith("editor ")
    assert "invited" in member_row(page.text, EDITOR)
    again = client.get("/dashboard/members")
    assert shown(again.text, "one-time-link") is None
    assert path.rsplit("/", 1)[1] not in again.text

    use_cookie(client, None)  # the editor, in a browser of their own
    form = client.get(path)
    assert form.status_code == 200
    # No Referer takes the token elsewhere, and the form's POST still carries its Origin:
    # under no-referrer a browser sends `Origin: null`, which the same-origin check refuses.
    assert form.headers["referrer-policy"] in ("strict-origin", "same-origin")
    assert len(re.findall(r'type="password"', form.text)) == 2
    assert EDITOR in text(form.text)
    response = set_password(client, path, NEW_PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/overview")
    links = client.get("/dashboard/links")
    assert links.status_code == 200 and EDITOR in text(links.text)
    editors_cookie = client.cookies[session.COOKIE]

    # The link is spent: opening it or posting it again is a 410 page.
    use_cookie(client, None)
    spent = client.get(path)
    assert spent.status_code == 410 and "This link no longer works" in text(spent.text)
    assert set_password(client, path, "another passphrase").status_code == 410
    use_cookie(client, editors_cookie)
    assert client.get("/dashboard/links").status_code == 200
    use_cookie(client, owner)
    assert "active" in member_row(client.get("/dashboard/members").text, EDITOR)


def test_an_expired_invite_link_answers_410(client: TestClient, owner: str) -> None:
    path = link_path(add_member(client, EDITOR).text)
    lapsed = update(PasswordToken).values(expires_at=utcnow() - timedelta(seconds=1))
    run_in_transaction(client, lambda s: s.execute(lapsed))
    use_cookie(client, None)
    response = client.get(path)
    assert response.status_code == 410
    assert "This link no longer works" in text(response.text)
    assert set_password(client, path, NEW_PASSWORD).status_code == 410
    assert signed_out(client)


@pytest.mark.parametrize(
    ("password", "again", "says"),
    [(NEW_PASSWORD, NEW_PASSWORD + "!", "The two passwords differ"),
     ("too short", "too short", "a password has 10 to 256 characters")],
)  # fmt: skip
def test_a_refused_password_keeps_the_link_working(
    client: TestClient, owner: str, password: str, again: str, says: str
) -> None:
    path = link_path(add_member(client, EDITOR).text)
    use_cookie(client, None)
    refused = set_password(client, path, password, again)
    assert refused.status_code == 422
    assert says in error_of(refused.text)
    assert "set-cookie" not in refused.headers
    assert client.get(path).status_code == 200
    assert set_password(client, path, NEW_PASSWORD).status_code == 303


def test_owner_changes_a_role_which_counts_from_the_next_request(
    client: TestClient, owner: str
) -> None:
    make_user(client, EDITOR, "editor")
    sign_in(client, EDITOR)
    editors_cookie = client.cookies[session.COOKIE]
    assert client.get("/dashboard/new").status_code == 200

    use_cookie(client, owner)
    response = client.post("/dashboard/members/role", data={"email": EDITOR, "role": "viewer"})
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/members")
    assert member_row(client.get("/dashboard/members").text, EDITOR).startswith("viewer ")
    use_cookie(client, editors_cookie)
    assert client.get("/dashboard/new").status_code == 403
    assert client.get("/dashboard/links").status_code == 200

    use_cookie(client, owner)
    client.post("/dashboard/members/role", data={"email": EDITOR, "role": "owner"})
    use_cookie(client, editors_cookie)
    assert client.get("/dashboard/members").status_code == 200
    assert role_of(client, EDITOR) == "owner"


def test_the_last_owner_is_neither_demoted_nor_removed(client: TestClient, owner: str) -> None:
    for path, data in [("/dashboard/members/role", {"email": OWNER, "role": "editor"}),
                       ("/dashboard/members/remove", {"email": OWNER})]:  # fmt: skip
        response = client.post(path, data=data)
        assert response.status_code == 409, path
        assert "a workspace keeps one owner at least" in error_of(response.text)
        assert member_row(response.text, OWNER).startswith("owner ")
    assert role_of(client, OWNER) == "owner"
    # With a second owner, the first may step down, and lands where they still belong.
    make_user(client, "second@shop.test", "owner")
    response = client.post("/dashboard/members/role", data={"email": OWNER, "role": "editor"})
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/overview")
    assert client.get("/dashboard/members").status_code == 403


def test_removing_a_member_signs_them_out_of_that_workspace_at_once(
    client: TestClient, owner: str
) -> None:
    make_user(client, EDITOR, "editor")
    make_user(client, EDITOR, "editor", workspace="acme")
    sign_in(client, EDITOR)  # looking at acme, the first of their workspaces by name
    acme = client.get("/dashboard/links").text
    client.post("/dashboard/workspace", data={"workspace": _workspace_id(acme, "default")})
    in_default = client.cookies[session.COOKIE]
    assert client.get("/dashboard/new").status_code == 200

    use_cookie(client, owner)
    response = client.post("/dashboard/members/remove", data={"email": EDITOR})
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/members")
    assert EDITOR not in client.get("/dashboard/members").text
    use_cookie(client, in_default)
    assert signed_out(client)
    # Their account stays, for acme: they sign in there.
    sign_in(client, EDITOR)
    assert "acme (editor)" in text(client.get("/dashboard/links").text)


def _workspace_id(html: str, name: str) -> str:
    match = re.search(rf'<option value="(\d+)"[^>]*>{name} \(', html)
    assert match, html
    return match[1]


@pytest.mark.parametrize(
    ("email", "role", "status", "says"),
    [("not an email", "editor", 422, "not an email address"),
     ("x@shop.test", "admin", 422, "role must be one of viewer, editor, owner"),
     (OWNER.upper(), "viewer", 409, f"{OWNER} is a member of this workspace already")],
)  # fmt: skip
def test_a_refused_member_shows_why_and_changes_nothing(
    client: TestClient, owner: str, email: str, role: str, status: int, says: str
) -> None:
    response = add_member(client, email, role)
    assert response.status_code == status
    assert says in error_of(response.text)
    assert shown(response.text, "one-time-link") is None
    assert f'value="{email}"' in response.text  # the form keeps what was typed
    assert count(client, User) == 1 and count(client, Membership) == 1
    assert count(client, PasswordToken) == 0
    assert role_of(client, OWNER) == "owner"


def test_a_reset_link_is_given_for_a_member_of_this_workspace_alone(
    client: TestClient, owner: str
) -> None:
    make_user(client, EDITOR, "editor")
    make_user(client, VIEWER, "viewer")
    make_user(client, VIEWER, "owner", workspace="acme")
    refused = client.post("/dashboard/members/reset", data={"email": VIEWER})
    assert refused.status_code == 403
    assert f"{VIEWER} belongs to other workspaces too" in error_of(refused.text)
    assert shown(refused.text, "one-time-link") is None
    assert count(client, PasswordToken) == 0

    page = client.post("/dashboard/members/reset", data={"email": EDITOR})
    assert page.status_code == 200
    assert "A password reset link for editor@shop.test" in text(page.text)
    path = link_path(page.text)
    use_cookie(client, None)
    assert "Set a new password" in text(client.get(path).text)
    assert set_password(client, path, NEW_PASSWORD).status_code == 303
    use_cookie(client, None)
    sign_in(client, EDITOR, NEW_PASSWORD)


PEOPLE_POSTS = [
    ("/dashboard/members", {"email": "new@shop.test", "role": "owner"}),
    ("/dashboard/members/role", {"email": OWNER, "role": "viewer"}),
    ("/dashboard/members/remove", {"email": OWNER}),
    ("/dashboard/members/reset", {"email": OWNER}),
    ("/dashboard/keys", {"name": "mine", "scope": "links:read"}),
    ("/dashboard/keys/1/revoke", {}),
]


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_editors_and_viewers_get_403_on_every_people_page(
    client: TestClient, owner: str, role: str
) -> None:
    client.post("/dashboard/keys", data={"name": "owners", "scope": "links:read"})
    make_user(client, "someone@shop.test", role)
    sign_in(client, "someone@shop.test")
    nav = client.get("/dashboard/links").text
    for path in ("/dashboard/members", "/dashboard/keys", "/dashboard/audit"):
        assert f'href="{path}"' not in nav
        response = client.get(path)
        assert response.status_code == 403, path
        assert "403 · forbidden" in text(response.text)
    for path, data in PEOPLE_POSTS:
        assert client.post(path, data=data).status_code == 403, path
    assert role_of(client, OWNER) == "owner" and count(client, User) == 2
    assert count(client, PasswordToken) == 0
    assert count(client, ApiKey) == 1 and count(client, ApiKey, ApiKey.revoked_at.is_(None)) == 1


def test_people_pages_need_a_session_and_forms_from_the_dashboard(
    client: TestClient, owner: str
) -> None:
    del client.headers["Origin"]
    for path, data in PEOPLE_POSTS:
        response = client.post(path, data=data, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403, path
        assert "403 · cross origin" in text(response.text)
    use_cookie(client, None)
    for path in ("/dashboard/members", "/dashboard/keys", "/dashboard/audit"):
        assert client.get(path).headers["location"] == "/dashboard/sign-in"
    assert count(client, User) == 1 and count(client, ApiKey) == 0


# API keys


def make_key(client: TestClient, name: str = "newsletter", *scopes: str) -> Any:
    return client.post("/dashboard/keys", data={"name": name, "scope": list(scopes)})


def test_owner_makes_a_key_whose_token_works_and_is_shown_once(
    client: TestClient, owner: str
) -> None:
    offered = re.findall(r'name="scope" value="([^"]+)"', client.get("/dashboard/keys").text)
    assert offered == sorted(ROLE_SCOPES["owner"], key=SCOPES.index)  # no more than the role's
    assert "admin" not in offered
    page = make_key(client, "newsletter", "links:read", "stats:read")
    assert page.status_code == 200
    token = shown(page.text, "new-token")
    assert token is not None and token.startswith("tk_")
    listed = client.get("/api/links", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    writes = client.post("/api/links", json={"url": "https://shop.example/"},
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert writes.status_code == 403  # links:read alone

    keys = client.get("/dashboard/keys")
    assert token not in keys.text and shown(keys.text, "new-token") is None
    row = text(re.search(r"<tbody>(.*?)</tbody>", keys.text, re.S)[1])  # type: ignore[index]
    assert f"newsletter {token[:10]}… links:read stats:read" in row
    assert "never" not in row  # used once already
    audit = client.get("/dashboard/audit", params={"action": "key"}).text
    assert "key.create" in audit and OWNER in audit and token not in audit


@pytest.mark.parametrize(
    ("name", "scopes", "status", "says"),
    [("root", ["links:read", "admin"], 403, "a key made here may not hold admin"),
     ("root", ["admin"], 403, "a key made here may not hold admin"),
     ("odd", ["links:read", "links:everything"], 422, "unknown scopes"),
     ("none", [], 422, "tick one scope at least"),
     ("", ["links:read"], 422, "a key needs a name"),
     ("x" * 101, ["links:read"], 422, "a key needs a name")],
)  # fmt: skip
def test_a_refused_key_is_not_made(
    client: TestClient, owner: str, name: str, scopes: list[str], status: int, says: str
) -> None:
    response = make_key(client, name, *scopes)
    assert response.status_code == status
    assert says in error_of(response.text)
    assert shown(response.text, "new-token") is None
    assert count(client, ApiKey) == 0


def test_revoking_a_key_stops_its_token(client: TestClient, owner: str) -> None:
    token = shown(make_key(client, "ci", "links:read", "links:write").text, "new-token")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/links", headers=headers).status_code == 200
    key_id = run_in_transaction(client, lambda s: s.scalar(select(ApiKey.id)))
    response = client.post(f"/dashboard/keys/{key_id}/revoke")
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/keys")
    assert client.get("/api/links", headers=headers).status_code == 401
    keys = client.get("/dashboard/keys").text
    assert f"/dashboard/keys/{key_id}/revoke" not in keys  # no Revoke button left
    assert "key.revoke" in client.get("/dashboard/audit").text


def test_another_workspaces_key_is_neither_listed_nor_revoked(
    client: TestClient, owner: str
) -> None:
    make_user(client, "boss@acme.test", "owner", workspace="acme")
    sign_in(client, "boss@acme.test")
    token = shown(make_key(client, "acme-secret", "links:read").text, "new-token")
    key_id = run_in_transaction(client, lambda s: s.scalar(select(ApiKey.id)))
    use_cookie(client, owner)
    assert "acme-secret" not in client.get("/dashboard/keys").text
    for path in (f"/dashboard/keys/{key_id}/revoke", "/dashboard/keys/999999/revoke"):
        response = client.post(path)
        assert response.status_code == 404, path
        assert "API key not found" in error_of(response.text)
    assert client.post("/dashboard/keys/99999999999999999999/revoke").status_code == 422
    assert client.get("/api/links", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# The audit log


def audit_rows(client: TestClient, **params: str) -> list[list[str]]:
    """The audit page's rows: time, who, action, target, details."""
    response = client.get("/dashboard/audit", params=params)
    assert response.status_code == 200, response.text
    body = re.search(r"<tbody>(.*?)</tbody>", response.text, re.S)
    rows = re.findall(r"<tr>(.*?)</tr>", body[1], re.S) if body else []
    return [[text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


@pytest.fixture
def editor_made_a_link(client: TestClient, owner: str) -> None:
    """The editor made the link `spring` through the dashboard's form; the owner is
    signed in again."""
    make_user(client, EDITOR, "editor")
    sign_in(client, EDITOR)
    link = {"url": "https://shop.example/", "slug": "spring"}
    response = client.post("/dashboard/new", data=link)
    assert response.status_code == 303, response.text
    use_cookie(client, owner)


def test_the_audit_page_names_the_editor_who_made_a_link(
    client: TestClient, editor_made_a_link: None
) -> None:
    client.post("/dashboard/members/role", data={"email": EDITOR, "role": "viewer"})
    rows = audit_rows(client)
    assert [row[1:4] for row in rows] == [
        [OWNER, "member.update", EDITOR],
        [EDITOR, "link.create", "spring"],
    ]  # newest first
    assert rows[0][4] == "role: viewer, was: editor"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0][0])
    assert "url: https://shop.example/" in rows[1][4]


def test_the_audit_filters(client: TestClient, editor_made_a_link: None) -> None:
    make_key(client, "ci", "links:read")
    today = utcnow().date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    assert [row[2] for row in audit_rows(client)] == ["key.create", "link.create"]
    assert [row[2] for row in audit_rows(client, action="link")] == ["link.create"]
    assert [row[2] for row in audit_rows(client, action="key")] == ["key.create"]
    assert audit_rows(client, action="domain") == []
    assert [row[2] for row in audit_rows(client, actor=f" {EDITOR} ")] == ["link.create"]
    assert [row[2] for row in audit_rows(client, actor=OWNER, action="link")] == []
    assert len(audit_rows(client, **{"from": str(today), "to": str(today)})) == 2
    assert audit_rows(client, **{"from": str(tomorrow)}) == []
    assert audit_rows(client, to=str(yesterday)) == []
    page = client.get("/dashboard/audit", params={"action": "link", "from": str(today)}).text
    assert '<option value="link" selected>' in page and f'value="{today}"' in page

    bad = client.get("/dashboard/audit", params={"from": "last tuesday"})
    assert bad.status_code == 422
    assert "from: not an ISO date or datetime: 'last tuesday'" in error_of(bad.text)
    assert "<tbody>" not in bad.text
    assert client.get("/dashboard/audit", params={"to": "2026-02-30"}).status_code == 422


def test_another_workspaces_entries_never_show(
    client: TestClient, editor_made_a_link: None
) -> None:
    make_user(client, "boss@acme.test", "owner", workspace="acme")
    make_user(client, EDITOR, "viewer", workspace="acme")
    sign_in(client, "boss@acme.test")
    make_key(client, "acme-key", "links:read")
    client.post("/dashboard/members/role", data={"email": EDITOR, "role": "editor"})
    assert [row[2] for row in audit_rows(client)] == ["member.update", "key.create"]
    use_cookie(client, None)
    sign_in(client, OWNER)
    for params in ({}, {"actor": "boss@acme.test"}, {"action": "key"}, {"actor": EDITOR}):
        rows = audit_rows(client, **params)
        assert all("acme" not in " ".join(row) for row in rows), params
        assert "member.update" not in [row[2] for row in rows], params


# With mail: a real SMTP server on this machine


@pytest.fixture
def mailing(settings: Settings) -> Iterator[tuple[TestClient, Inbox]]:
    """The app with TAUTAN_SMTP_URL set to a real SMTP server on 127.0.0.1, and its inbox."""
    with smtp_server() as (url, inbox):
        app = create_app(settings.model_copy(update={"smtp_url": url}))
        with with_writer(
            TestClient(app, base_url=BASE_URL, follow_redirects=False, client=PEER)
        ) as client:
            client.headers["Origin"] = BASE_URL
            yield client, inbox


def test_with_mail_an_invite_is_mailed_and_its_link_works(
    mailing: tuple[TestClient, Inbox],
) -> None:
    client, inbox = mailing
    make_user(client, OWNER, "owner")
    sign_in(client, OWNER)
    page = add_member(client, EDITOR, "editor")
    assert page.status_code == 200
    assert "An invite was mailed to editor@shop.test" in text(page.text)
    assert shown(page.text, "one-time-link") is None
    path = inbox.link_to(EDITOR)
    [(_, message)] = inbox.mails
    assert message["Subject"] == "You are invited to Tautan"
    assert "added to the workspace default" in message.get_body().get_content()
    assert path.rsplit("/", 1)[1] not in page.text

    use_cookie(client, None)
    assert client.get(path).status_code == 200
    assert set_password(client, path, NEW_PASSWORD).status_code == 303
    assert client.get("/dashboard/links").status_code == 200


def test_forgot_password_mails_a_link_to_an_account_alone(
    mailing: tuple[TestClient, Inbox],
) -> None:
    client, inbox = mailing
    make_user(client, EDITOR, "editor")
    known = client.post("/dashboard/forgot-password", data={"email": EDITOR})
    unknown = client.post("/dashboard/forgot-password", data={"email": "nobody@shop.test"})
    assert known.status_code == unknown.status_code == 200
    assert text(known.text) == text(unknown.text)
    assert "a link to set a new password is on its way" in text(known.text)
    assert [to for to, _ in inbox.mails] == [[EDITOR]]  # none for the unknown address
    path = inbox.link_to(EDITOR)
    assert inbox.mails[0][1]["Subject"] == "Reset your Tautan password"

    assert "Set a new password" in text(client.get(path).text)
    assert set_password(client, path, NEW_PASSWORD).status_code == 303
    use_cookie(client, None)
    sign_in(client, EDITOR, NEW_PASSWORD)
    assert client.get(path).status_code == 410
