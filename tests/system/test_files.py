"""Files Tautan creates hold clicks (addresses, User-Agents) and keys' hashes: they are its
own user's alone (database and click log files 0600, the click log's folders 0700),
whatever umask it was started with."""

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from sqlalchemy import text

from app.core.database import create_engine
from tests.support.app import DESKTOP_UA
from tests.support.databases import run
from tests.support.server import KEY, serving, stored_clicks


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def usual_umask() -> Iterator[None]:
    """The umask most shells start with (others may read what is created), for the test
    and whatever it starts."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def _rename_clicks(url: str, old: str, new: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    await engine.dispose()


@contextmanager
def writes_failing(backend: str, url: str) -> Iterator[None]:
    """The database refuses the click writer's writes: SQLite's is locked (the writer gives
    up after its busy timeout), PostgreSQL's clicks table is out of the way."""
    if backend == "sqlite":
        blocker = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    else:
        run(_rename_clicks(url, "clicks", "clicks_away"))
        try:
            yield
        finally:
            run(_rename_clicks(url, "clicks_away", "clicks"))


def test_a_served_database_and_its_spool_are_the_owners_alone(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend == "sqlite":  # a database `tautan serve` creates, not the suite's
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    spool = tmp_path / "spool"
    with (
        usual_umask(),
        serving(database_url, tmp_path) as (_, base),
        httpx2.Client(base_url=base, timeout=30) as http,
    ):
        link = {"url": "https://shop.example.com/", "slug": "f"}
        admin = {"Authorization": f"Bearer {KEY}"}
        assert http.post("/api/links", json=link, headers=admin).status_code == 201
        assert http.get("/f", headers={"User-Agent": DESKTOP_UA}).status_code == 302
        deadline = time.monotonic() + 15
        while run(stored_clicks(database_url)) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run(stored_clicks(database_url)) == 1
        if backend == "sqlite":
            database = tmp_path / "fresh.db"
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(spool) == mode(spool / "writers") == 0o700
        published = list((spool / "writers").glob("*.json"))  # the writers' figures
        assert published and {mode(f) for f in published} == {0o600}

        # A click the database cannot take waits in a segment of the click log.
        with writes_failing(backend, database_url):
            assert http.get("/f", headers={"User-Agent": DESKTOP_UA}).status_code == 302
            deadline = time.monotonic() + 15
            while not list(spool.glob("*.seg")) and time.monotonic() < deadline:
                time.sleep(0.1)
            waiting = list(spool.glob("*.seg"))
            assert waiting, "the click is not in the log"
            assert {f.name: mode(f) for f in waiting} == {f.name: 0o600 for f in waiting}
        deadline = time.monotonic() + 30
        while run(stored_clicks(database_url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run(stored_clicks(database_url)) == 2  # written once the database answered
