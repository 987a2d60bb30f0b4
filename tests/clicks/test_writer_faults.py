"""The click writer keeps going, and writes every click once, whatever fails under it: a
spool file it cannot read, a spool it cannot write, a database that fails midway."""

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from app.clicks.models import Click
from app.clicks.queue import RawClick
from app.clicks.spool import MAX_CLICKS_PER_FILE, Spool
from app.config import Settings
from app.links.models import Link
from app.main import create_app
from tests.conftest import BASE_URL, PEER, create_link, in_app, make_key

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HALFWAY = "https://halfway.example/"  # the referrer of the click the database fails on


def app_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)


def link_clicks(client: TestClient, slug: str) -> int:
    return in_app(client, lambda s: s.scalar(select(Link.clicks).where(Link.slug == slug)))


def click_rows(client: TestClient) -> int:
    return in_app(client, lambda s: s.scalar(select(func.count()).select_from(Click)))


def wait_until(done: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def click_on(link_id: int, workspace_id: int, *, referer: str = "") -> RawClick:
    return RawClick(
        link_id, workspace_id, time.time(), "203.0.113.9", DESKTOP, referer, "", "", "", "", "link"
    )


def workspace_of(client: TestClient, slug: str) -> int:
    return in_app(client, lambda s: s.scalar(select(Link.workspace_id).where(Link.slug == slug)))


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

    in_app(client, lambda s: execute(s, statements))
    try:
        yield
    finally:
        in_app(client, lambda s: execute(s, undo))


def spool_line(click: RawClick) -> str:
    return json.dumps([getattr(click, name) for name in RawClick.__dataclass_fields__]) + "\n"


@pytest.mark.parametrize("spoiled", ["a stray byte", "cannot be opened"])
def test_an_unreadable_spool_file_does_not_stop_the_writer(
    settings: Settings, spoiled: str
) -> None:
    with app_client(settings) as client:
        link_id = create_link(client, make_key(client, "admin"), slug="un")["id"]
        workspace_id = workspace_of(client, "un")
    spool = Path(settings.spool_dir)
    first = spool / "00000000000000000001-1.jsonl"
    line = spool_line(click_on(link_id, workspace_id)).encode()
    if spoiled == "a stray byte":  # as a disk error leaves: the line reads, less one byte
        first.write_bytes(line.replace(b"X11", b"X\xff1"))
    else:  # as a file the process may not open (root's, say): a directory named like one
        first.mkdir()
    (spool / "00000000000000000002-1.jsonl").write_bytes(line)

    with app_client(settings) as client:
        for _ in range(5):
            assert client.get("/un", headers={"User-Agent": DESKTOP}).status_code == 302
        want = 5 + 1 + (spoiled == "a stray byte")
        assert wait_until(lambda: link_clicks(client, "un") == want), link_clicks(client, "un")
    assert not Spool(settings.spool_dir).pending()
    assert (spoiled == "cannot be opened") == first.with_suffix(".bad").exists()


def test_clicks_wait_in_memory_while_neither_the_database_nor_the_spool_takes_them(
    client: TestClient, writer: dict, backend: str, settings: Settings
) -> None:
    create_link(client, writer, slug="sp")
    spool, away = Path(settings.spool_dir), Path(settings.spool_dir + "-away")
    with click_inserts_failing(client, backend):
        spool.rename(away)
        spool.write_text("")  # a file where the spool directory was: nothing can be spooled
        try:
            for _ in range(2):
                for _ in range(10):
                    assert client.get("/sp", headers={"User-Agent": DESKTOP}).status_code == 302
                time.sleep(0.3)  # the writer tries both, in vain
        finally:
            spool.unlink()
            away.rename(spool)
    assert wait_until(lambda: link_clicks(client, "sp") == 20), link_clicks(client, "sp")
    time.sleep(0.5)  # and nothing is written twice
    assert link_clicks(client, "sp") == click_rows(client) == 20
    assert not Spool(settings.spool_dir).pending()


def test_a_batch_the_database_fails_halfway_through_is_written_once(
    client: TestClient, writer: dict, backend: str
) -> None:
    link_id = create_link(client, writer, slug="hw")["id"]
    workspace_id = workspace_of(client, "hw")
    good = click_on(link_id, workspace_id)
    gone = click_on(987654, workspace_id)  # a link deleted meanwhile: refused as data
    halfway = click_on(link_id, workspace_id, referer=HALFWAY)
    # The refused click makes the writer go click by click; the database then fails on the
    # fifth, after three are committed, and goes on failing for a while.
    batch = [good, good, good, gone, halfway, good, good]
    state = client.app.api.state  # type: ignore[attr-defined]

    async def record() -> None:
        for click in batch:
            state.writer.record(click)

    with click_inserts_failing(client, backend, when=f"NEW.referrer_url = '{HALFWAY}'"):
        assert client.portal is not None
        client.portal.call(record)
        assert wait_until(lambda: link_clicks(client, "hw") == 3)
        time.sleep(0.3)
    assert wait_until(lambda: link_clicks(client, "hw") >= 6), link_clicks(client, "hw")
    time.sleep(0.5)
    assert link_clicks(client, "hw") == click_rows(client) == 6


def test_a_stop_during_a_long_replay_leaves_the_rest_for_the_next_start(
    settings: Settings,
) -> None:
    with app_client(settings) as client:
        headers = make_key(client, "admin")
        old = create_link(client, headers, slug="old")["id"]
        create_link(client, headers, slug="new")
        workspace_id = workspace_of(client, "old")
    crashed = Spool(settings.spool_dir)
    files = 8
    for _ in range(files):
        crashed.append([click_on(old, workspace_id)] * MAX_CLICKS_PER_FILE)
    crashed.close()
    spooled = files * MAX_CLICKS_PER_FILE

    with app_client(settings) as client:  # replays the spool as it starts
        for _ in range(3):
            assert client.get("/new", headers={"User-Agent": DESKTOP}).status_code == 302
    # Stopped before the replay could finish: the rest waits, and the queue after it.
    left = Spool(settings.spool_dir).size()
    assert 0 < left < spooled + 3

    with app_client(settings) as client:
        assert wait_until(lambda: link_clicks(client, "new") == 3, timeout=60)
        assert link_clicks(client, "old") == spooled
        assert click_rows(client) == spooled + 3
        # In the order they came in: every spooled click before the ones queued after it.
        ids = in_app(client, lambda s: s.execute(select(Click.link_id, Click.id))).all()
        assert max(i for link, i in ids if link == old) < min(i for link, i in ids if link != old)
    assert not Spool(settings.spool_dir).pending()
