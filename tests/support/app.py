"""Talking to the app under test: its parts, its database, its API."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.testclient import TestClient

from app import auth
from app.api.deps import AppState

T = TypeVar("T")


BASE_URL = "http://tautan.test"


PEER = ("127.0.0.1", 50000)  # the test client connects as a trusted local proxy would


def state_of(client: TestClient) -> AppState:
    """The parts of the `client` fixture's app (its engine, sessions, caches …)."""
    return client.app.api.state.tautan  # type: ignore[attr-defined,union-attr,no-any-return]


def run_in_transaction(client: TestClient, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(session)` in one committed transaction on the app's own event loop."""
    state = state_of(client)

    async def go() -> T:
        async with state.sessionmaker() as session, session.begin():
            return await work(session)

    assert client.portal is not None
    return client.portal.call(go)


def make_key(client: TestClient, *scopes: str, workspace: str = "default") -> dict[str, str]:
    """Authorization headers for a new key with these scopes in this workspace."""
    _, token = run_in_transaction(
        client, lambda s: auth.create_key(s, name="test", scopes=list(scopes), workspace=workspace)
    )
    return {"Authorization": f"Bearer {token}"}


def create_link(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("url", "https://shop.example.com/")
    response = client.post("/api/links", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
