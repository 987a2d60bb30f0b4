"""People through the API and the command line: workspaces, members and their roles,
one-time links to set a password, signing in, and the audit log of who changed what."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from starlette.testclient import TestClient

from app.accounts import mail
from app.accounts import service as accounts
from app.clicks import retention
from app.config import Settings
from app.core.passwords import password_matches
from app.core.tables import ApiKey, AuditEvent, DashboardSession, PasswordToken, User
from app.core.tokens import hash_token
from app.main import create_app
from tests.support.app import (
    BASE_URL,
    PEER,
    create_link,
    make_key,
    run_in_transaction,
    state_of,
)  # fmt: skip
from tests.support.cli import tautan
from tests.support.clicks import with_writer
from tests.support.mail import smtp_server
from tests.support.people import PASSWORD, make_user, sign_in

NEW_PASSWORD = "a long new passphrase"


@pytest.fixture
def client(client: TestClient) -> TestClient:
    client.headers["Origin"] = BASE_URL  # the dashboard's forms, as a browser posts them
    return client


def workspace(client: TestClient, admin: dict, name: str) -> int:
    response = client.post("/api/workspaces", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def members(client: TestClient, headers: dict, workspace_id: int) -> dict[str, tuple[str, str]]:
    response = client.get(f"/api/workspaces/{workspace_id}/members", headers=headers)
    assert response.status_code == 200, response.text
    return {m["email"]: (m["role"], m["status"]) for m in response.json()["members"]}


def set_password(client: TestClient, url: str, password: str = NEW_PASSWORD) -> Any:
    path = url.removeprefix(BASE_URL)
    return client.post(path, data={"password": password, "password_again": password})


def stored_users(client: TestClient) -> list[User]:
    return run_in_transaction(client, lambda s: _all(s, select(User)))


async def _all(session: Any, query: Any) -> list[Any]:
    return list(await session.scalars(query))


# Workspaces and members


def test_an_admin_makes_a_workspace_and_invites_its_first_owner(
    client: TestClient, admin: dict
) -> None:
    acme = workspace(client, admin, "Acme")
    listed = client.get("/api/workspaces", headers=admin).json()["workspaces"]
    assert "Acme" in [w["name"] for w in listed]
    assert client.post("/api/workspaces", json={"name": "Acme"}, headers=admin).status_code == 409

    added = client.post(f"/api/workspaces/{acme}/members",
                        json={"email": " Ana@Example.COM ", "role": "owner"}, headers=admin)  # fmt: skip
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["email"], body["role"], body["status"], body["mailed"]) == (
        "ana@example.com", "owner", "invited", False)  # fmt: skip
    assert body["invite_url"].startswith(f"{BASE_URL}/dashboard/set-password/")
    # The token is kept only as its hash.
    token = body["invite_url"].rsplit("/", 1)[1]
    tokens = run_in_transaction(client, lambda s: _all(s, select(PasswordToken.token_hash)))
    assert tokens == [hash_token(token)]

    # The link sets the password once, and signs the person in to the new workspace.
    opened = client.get(body["invite_url"].removeprefix(BASE_URL))
    assert opened.status_code == 200 and 'type="password"' in opened.text
    assert set_password(client, body["invite_url"]).headers["location"] == "/dashboard/overview"
    assert set_password(client, body["invite_url"]).status_code == 410
    assert client.get(body["invite_url"].removeprefix(BASE_URL)).status_code == 410
    assert members(client, admin, acme) == {"ana@example.com": ("owner", "active")}
    client.cookies.clear()
    sign_in(client, "ana@example.com", NEW_PASSWORD)


def test_a_person_with_an_account_is_added_without_a_link(client: TestClient, admin: dict) -> None:
    make_user(client, "bo@example.com", "viewer", workspace="first")
    second = workspace(client, admin, "second")
    added = client.post(f"/api/workspaces/{second}/members",
                        json={"email": "bo@example.com", "role": "editor"}, headers=admin)  # fmt: skip
    assert added.status_code == 201
    assert (added.json()["status"], added.json()["invite_url"]) == ("active", None)
    again = client.post(f"/api/workspaces/{second}/members",
                        json={"email": "BO@example.com", "role": "owner"}, headers=admin)  # fmt: skip
    assert (again.status_code, again.json()["error"]["code"]) == (409, "member_exists")
    assert members(client, admin, second) == {"bo@example.com": ("editor", "active")}


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email", "role": "editor"}, {"email": "a@b.c", "role": "admin"},
     {"email": "a@example.com"}, {"email": "a@example.com", "role": "editor", "extra": 1},
     {"email": "x" * 300 + "@example.com", "role": "viewer"}],
)  # fmt: skip
def test_a_bad_member_is_refused_and_nothing_is_made(
    client: TestClient, admin: dict, body: dict
) -> None:
    acme = workspace(client, admin, "acme")
    response = client.post(f"/api/workspaces/{acme}/members", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert members(client, admin, acme) == {}
    assert stored_users(client) == []


def test_a_workspace_keeps_an_owner(client: TestClient, admin: dict) -> None:
    acme = workspace(client, admin, "acme")
    path = f"/api/workspaces/{acme}/members"
    client.post(path, json={"email": "ana@example.com", "role": "owner"}, headers=admin)
    demoted = client.patch(f"{path}/ana@example.com", json={"role": "editor"}, headers=admin)
    assert (demoted.status_code, demoted.json()["error"]["code"]) == (409, "last_owner")
    assert client.delete(f"{path}/ana@example.com", headers=admin).status_code == 409
    client.post(path, json={"email": "cy@example.com", "role": "owner"}, headers=admin)
    assert client.patch(f"{path}/ana@example.com", json={"role": "viewer"},
                        headers=admin).json()["role"] == "viewer"  # fmt: skip
    assert client.delete(f"{path}/cy@example.com", headers=admin).status_code == 409
    assert client.delete(f"{path}/ana@example.com", headers=admin).status_code == 204
    assert members(client, admin, acme) == {"cy@example.com": ("owner", "invited")}
    assert client.delete(f"{path}/nobody@example.com", headers=admin).status_code == 404


def test_an_owner_key_runs_its_workspace_and_no_other(client: TestClient, admin: dict) -> None:
    """Escalation through the API: a key holds what it was given, in its workspace."""
    acme, other = workspace(client, admin, "acme"), workspace(client, admin, "globex")
    owner = make_key(client, "owner", workspace="acme")
    writer = make_key(client, "links:read", "links:write", "stats:read", workspace="acme")
    body = {"email": "new@example.com", "role": "owner"}
    assert (
        client.post(f"/api/workspaces/{acme}/members", json=body, headers=owner).status_code == 201
    )
    for headers, path, status in ((owner, f"/api/workspaces/{other}/members", 404),
                                  (writer, f"/api/workspaces/{acme}/members", 403)):  # fmt: skip
        assert client.post(path, json={**body, "email": "x@example.com"},
                           headers=headers).status_code == status  # fmt: skip
        assert client.get(path, headers=headers).status_code == status
    assert client.get("/api/workspaces", headers=owner).status_code == 403
    assert client.post("/api/workspaces", json={"name": "mine"}, headers=owner).status_code == 403
    assert members(client, admin, other) == {}
    assert list(members(client, admin, acme)) == ["new@example.com"]


def test_an_owner_gets_no_link_that_opens_another_workspace(
    client: TestClient, admin: dict
) -> None:
    """Whoever holds a one-time link sets the password: an owner of one client's workspace
    may not hold one for a person who also belongs to another client's."""
    make_user(client, "shared@example.com", "viewer", workspace="globex")
    run_in_transaction(client, lambda s: s.execute(
        update(User).where(User.email == "shared@example.com").values(password_hash=None)))  # fmt: skip
    acme = workspace(client, admin, "acme")
    owner = make_key(client, "owner", workspace="acme")
    added = client.post(f"/api/workspaces/{acme}/members",
                        json={"email": "shared@example.com", "role": "viewer"}, headers=owner)  # fmt: skip
    assert added.status_code == 201
    assert added.json()["invite_url"] is None  # invited, but the link is not the owner's
    assert run_in_transaction(client, lambda s: _all(s, select(PasswordToken))) == []
    # An admin may: the link goes to the person.
    acme_admin = client.post(f"/api/workspaces/{acme}/members",
                             json={"email": "solo@example.com", "role": "viewer"}, headers=admin)  # fmt: skip
    assert acme_admin.json()["invite_url"]


