"""No click is lost while the database is down: redirects go on for cached links, clicks
wait in the click log, and every one of them is in the database once it answers again."""

import sqlite3
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.clicks.log import ClickLog, segment_paths
from app.clicks.raw import RawClick
from app.config import Settings
from app.main import create_app
from tests.support.app import BASE_URL, DESKTOP_UA, PEER, create_link, make_key
from tests.support.clicks import count_clicks, wait_for_clicks, with_writer


def test_sqlite_locked_database_loses_no_click(
    short_busy_timeout: float,
    backend: str,
    database_url: str,
    settings: Settings,
    client: TestClient,
) -> None:
    if backend != "sqlite":
        pytest.skip("locks a SQLite file")
    path = database_url.split(":///", 1)[1]
    create_link(client, make_key(client, "admin"), slug="lk")
    client.get("/lk", headers={"User-Agent": DESKTOP_UA})
    assert wait_for_clicks(client, 1) == 1
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # nobody else may write now
    for _ in range(30):
        assert client.get("/lk", headers={"User-Agent": DESKTOP_UA}).status_code == 302
    time.sleep(short_busy_timeout + 1)  # longer than the writer waits for the lock
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
            RawClick(link_id, 1, time.time(), "203.0.113.0", "k", DESKTOP_UA, "", "", "link")
        )
    with with_writer(TestClient(create_app(settings), base_url=BASE_URL, client=PEER)) as client:
        # Its segment is still open, and still locked by this test: it waits.
        time.sleep(0.3)
        assert count_clicks(client) == 0
        crashed.close()
        assert wait_for_clicks(client, 7) == 7
    assert segment_paths(Path(settings.spool_dir)) == []
