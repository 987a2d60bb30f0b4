"""Big imports through a real `tautan serve`: committed (or, dry, rolled back) chunk by
chunk, so that other writers get in between two chunks."""

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select

from app.core.database import create_engine
from app.core.tables import Link
from app.links.transfer import IMPORT_CHUNK
from tests.support.databases import run
from tests.support.server import KEY, serving


async def counts_while(alive: Callable[[], bool], database_url: str) -> set[int]:
    """The imported links counted again and again while `alive()`, on one engine: a new
    engine for each count was slow enough, on a busy machine, to miss every chunk. Its
    reads are deferred: on SQLite a count that took the write lock (BEGIN IMMEDIATE) waited
    behind chunk after chunk and saw only none or all."""
    engine = create_engine(database_url)
    seen = set()
    try:
        while alive():
            async with engine.execution_options(deferred=True).connect() as connection:
                links = await connection.scalar(select(func.count()).select_from(Link))
            seen.add((links or 0) - 1)  # the capped link aside
    finally:
        await engine.dispose()
    return seen


def test_a_big_import_lets_other_writes_through_between_chunks(
    database_url: str, tmp_path: Path
) -> None:
    """Each chunk is committed on its own: a capped link taking its slot (a write) and the
    click writer wait for one chunk at most, not for the whole file (which on SQLite, the
    one writer at a time, ran past its busy timeout: capped links answered 503)."""
    rows = 8 * IMPORT_CHUNK
    csv_text = "url,slug\n" + "".join(f"https://shop.example/{i},big{i}\n" for i in range(rows))
    admin = {"Authorization": f"Bearer {KEY}"}
    with serving(database_url, tmp_path) as (_, base), httpx2.Client(base_url=base) as http:
        capped = {"url": "https://shop.example/capped", "slug": "capped", "max_clicks": 1000}
        assert http.post("/api/links", json=capped, headers=admin).status_code == 201
        done: list[httpx2.Response] = []
        importing = threading.Thread(
            target=lambda: done.append(
                http.post(
                    "/api/links/import",
                    files={"file": ("links.csv", csv_text.encode(), "text/csv")},
                    headers=admin,
                    timeout=300,
                )
            )
        )
        importing.start()
        try:
            # A write while it imports: a click on the capped link takes its slot.
            capped_status: list[int] = []
            clicking = threading.Thread(
                target=lambda: capped_status.append(http.get("/capped").status_code)
            )
            clicking.start()
            # Counted from outside the server (whose event loop the import shares with the
            # requests it answers): a count between none and all shows that the import
            # commits as it goes.
            seen = run(counts_while(importing.is_alive, database_url))
            clicking.join()
            assert any(0 < count < rows for count in seen), sorted(seen)
            assert capped_status == [302]
        finally:
            importing.join()
        assert done[0].json()["imported"] == rows


def test_a_big_dry_run_lets_other_writers_in_between_chunks(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    """A dry run is rolled back chunk by chunk, so SQLite's one write lock is free between
    two chunks: another writer (the click writer, a capped link taking its slot) gets in,
    instead of waiting for the whole file, or past its busy timeout."""
    if backend != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL locks rows")
    rows = 16 * IMPORT_CHUNK
    csv_text = "url,slug\n" + "".join(f"https://shop.example/{i},dry{i}\n" for i in range(rows))
    other = sqlite3.connect(database_url.split(":///", 1)[1], timeout=0, isolation_level=None)
    with serving(database_url, tmp_path) as (_, base), httpx2.Client(base_url=base) as http:
        done: list[httpx2.Response] = []
        importing = threading.Thread(
            target=lambda: done.append(
                http.post(
                    "/api/links/import",
                    params={"dry_run": "true"},
                    files={"file": ("links.csv", csv_text.encode(), "text/csv")},
                    headers={"Authorization": f"Bearer {KEY}"},
                    timeout=300,
                )
            )
        )
        got_in: list[bool] = []  # whether each try took the write lock
        importing.start()
        while importing.is_alive():
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                got_in.append(True)
            except sqlite3.OperationalError:  # locked: a chunk is being checked
                got_in.append(False)
            time.sleep(0.002)
        importing.join()
    other.close()
    assert done[0].json()["imported"] == rows
    # The lock was taken and let go about once a chunk (a whole dry run in one transaction
    # takes it once, plus once for the key's last use).
    times_locked = sum(1 for i, free in enumerate(got_in) if not free and (i == 0 or got_in[i - 1]))
    assert times_locked >= 8
