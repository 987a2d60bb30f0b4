"""No click is lost while the database is down: redirects go on for cached links, clicks
wait in the click log, and every one of them is in the database once it answers again."""

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app import migrate
from app.clicks.log import ClickLog, segment_paths
from app.clicks.raw import RawClick
from app.config import Settings
from app.core.tables import Click
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link, make_key, run_in_transaction
from tests.support.clicks import with_writer

pytestmark = pytest.mark.system  # real processes: `pytest -m 'not system'` skips them

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def count_clicks(client: TestClient) -> int:
    return run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(Click)))


def wait_for_clicks(client: TestClient, want: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = count_clicks(client)
        except Exception:  # the database may still be coming back
            got = -1
        if got >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL server of the test's own, which the test may stop and start."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(directory, "postgres")
        self._pg("initdb", "-D", f"{directory}/data", "-A", "trust", "-U", "postgres")

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            "pg_ctl",
            "-D",
            f"{self.directory}/data",
            "-o",
            options,
            "-l",
            f"{self.directory}/log",
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", f"{self.directory}/data", "-m", "fast", "-w", "stop")


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    if not (PG_BIN / "initdb").exists() or os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and PostgreSQL 15 binaries in /usr/lib/postgresql/15/bin")
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    directory = Path(tempfile.mkdtemp(prefix="tautan-pg-"))
    server = ThrowawayPostgres(directory)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_postgres_outage_loses_no_click(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    migrate.upgrade(throwaway_postgres.url)
    settings = Settings(
        database_url=throwaway_postgres.url,
        base_url=BASE_URL,
        spool_dir=str(tmp_path / "spool"),
        flush_interval_ms=20,
        link_cache_ttl_s=0.2,
    )
    with with_writer(
        TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        admin = make_key(client, "admin")
        create_link(client, admin, slug="up")
        create_link(client, admin, slug="unread")  # never followed: not in the cache
        served = 0
        for _ in range(20):
            served += client.get("/up", headers={"User-Agent": DESKTOP}).status_code == 302
        assert wait_for_clicks(client, served) == served

        throwaway_postgres.stop()
        for _ in range(50):  # the link is cached: redirects go on, past the cache's TTL too
            served += client.get("/up", headers={"User-Agent": DESKTOP}).status_code == 302
            time.sleep(0.01)
        assert served == 70
        unread = client.get("/unread")  # nothing to go on: try again later
        assert (unread.status_code, unread.headers["retry-after"]) == (503, "5")
        time.sleep(0.5)
        assert client.get("/readyz").status_code == 503
        assert client.get("/readyz").json()["queue_depth"] > 0

        throwaway_postgres.start()
        assert wait_for_clicks(client, served) == served
        time.sleep(0.5)  # nothing is written twice
        assert count_clicks(client) == served
        assert segment_paths(Path(settings.spool_dir)) == []


def test_sqlite_locked_database_loses_no_click(
    backend: str, database_url: str, settings: Settings, client: TestClient
) -> None:
    if backend != "sqlite":
        pytest.skip("locks a SQLite file")
    path = database_url.split(":///", 1)[1]
    create_link(client, make_key(client, "admin"), slug="lk")
    client.get("/lk", headers={"User-Agent": DESKTOP})
    assert wait_for_clicks(client, 1) == 1
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # nobody else may write now
    for _ in range(30):
        assert client.get("/lk", headers={"User-Agent": DESKTOP}).status_code == 302
    time.sleep(6)  # longer than the writer waits for the lock
    assert client.get("/readyz").json()["queue_depth"] == 30
    blocker.execute("ROLLBACK")
    blocker.close()
    assert wait_for_clicks(client, 31) == 31
    assert segment_paths(Path(settings.spool_dir)) == []


def test_a_log_left_by_a_crashed_process_is_written_at_start(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url=BASE_URL, client=PEER) as client:
        link_id = create_link(client, make_key(client, "admin"), slug="cr")["id"]
    crashed = ClickLog(settings.spool_dir, interval_s=1, max_bytes=1 << 20)
    for _ in range(7):
        crashed.append(
            RawClick(link_id, 1, time.time(), "203.0.113.0", "k", DESKTOP, "", "", "link")
        )
    with with_writer(TestClient(create_app(settings), base_url=BASE_URL, client=PEER)) as client:
        # Its segment is still open, and still locked by this test: it waits.
        time.sleep(0.3)
        assert count_clicks(client) == 0
        crashed.close()
        assert wait_for_clicks(client, 7) == 7
    assert segment_paths(Path(settings.spool_dir)) == []