# Signing in


def test_a_hash_of_older_parameters_is_renewed_at_sign_in(client: TestClient) -> None:
    make_user(client, "old@example.com", "viewer")
    old_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    run_in_transaction(client, lambda s: s.execute(
        update(User).where(User.email == "old@example.com").values(password_hash=old_hash)))  # fmt: skip
    sign_in(client, "old@example.com")
    (user,) = stored_users(client)
    assert user.password_hash != old_hash and "m=65536" in (user.password_hash or "")
    assert password_matches(user.password_hash or "", PASSWORD)
    client.cookies.clear()
    sign_in(client, "old@example.com")


def test_a_reset_link_ends_every_session_of_the_person(client: TestClient) -> None:
    make_user(client, "ana@example.com", "editor")
    sign_in(client, "ana@example.com")
    assert client.get("/dashboard/links").status_code == 200
    result = tautan(str(state_of(client).engine.url.render_as_string(False)),
                    "users", "reset", "ana@example.com")  # fmt: skip
    assert result.returncode == 0, result.stdout
    link = result.stdout.strip().splitlines()[-1]
    assert client.get("/dashboard/links").status_code == 200  # until the link is used
    assert set_password(client, link, "short").status_code == 422  # nothing used
    assert set_password(client, link).status_code == 303
    sessions = run_in_transaction(client, lambda s: _all(s, select(DashboardSession)))
    assert len(sessions) == 1  # the one the link opened; the earlier one ended
    client.cookies.clear()
    refused = client.post("/dashboard/sign-in",
                          data={"email": "ana@example.com", "password": PASSWORD})  # fmt: skip
    assert refused.status_code == 401
    sign_in(client, "ana@example.com", NEW_PASSWORD)


