from datetime import timedelta

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from app.auth import hash_token
from app.core.clock import utcnow
from app.core.principal import SCOPES
from app.core.tables import ApiKey
from tests.support.app import create_link, make_key, run_in_transaction
from tests.support.cli import tautan

# (method, path, body, scope it needs)
ROUTES = [
    ("GET", "/api/links", None, "links:read"),
    ("GET", "/api/links/scoped", None, "links:read"),
    ("POST", "/api/links", {"url": "https://ok.example/"}, "links:write"),
    ("POST", "/api/links/bulk", {"links": [{"url": "https://ok.example/"}]}, "links:write"),
    ("PATCH", "/api/links/scoped", {"title": "t"}, "links:write"),
    ("DELETE", "/api/links/scoped", None, "links:write"),
]
OK = {"GET": 200, "POST": 201, "PATCH": 200, "DELETE": 204}


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
def test_every_route_enforces_its_scope(
    client: TestClient, method: str, path: str, body: dict | None, needed: str
) -> None:
    owner = make_key(client, "admin")
    create_link(client, owner, slug="scoped")
    right = make_key(client, needed)
    cases = [
        ({}, 401),
        ({"Authorization": "Bearer tk_nope"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        (make_key(client, *(set(SCOPES) - {needed, "admin"})), 403),
        (right, 200 if path.endswith("/bulk") else OK[method]),
        (
            {"X-API-Key": right["Authorization"].removeprefix("Bearer ")},
            200 if path.endswith("/bulk") else OK[method],
        ),
    ]
    for headers, status in cases:
        client.patch("/api/links/scoped", json={"archived": False}, headers=owner)
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (headers, response.text)
        if status >= 400:
            assert response.json()["error"]["code"] in {"unauthorized", "forbidden"}


def test_revoked_and_expired_keys_are_refused(client: TestClient) -> None:
    headers = make_key(client, "links:read")
    token = headers["Authorization"][7:]
    assert client.get("/api/links", headers=headers).status_code == 200
    expire = update(ApiKey).where(ApiKey.token_hash == hash_token(token))
    run_in_transaction(
        client, lambda s: s.execute(expire.values(expires_at=utcnow() - timedelta(seconds=1)))
    )
    assert client.get("/api/links", headers=headers).status_code == 401
    run_in_transaction(
        client, lambda s: s.execute(expire.values(expires_at=None, revoked_at=utcnow()))
    )
    assert client.get("/api/links", headers=headers).status_code == 401


def test_tokens_are_stored_only_as_a_hash(client: TestClient) -> None:
    token = make_key(client, "links:read")["Authorization"].removeprefix("Bearer ")
    rows = run_in_transaction(client, lambda s: s.execute(select(ApiKey.__table__)))
    assert token not in repr(rows.all())


def test_cli_keys_create_list_revoke(client: TestClient, database_url: str) -> None:
    created = tautan(
        database_url,
        "keys",
        "create",
        "--name",
        "agency",
        "--scopes",
        "links:read,links:write",
        "--workspace",
        "client-c",
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        client.post("/api/links", json={"url": "https://ok.example/"}, headers=headers).status_code
        == 201
    )

    listed = tautan(database_url, "keys", "list")
    assert listed.returncode == 0 and "agency" in listed.stdout and token not in listed.stdout
    key_id = run_in_transaction(
        client, lambda s: s.scalar(select(ApiKey.id).where(ApiKey.name == "agency"))
    )
    revoked = tautan(database_url, "keys", "revoke", str(key_id))
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/api/links", headers=headers).status_code == 401
    assert tautan(database_url, "keys", "revoke", "999999").returncode == 1


def test_cli_refuses_unknown_scopes_and_writes_nothing(
    client: TestClient, database_url: str
) -> None:
    result = tautan(database_url, "keys", "create", "--name", "bad", "--scopes", "links:read,root")
    assert result.returncode != 0 and "root" in result.stderr + result.stdout
    assert (
        run_in_transaction(
            client, lambda s: s.scalar(select(ApiKey.id).where(ApiKey.name == "bad"))
        )
        is None
    )
