"""The click writer keeps going, and writes every click once, whatever fails under it: a
database that fails a batch, clicks it refuses, a stop in the middle of a catch-up."""

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from app.clicks.log import ClickLog, segment_paths
from app.clicks.raw import RawClick
from app.config import Settings
from app.core.tables import Link, LogOffset
from app.main import create_app
from tests.support.app import BASE_URL, DESKTOP_UA, PEER, create_link, make_key, run_in_transaction
from tests.support.clicks import click_writer, count_clicks, link_clicks, with_writer
from tests.support.databases import count_rows, run


def app_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)


def wait_until(done: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def click_on(link_id: int, workspace_id: int, *, referer: str = "") -> RawClick:
    return RawClick(
        link_id, workspace_id, time.time(), "203.0.113.0", "k", DESKTOP_UA, referer, "", "link"
    )


def workspace_of(client: TestClient, slug: str) -> int:
    return run_in_transaction(
        client, lambda s: s.scalar(select(Link.workspace_id).where(Link.slug == slug))
    )


@contextlib.contextmanager
def click_inserts_failing(client: TestClient, backend: str, when: str = "TRUE") -> Iterator[None]:
    """The database fails every click insert for which the SQL condition `when` holds, as
    a busy or broken database does: an error about the work, not about the values."""
    if backend == "sqlite":
        # sum() overflowing is a runtime SQLITE_ERROR, as "database is locked" is.
        statements = [
            f"CREATE TRIGGER test_fail BEFORE INSERT ON clicks WHEN {when} BEGIN "
            "SELECT sum(v) FROM (SELECT 9223372036854775807 AS v UNION ALL SELECT 1); END"
        ]
        undo = ["DROP TRIGGER test_fail"]
    else:
        statements = [
            "CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF {when} THEN RAISE EXCEPTION 'could not obtain lock' USING ERRCODE = '55P03'; "
            "END IF; RETURN NEW; END $$",
            "CREATE TRIGGER test_fail BEFORE INSERT ON clicks "
            "FOR EACH ROW EXECUTE FUNCTION test_fail()",
        ]
        undo = ["DROP TRIGGER test_fail ON clicks", "DROP FUNCTION test_fail()"]

    async def execute(session: AsyncSession, sql: list[str]) -> None:
        for statement in sql:
            await session.execute(text(statement))

    run_in_transaction(client, lambda s: execute(s, statements))
    try:
        yield
    finally:
        run_in_transaction(client, lambda s: execute(s, undo))


def log_clicks(settings: Settings, clicks: list[RawClick]) -> None:
    """Append `clicks` to the click log as a serving process does, and seal them."""
    log = ClickLog(settings.spool_dir, interval_s=1, max_bytes=1 << 30)
    for click in clicks:
        log.append(click)
    log.close()


def test_a_batch_the_database_fails_is_written_later_and_once(
    client: TestClient, writer: dict, backend: str, settings: Settings
) -> None:
    create_link(client, writer, slug="sp")
    with click_inserts_failing(client, backend):
        for _ in range(20):
            assert client.get("/sp", headers={"User-Agent": DESKTOP_UA}).status_code == 302
        # The writer tries, in vain, and backs off.
        assert wait_until(lambda: click_writer(client).stats.writer_errors >= 2)
        assert link_clicks(client, "sp") == 0
    assert wait_until(lambda: link_clicks(client, "sp") == 20), link_clicks(client, "sp")
    time.sleep(0.5)  # and nothing is written twice
    assert link_clicks(client, "sp") == count_clicks(client) == 20
    assert segment_paths(Path(settings.spool_dir)) == []


def test_clicks_the_database_refuses_as_data_do_not_hold_up_the_rest(
    client: TestClient, writer: dict, settings: Settings
) -> None:
    link_id = create_link(client, writer, slug="hw")["id"]
    workspace_id = workspace_of(client, "hw")
    good = click_on(link_id, workspace_id)
    gone = click_on(987654, workspace_id)  # a link deleted meanwhile: refused as data
    log_clicks(settings, [good, good, gone, good])
    assert wait_until(lambda: link_clicks(client, "hw") == 3), link_clicks(client, "hw")
    time.sleep(0.3)
    assert count_clicks(client) == 3
    assert click_writer(client).stats.clicks_rejected == 1
    assert segment_paths(Path(settings.spool_dir)) == []


def test_a_stop_during_a_long_catch_up_leaves_the_rest_for_the_next_start(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"flush_batch": 500})
    with app_client(settings) as client:
        headers = make_key(client, "admin")
        old = create_link(client, headers, slug="old")["id"]
        workspace_id = workspace_of(client, "old")
    logged = 40_000
    log_clicks(settings, [click_on(old, workspace_id)] * logged)

    with app_client(settings) as client:
        writer = click_writer(client)
        assert client.portal is not None
        running = client.portal.start_task_soon(writer.run)
        assert wait_until(lambda: link_clicks(client, "old") > 0)
        client.portal.call(writer.stop, 0)  # no time to drain: stop after this batch
        running.result(timeout=30)
        written = link_clicks(client, "old")
    assert 0 < written < logged
    with with_writer(app_client(settings)) as client:
        assert wait_until(lambda: link_clicks(client, "old") == logged, timeout=120)
        time.sleep(0.3)
        assert count_clicks(client) == logged
    assert segment_paths(Path(settings.spool_dir)) == []


def test_a_stopped_writer_leaves_no_offsets_of_the_segments_it_deleted(
    settings: Settings,
) -> None:
    with with_writer(app_client(settings)) as client:
        create_link(client, make_key(client, "admin"), slug="off")
        for _ in range(3):
            assert client.get("/off", headers={"User-Agent": DESKTOP_UA}).status_code == 302
        assert wait_until(lambda: count_clicks(client) == 3)
        assert wait_until(lambda: segment_paths(Path(settings.spool_dir)) == [])  # deleted
    # The writer stopped with the app: nothing of the log is left, in files or in rows.
    assert run(count_rows(settings.database_url, LogOffset)) == 0