def test_an_expired_link_sets_nothing(client: TestClient, admin: dict) -> None:
    acme = workspace(client, admin, "acme")
    url = client.post(f"/api/workspaces/{acme}/members",
                      json={"email": "late@example.com", "role": "editor"},
                      headers=admin).json()["invite_url"]  # fmt: skip
    past = datetime.now(UTC) - timedelta(seconds=1)
    run_in_transaction(client, lambda s: s.execute(update(PasswordToken).values(expires_at=past)))
    assert set_password(client, url).status_code == 410
    assert [u.password_hash for u in stored_users(client)] == [None]


# The command line


def test_users_from_the_command_line(client: TestClient, database_url: str) -> None:
    made = tautan(database_url, "users", "create", "Owner@Example.com", "--workspace", "acme",
                  "--role", "owner")  # fmt: skip
    assert made.returncode == 0, made.stdout
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{BASE_URL}/dashboard/set-password/")
    assert set_password(client, link).status_code == 303
    again = tautan(database_url, "users", "create", "owner@example.com", "--workspace", "beta",
                   "--role", "viewer")  # fmt: skip
    assert again.returncode == 0 and "set-password" not in again.stdout  # has a password
    listed = tautan(database_url, "users", "list").stdout
    assert "owner@example.com" in listed and "acme (owner)" in listed and "beta (viewer)" in listed
    bad = tautan(database_url, "users", "create", "x@example.com", "--role", "boss")
    assert bad.returncode == 2 and "viewer, editor, owner" in bad.stdout + bad.stderr
    assert tautan(database_url, "users", "remove", "nobody@example.com").returncode == 1
    tautan(database_url, "users", "create", "next@example.com", "--workspace", "acme",
           "--role", "owner")  # fmt: skip
    assert tautan(database_url, "users", "remove", "OWNER@example.com").returncode == 0
    assert [user.email for user in stored_users(client)] == ["next@example.com"]


