"""Talking to the app under test: its parts, its database, its API."""

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx2
from sqlalchemy import event, select
from starlette.testclient import TestClient

from app import auth
from app.api.deps import AppState
from app.core.tables import Link

T = TypeVar("T")


BASE_URL = "http://tautan.test"


PEER = ("127.0.0.1", 50000)  # the test client connects as a trusted local proxy would


# A person's browser (not a bot, not a preview fetcher).
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


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


def concurrently(
    client: TestClient, paths: list[str], method: str = "GET", ua: str = DESKTOP_UA
) -> list[httpx2.Response]:
    """Send these requests all at once to the app, on its own event loop."""

    async def send_all() -> list[httpx2.Response]:
        transport = httpx2.ASGITransport(app=client.app, client=PEER)
        async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            headers = {"User-Agent": ua}
            return await asyncio.gather(*(http.request(method, p, headers=headers) for p in paths))

    assert client.portal is not None
    return client.portal.call(send_all)


def statuses(responses: list[httpx2.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


@contextmanager
def link_reads(client: TestClient) -> Iterator[list[str]]:
    """The statements the link cache sends meanwhile: every statement on the app's read-only
    connections (SQLite's BEGIN included; the click writer and the upkeep write elsewhere)."""
    engine = state_of(client).engine.sync_engine
    sent: list[str] = []

    def record(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if connection.get_execution_options().get("deferred"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def served_clicks(client: TestClient, slug: str) -> int:
    return run_in_transaction(
        client, lambda s: s.scalar(select(Link.served_clicks).where(Link.slug == slug))
    )


def check_capped_links_without_database(
    client: TestClient, writer: dict, fail: Callable[[], object], recover: Callable[[], object]
) -> None:
    create_link(client, writer, slug="cap", max_clicks=5)
    create_link(
        client, writer, slug="capf", max_clicks=5, fallback_url="https://shop.example.com/x"
    )
    create_link(client, writer, slug="free")
    # Cached in this process; each HEAD takes a slot.
    assert statuses(concurrently(client, ["/cap", "/capf", "/free"], method="HEAD")) == {302: 3}
    fail()
    cap, capf, free = concurrently(client, ["/cap", "/capf", "/free"])
    assert (cap.status_code, cap.headers["retry-after"]) == (503, "5")
    assert (capf.status_code, capf.headers["location"]) == (302, "https://shop.example.com/x")
    assert (free.status_code, free.headers["location"]) == (302, "https://shop.example.com/")
    assert client.head("/cap").status_code == 503  # no slot without the database, HEAD or not
    recover()
    assert statuses(concurrently(client, ["/cap", "/capf"])) == {302: 2}
    assert (served_clicks(client, "cap"), served_clicks(client, "capf")) == (2, 2)
