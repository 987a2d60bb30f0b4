"""Test fixtures: every test that asks for `database_url` runs on a real SQLite file and,
when TAUTAN_TEST_POSTGRES_URL is set, once more on a real PostgreSQL database."""

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, make_url, select, text
from starlette.testclient import TestClient

import app.core.tables  # noqa: F401
from app import auth, migrate
from app.api.deps import AppState
from app.clicks.raw import RawClick
from app.clicks.writer import ClickWriter
from app.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.principal import DEFAULT_WORKSPACE
from app.core.tables import Link
from app.core.tables.base import Base
from app.main import create_app
from app.secret_key import SecretKey

T = TypeVar("T")
POSTGRES_URL = os.environ.get("TAUTAN_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
BASE_URL = "http://tautan.test"
PEER = ("127.0.0.1", 50000)  # the test client connects as a trusted local proxy would


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _recreate_postgres_database(name: str) -> str:
    assert POSTGRES_URL
    server = create_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await server.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


CREATED_DATABASES: list[str] = []


def empty_database(backend: str, tmp_path: Path, name: str) -> str:
    """The URL of a new, empty database of the given backend (PostgreSQL ones are
    dropped when the test session ends)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"
    database = f"tautan_{name}_{os.getpid()}"
    CREATED_DATABASES.append(database)
    return run(_recreate_postgres_database(database))


async def _drop_postgres_databases(names: list[str]) -> None:
    assert POSTGRES_URL
    server = create_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        for name in names:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await server.dispose()


@pytest.fixture(scope="session", autouse=True)
def _drop_created_databases() -> Iterator[None]:
    yield
    if CREATED_DATABASES:
        run(_drop_postgres_databases(sorted(set(CREATED_DATABASES))))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = empty_database(backend, tmp_path_factory.mktemp("db"), "suite")
    migrate.upgrade(url)
    return url


async def _clear(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            query = delete(table)
            if table.name == "workspaces":
                query = query.where(table.c.name != DEFAULT_WORKSPACE)
            await connection.execute(query)
    await engine.dispose()


@pytest.fixture
def database_url(migrated_url: str) -> str:
    """A migrated database holding only the default workspace."""
    run(_clear(migrated_url))
    return migrated_url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        base_url=BASE_URL,
        spool_dir=str(tmp_path / "spool"),
        flush_interval_ms=20,
        link_cache_ttl_s=30,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, with a click writer reading its click log as a writer process would (run
    here, on the app's event loop, rather than in a process of its own)."""
    with with_writer(
        TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        yield client


@contextlib.contextmanager
def with_writer(client: TestClient) -> Iterator[TestClient]:
    """`client` entered, with its click writer running on the app's event loop."""
    with client:
        writer = click_writer(client)
        assert client.portal is not None
        running = client.portal.start_task_soon(writer.run)
        try:
            yield client
        finally:  # also after a failure, or the client would wait for the writer for ever
            client.portal.call(writer.stop)
            running.result(timeout=30)


def write_log(settings: Settings) -> None:
    """Write what the click log holds (its sealed segments) to the database, here, as a
    writer process would."""

    async def drain() -> None:
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        writer = ClickWriter.for_settings(
            settings, sessionmaker, SecretKey(sessionmaker, settings.secret_key)
        )
        writer.stop(drain_s=60)  # stops once the log is written to its end
        await writer.run()
        await engine.dispose()

    run(drain())


def state_of(client: TestClient) -> AppState:
    """The parts of the `client` fixture's app (its engine, sessions, caches …)."""
    return client.app.api.state.tautan  # type: ignore[attr-defined,union-attr,no-any-return]


def click_writer(client: TestClient) -> ClickWriter:
    """The click writer of the `client` fixture's app (made on first use)."""
    if (writer := getattr(client, "click_writer", None)) is None:
        state = state_of(client)
        settings = state.settings
        writer = ClickWriter.for_settings(settings, state.sessionmaker, state.secret_key)
        client.click_writer = writer  # type: ignore[attr-defined]
    return writer


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


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return make_key(client, "admin")


@pytest.fixture
def writer(client: TestClient) -> dict[str, str]:
    return make_key(client, "links:read", "links:write", "stats:read")


def create_link(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("url", "https://shop.example.com/")
    response = client.post("/api/links", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def raw_click(
    link: dict[str, Any],
    when: datetime,
    *,
    ua: str = DESKTOP_UA,
    referer: str = "",
    ip: str = "203.0.113.5",
    language: str = "",
    trigger: str = "link",
) -> RawClick:
    """A click on `link` (as the API returned it) received at `when`, from `ip` (its own
    digest too: one visitor per address); its workspace is filled in by `seed_clicks`."""
    return RawClick(link["id"], 0, when.timestamp(), ip, ip, ua, referer, language, trigger)


def seed_clicks(client: TestClient, clicks: list[RawClick]) -> None:
    """Write clicks through the click writer (enrichment, rollups, counters)."""
    link_ids = {c.link_id for c in clicks}
    owners = run_in_transaction(
        client, lambda s: s.execute(select(Link.id, Link.workspace_id).where(Link.id.in_(link_ids)))
    )
    workspace_of = dict(owners.all())
    clicks = [dataclasses.replace(c, workspace_id=workspace_of[c.link_id]) for c in clicks]
    assert client.portal is not None
    client.portal.call(click_writer(client).write, clicks)


def tautan(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `tautan` command line against `database_url`."""
    env = {**os.environ, "TAUTAN_DATABASE_URL": database_url, "TAUTAN_BASE_URL": BASE_URL}
    command = [str(Path(sys.executable).parent / "tautan"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