# The audit log


def test_every_write_is_in_the_audit_log_with_who_made_it(client: TestClient, admin: dict) -> None:
    writer = make_key(client, "links:read", "links:write", "stats:read", workspace="acme")
    owner = make_key(client, "owner", workspace="acme")
    create_link(client, writer, slug="sale", url="https://shop.example/", password="s3cret-word")
    client.patch("/api/links/sale", json={"title": "Sale", "password": None}, headers=writer)
    client.delete("/api/links/sale", headers=writer)
    client.post("/api/domains", json={"host": "go.acme.test"}, headers=owner)
    client.post("/api/utm-templates", json={"name": "ig", "utm_source": "instagram"},
                headers=owner)  # fmt: skip
    acme = client.get("/api/workspaces", headers=admin).json()["workspaces"]
    acme_id = next(w["id"] for w in acme if w["name"] == "acme")
    client.post(f"/api/workspaces/{acme_id}/members",
                json={"email": "ana@example.com", "role": "editor"}, headers=owner)  # fmt: skip
    entries = client.get("/api/audit", headers=owner).json()
    seen = [(e["action"], e["target"]) for e in reversed(entries)]
    assert seen == [("link.create", "sale"), ("link.update", "sale"), ("link.archive", "sale"),
                    ("domain.create", "go.acme.test"), ("template.create", "ig"),
                    ("member.add", "ana@example.com")]  # fmt: skip
    writer_name = entries[-1]["actor"]
    assert writer_name.startswith("key ") and writer_name != entries[0]["actor"]
    created, updated = entries[-1], entries[-2]
    assert created["details"]["password"] == "(set)" and "s3cret" not in str(entries)
    assert updated["details"] == {"title": "Sale", "has_password": False, "password": "(removed)"}
    # Filters: a kind of action, an actor, a range of days.
    assert {
        e["action"]
        for e in client.get("/api/audit", params={"action": "link"}, headers=owner).json()
    } == {  # fmt: skip
        "link.create",
        "link.update",
        "link.archive",
    }
    by_writer = client.get("/api/audit", params={"actor": writer_name}, headers=owner).json()
    assert len(by_writer) == 3
    today = datetime.now(UTC).date()
    assert len(client.get("/api/audit", params={"from": str(today), "to": str(today)},
                          headers=owner).json()) == 6  # fmt: skip
    assert client.get("/api/audit", params={"to": str(today - timedelta(days=1))},
                      headers=owner).json() == []  # fmt: skip
    assert client.get("/api/audit", params={"from": "yesterday"}, headers=owner).status_code == 422
    # Another workspace's owner sees none of it; an admin sees it, or narrows to one.
    other = make_key(client, "owner", workspace="globex")
    assert client.get("/api/audit", headers=other).json() == []
    assert client.get("/api/audit", params={"workspace": acme_id}, headers=other).status_code == 404
    assert len(client.get("/api/audit", params={"workspace": acme_id}, headers=admin).json()) == 6
    assert client.get("/api/audit", headers=writer).status_code == 403


def test_a_refused_write_leaves_no_audit_entry(client: TestClient) -> None:
    writer = make_key(client, "links:read", "links:write")
    create_link(client, writer, slug="taken")
    assert client.post("/api/links", json={"url": "https://x.example/", "slug": "taken"},
                       headers=writer).status_code == 409  # fmt: skip
    bulk = client.post("/api/links/bulk", headers=writer, json={"links": [
        {"url": "https://x.example/", "slug": "taken"}, {"url": "https://x.example/", "slug": "b1"},
        {"url": "javascript:x"}]})  # fmt: skip
    assert [r["ok"] for r in bulk.json()["results"]] == [False, True, False]
    entries = run_in_transaction(
        client, lambda s: _all(s, select(AuditEvent).order_by(AuditEvent.id))
    )
    assert [(e.action, e.target) for e in entries] == [("link.create", "taken"),
                                                       ("link.create", "b1")]  # fmt: skip


