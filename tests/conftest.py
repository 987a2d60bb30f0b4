"""Test fixtures: every test that asks for `database_url` runs on a real SQLite file and,
when TAUTAN_TEST_POSTGRES_URL is set, once more on a real PostgreSQL database."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import app.core.database
import app.core.tables  # noqa: F401
import app.redirect.cache
from app import migrate
from app.config import Settings
from app.main import create_app
from tests.support import databases
from tests.support.app import BASE_URL, PEER, make_key
from tests.support.clickhouse import ENGINES, fresh_clickhouse
from tests.support.clicks import with_writer
from tests.support.databases import BACKENDS, empty_database, run
from tests.support.stream import stream_url

# No test fetches the default geo database from the internet; `tautan serve` run as a
# subprocess inherits this too.
os.environ.setdefault("TAUTAN_GEO_DOWNLOAD", "false")


@pytest.fixture(scope="session", autouse=True)
def _drop_created_databases() -> Iterator[None]:
    yield
    if databases.CREATED_DATABASES:
        run(databases.drop_postgres_databases(sorted(set(databases.CREATED_DATABASES))))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = empty_database(backend, tmp_path_factory.mktemp("db"), "suite")
    migrate.upgrade(url)
    return url


@pytest.fixture
def database_url(migrated_url: str) -> str:
    """A migrated database holding only the default workspace."""
    run(databases.clear(migrated_url))
    return migrated_url


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """SQLite's busy timeout cut from 5 s to 2 s for engines created from now on, so that a
    test holding the write lock waits less; ask for it before `client`."""
    for module in (app.core.database, app.redirect.cache):
        monkeypatch.setattr(module, "SQLITE_BUSY_TIMEOUT_S", 2)
    return 2


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        base_url=BASE_URL,
        spool_dir=str(tmp_path / "spool"),
        flush_interval_ms=20,
        link_cache_ttl_s=30,
    )


@pytest.fixture(params=ENGINES)
def clickhouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """TAUTAN_CLICKHOUSE_URL: an empty ClickHouse at the latest schema, embedded (chdb) and
    the server of TAUTAN_TEST_CLICKHOUSE_URL (skipped when unset)."""
    return fresh_clickhouse(request.param, tmp_path)


@pytest.fixture
def click_stream() -> str:
    """TAUTAN_CLICK_STREAM: an empty Redis database of this test worker's own."""
    return stream_url()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, with a click writer reading its click log as a writer process would (run
    here, on the app's event loop, rather than in a process of its own)."""
    with with_writer(
        TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        yield client


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return make_key(client, "admin")


@pytest.fixture
def writer(client: TestClient) -> dict[str, str]:
    return make_key(client, "links:read", "links:write", "stats:read")
