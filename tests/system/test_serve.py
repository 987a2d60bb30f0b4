"""`tautan serve` as a real process: redirects over real HTTP become click rows, and a
SIGTERM in the middle of traffic loses none of the clicks it answered."""

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select

from app.config import Settings
from app.core.database import create_engine
from app.core.principal import DEFAULT_WORKSPACE
from app.core.tables import Click, Workspace
from tests.support.clicks import write_log
from tests.support.databases import run
from tests.support.server import KEY, UAS, serving, stored_clicks


async def _click_rows(url: str) -> list[tuple[str, bool, str]]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Click.device_type, Click.is_bot, Click.referrer_source).order_by(Click.id)
        )
        result = [tuple(r) for r in rows]
    await engine.dispose()
    return result  # type: ignore[return-value]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    with serving(database_url, tmp_path) as (process, base):
        yield process, base


def test_redirects_over_http_become_rows_and_sigterm_loses_none(
    server: tuple[subprocess.Popen, str], database_url: str, tmp_path: Path
) -> None:
    process, base = server
    api = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"})
    assert (
        api.post("/api/links", json={"url": "https://shop.example/", "slug": "e2e"}).status_code
        == 201
    )
    api.close()

    with httpx2.Client(base_url=base) as anon:
        for i in range(40):
            headers = {"User-Agent": UAS[i % 4], "Referer": "https://t.co/x" if i % 2 else ""}
            assert anon.get("/e2e", headers=headers).status_code == 302
    deadline = time.monotonic() + 15
    while run(stored_clicks(database_url)) < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = run(_click_rows(database_url))
    assert len(rows) == 40
    assert sum(is_bot for _, is_bot, _ in rows) == 10
    assert {device for device, _, _ in rows} == {"mobile", "desktop", "bot"}
    assert {source for _, _, source in rows} == {"x", "direct"}

    served = [0] * 4

    def hammer(slot: int) -> None:
        with httpx2.Client(base_url=base, timeout=5) as client:
            for _ in range(5000):  # bounded; the server going away ends it sooner
                try:
                    if client.get("/e2e", headers={"User-Agent": UAS[slot]}).status_code == 302:
                        served[slot] += 1
                except httpx2.TransportError:
                    return

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    assert process.wait(timeout=60) == 0  # a graceful stop, writers included
    log = process.stdout.read()  # type: ignore[union-attr]
    assert "Application shutdown complete" in log, log
    assert sum(served) > 0
    # What the writers could not write in their drain (a loaded machine) waits in the click
    # log for the next start: written then, none lost and none twice.
    written_at_stop = run(stored_clicks(database_url))
    write_log(Settings(database_url=database_url, spool_dir=str(tmp_path / "spool")))
    assert run(stored_clicks(database_url)) == 40 + sum(served), (written_at_stop, log[-4000:])
    assert written_at_stop > 40  # the drain wrote clicks too


def test_api_keys_never_reach_the_log(database_url: str, tmp_path: Path) -> None:
    wrong = "tk_not_a_real_key_4242424242"
    with serving(database_url, tmp_path, "--access-log") as (process, base):
        with httpx2.Client(base_url=base) as client:
            for token in (KEY, wrong):
                client.get("/api/links", headers={"Authorization": f"Bearer {token}"})
                client.get("/api/links", headers={"X-API-Key": token})
                client.post("/api/links", headers={"X-API-Key": token}, content=b"{bad json")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log = process.stdout.read()  # type: ignore[union-attr]
    assert '"GET /api/links HTTP/1.1" 401' in log  # the access log was on
    assert KEY not in log and wrong not in log
    assert KEY[:10] not in log  # not even the prefix `keys list` shows


def test_serve_says_where_short_links_point_and_warns_when_they_cannot_reach_it(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path) as (process, base):
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log = process.stdout.read()  # type: ignore[union-attr]
    assert f"Short links: {base}/<slug> (TAUTAN_BASE_URL)\n" in log
    assert "warning" not in log.lower()
    # An empty installation says how to make the first person who can sign in.
    assert "tautan users create you@example.com --workspace default --role owner" in log

    stale = "http://127.0.0.1:1"  # copied from another setup: no server listens there
    with serving(database_url, tmp_path, base_url=stale) as (process, base):
        api = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"})
        created = api.post("/api/links", json={"url": "https://shop.example/", "slug": "w"})
        api.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log = process.stdout.read()  # type: ignore[union-attr]
    assert created.json()["short_url"] == f"{stale}/w"  # what the warning is about
    assert f"Short links: {stale}/<slug> (TAUTAN_BASE_URL)\n" in log
    port = base.rsplit(":", 1)[1]
    assert f"warning: short links point at {stale} (port 1)" in log
    assert f"set TAUTAN_BASE_URL=http://127.0.0.1:{port}" in log


def test_clicks_an_older_version_spooled_are_written_once(
    database_url: str, tmp_path: Path
) -> None:
    """The spool of a version before the click log, left by an outage across the upgrade:
    its writers convert it at start, and its click is written."""
    with serving(database_url, tmp_path) as (_, base):
        api = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"})
        link = api.post("/api/links", json={"url": "https://shop.example/", "slug": "up"}).json()
        api.close()
    workspace = run(_default_workspace(database_url))
    old = tmp_path / "spool" / "01700000000000000000-4242.jsonl"
    fields = [link["id"], workspace, time.time(), "127.0.0.1", UAS[2], "", "", "203.0.113.9",
              "", "", "link", ""]  # fmt: skip
    old.write_text(json.dumps(fields) + "\n")
    with serving(database_url, tmp_path):
        deadline = time.monotonic() + 30
        while run(stored_clicks(database_url)) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a second conversion would be written by now
    assert run(_click_rows(database_url)) == [("desktop", False, "direct")]
    assert not old.exists()


async def _default_workspace(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as connection:
        found = await connection.scalar(
            select(Workspace.id).where(Workspace.name == DEFAULT_WORKSPACE)
        )
    await engine.dispose()
    assert found is not None
    return found