def test_old_audit_entries_are_purged(client: TestClient) -> None:
    writer = make_key(client, "links:read", "links:write")
    create_link(client, writer, slug="old")
    create_link(client, writer, slug="new")
    long_ago = datetime.now(UTC) - timedelta(days=500)
    run_in_transaction(client, lambda s: s.execute(
        update(AuditEvent).where(AuditEvent.target == "old").values(ts=long_ago)))  # fmt: skip
    engine = state_of(client).engine
    assert client.portal is not None
    done = client.portal.call(lambda: retention.maintain(engine, None, audit_retention_days=400))
    assert done.audit_events == 1
    entries = run_in_transaction(client, lambda s: _all(s, select(AuditEvent.target)))
    assert entries == ["new"]


def test_accounts_email_rules() -> None:
    assert accounts.email_of("  Ana.B+tag@Example.co.id ") == "ana.b+tag@example.co.id"
    for bad in ("", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@b@c.com"):
        with pytest.raises(Exception, match="not an email"):
            accounts.email_of(bad)


def test_an_empty_installation_says_how_to_make_the_first_owner(client: TestClient) -> None:
    hint = "tautan users create you@example.com --workspace default --role owner"
    assert hint in client.get("/dashboard/sign-in").text
    make_user(client, "first@example.com", "owner")
    assert hint not in client.get("/dashboard/sign-in").text


def test_with_mail_the_api_mails_the_invite_and_logs_a_failed_mail(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with smtp_server() as (url, inbox), with_writer(
        TestClient(create_app(settings.model_copy(update={"smtp_url": url})),
                   base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:  # fmt: skip
        client.headers["Origin"] = BASE_URL
        admin = make_key(client, "admin")
        acme = workspace(client, admin, "Acme")
        added = client.post(f"/api/workspaces/{acme}/members",
                            json={"email": "ana@example.com", "role": "owner"}, headers=admin)  # fmt: skip
        assert (added.json()["mailed"], added.json()["invite_url"]) == (True, None)
        [(to, message)] = inbox.mails
        assert (
            to == ["ana@example.com"] and "the workspace Acme" in message.get_body().get_content()
        )
        assert set_password(client, BASE_URL + inbox.link_to("ana@example.com")).status_code == 303
    # The mail server is gone now: the mail, sent after the answer, fails and says so in
    # the log (the link is never shown instead: the person is its only reader).
    dead = settings.model_copy(update={"smtp_url": url})
    with with_writer(TestClient(create_app(dead), base_url=BASE_URL, client=PEER)) as client:
        admin = make_key(client, "admin")
        acme = workspace(client, admin, "Globex")
        added = client.post(f"/api/workspaces/{acme}/members",
                            json={"email": "bo@example.com", "role": "viewer"}, headers=admin)  # fmt: skip
        assert (added.status_code, added.json()["mailed"], added.json()["invite_url"]) == (
            201, True, None)  # fmt: skip
    assert "the mail to bo@example.com could not be sent" in caplog.text


def test_an_account_set_up_through_one_owner_joins_no_other_workspace_but_by_an_admin(
    client: TestClient, admin: dict
) -> None:
    """Account squatting: A's owner invites an address, is shown the link and could choose
    its password; B's owner adding that address must not let A's owner into B."""
    acme, globex = workspace(client, admin, "acme"), workspace(client, admin, "globex")
    a_owner = make_key(client, "owner", workspace="acme")
    b_owner = make_key(client, "owner", workspace="globex")
    ceo = {"email": "ceo@globex.test", "role": "viewer"}
    link = client.post(f"/api/workspaces/{acme}/members", json=ceo, headers=a_owner).json()
    assert set_password(client, link["invite_url"]).status_code == 303  # A's owner chose it
    refused = client.post(f"/api/workspaces/{globex}/members", json=ceo, headers=b_owner)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "account_bound")
    assert members(client, admin, globex) == {}
    # An admin may add it: the password A's owner chose stops working, and the sessions
    # it opened end; the person sets one through the admin's link.
    added = client.post(f"/api/workspaces/{globex}/members", json=ceo, headers=admin).json()
    assert added["status"] == "invited" and added["invite_url"]
    assert client.get("/dashboard/links").status_code == 303
    client.cookies.clear()
    refused_sign_in = client.post("/dashboard/sign-in",
                                  data={"email": "ceo@globex.test", "password": NEW_PASSWORD})  # fmt: skip
    assert refused_sign_in.status_code == 401
    assert set_password(client, added["invite_url"], "the ceo's own choice").status_code == 303
    (user,) = stored_users(client)
    assert user.bound_workspace_id is None  # an admin's link binds nothing


def test_joining_another_workspace_ends_the_links_made_before(
    client: TestClient, admin: dict
) -> None:
    acme, globex = workspace(client, admin, "acme"), workspace(client, admin, "globex")
    a_owner = make_key(client, "owner", workspace="acme")
    url = client.post(f"/api/workspaces/{acme}/members",
                      json={"email": "pat@example.com", "role": "viewer"},
                      headers=a_owner).json()["invite_url"]  # fmt: skip
    client.post(f"/api/workspaces/{globex}/members",
                json={"email": "pat@example.com", "role": "viewer"}, headers=admin)  # fmt: skip
    assert set_password(client, url).status_code == 410  # A's owner holds nothing now


def test_owners_neither_see_nor_revoke_the_instances_admin_keys(client: TestClient) -> None:
    make_user(client, "boss@example.com", "owner")  # of "default", where admin keys live
    make_key(client, "admin")
    (admin_key,) = [k for k in run_in_transaction(client, lambda s: _all(s, select(ApiKey)))
                    if "admin" in k.scopes]  # fmt: skip
    sign_in(client, "boss@example.com")
    assert admin_key.prefix not in client.get("/dashboard/keys").text
    assert client.post(f"/dashboard/keys/{admin_key.id}/revoke").status_code == 404
    (still,) = run_in_transaction(
        client, lambda s: _all(s, select(ApiKey.revoked_at).where(ApiKey.id == admin_key.id)))  # fmt: skip
    assert still is None


def test_signing_in_ends_the_browsers_session_before(client: TestClient) -> None:
    make_user(client, "ana@example.com", "editor")
    make_user(client, "bo@example.com", "viewer")
    sign_in(client, "ana@example.com")
    anas = client.cookies["tautan_session"]
    response = client.post("/dashboard/sign-in",
                           data={"email": "bo@example.com", "password": PASSWORD})  # fmt: skip
    assert response.status_code == 303
    client.cookies.clear()
    client.cookies.set("tautan_session", anas, domain="tautan.test", path="/dashboard")
    assert client.get("/dashboard/links").headers["location"] == "/dashboard/sign-in"


def test_the_last_owner_stays_even_from_the_command_line(
    client: TestClient, database_url: str
) -> None:
    tautan(database_url, "users", "create", "only@example.com", "--workspace", "acme",
           "--role", "owner")  # fmt: skip
    refused = tautan(database_url, "users", "remove", "only@example.com")
    assert refused.returncode == 1 and "one owner at least" in refused.stdout
    assert [u.email for u in stored_users(client)] == ["only@example.com"]


def test_credentials_never_cross_the_network_in_clear(settings: Settings) -> None:
    """A server that offers no STARTTLS is not given the SMTP login (nor the link)."""
    with smtp_server() as (url, inbox):
        plain = settings.model_copy(update={"smtp_url": url.replace("//", "//user:secret@")})
        with pytest.raises(mail.MailError, match="no STARTTLS"):
            asyncio.run(mail.send_password_link(plain, "a@example.com", "https://x/", "reset"))
        assert inbox.mails == []
