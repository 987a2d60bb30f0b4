"""The click log as a Redis Stream (TAUTAN_CLICK_STREAM), on the machine's real Redis:
serving processes forward their local log to it, writers read it through the consumer
group, and every click is written once, whoever dies when."""

import asyncio
import logging
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from app.clicks import stream
from app.clicks.log import ClickLog, segment_paths
from app.clicks.raw import RawClick, encode
from app.clicks.stream import HOST, StreamForwarder, StreamSource
from app.clicks.writer import ClickWriter
from app.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.tables import Click, Link, StreamEntry
from app.main import create_app
from app.secret_key import SecretKey
from tests.support.app import BASE_URL, PEER, create_link, make_key, run_in_transaction
from tests.support.clicks import clicks_of, raw_click, with_writer
from tests.support.databases import count_rows, run
from tests.support.server import free_port
from tests.support.stream import stream_length


@pytest.fixture
def stream_settings(settings: Settings, click_stream: str, tmp_path: Path) -> Settings:
    """With the click stream, and a local log of their own: the `client` fixture's writer
    reads the segments of `settings.spool_dir`, and must not write these."""
    spool = str(tmp_path / "stream-spool")
    return settings.model_copy(update={"click_stream": click_stream, "spool_dir": spool})


@pytest.fixture
def link(client: TestClient) -> dict:
    """A link (made through the app without a stream), with its workspace's id."""
    made = create_link(client, make_key(client, "admin"), slug="s")
    workspace = run_in_transaction(
        client, lambda s: s.scalar(select(Link.workspace_id).where(Link.id == made["id"]))
    )
    return {**made, "workspace_id": workspace}


def clicks(link: dict, first: int, count: int) -> list[RawClick]:
    """`count` clicks on `link`, told apart by their Referer (news.example/N from `first`)."""
    now = datetime.now(UTC)
    return [
        replace(
            raw_click(link, now, referer=f"https://news.example/{n}"),
            workspace_id=link["workspace_id"],
        )
        for n in range(first, first + count)
    ]


def log_segment(spool: Path, logged: list[RawClick]) -> None:
    """One sealed segment of the local log holding `logged`, as a serving process leaves it."""
    click_log = ClickLog(str(spool), interval_s=1, max_bytes=1 << 30)
    for click in logged:
        click_log.append(click)
    click_log.close()


def written_referrers(url: str) -> list[str]:
    async def query() -> list[str]:
        engine = create_engine(url)
        async with engine.connect() as connection:
            found = list(await connection.scalars(select(Click.referrer_url)))
        await engine.dispose()
        return found

    return run(query())


async def forward(url: str, spool: Path) -> StreamForwarder:
    forwarder = StreamForwarder(url, str(spool), interval_s=1)
    await forwarder.forward()
    await forwarder.close()
    return forwarder


async def write_batches(
    settings: Settings, consumer: str, batches: int, size: int, *, acknowledge_last: bool = False
) -> None:
    """`batches` batches of the stream written by a writer named `consumer`, which then
    dies: after acknowledging the last batch or (by default) just before."""
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    writer = ClickWriter.for_settings(settings, sessionmaker, SecretKey(sessionmaker, None))
    source = writer.source
    assert isinstance(source, StreamSource)
    source.consumer = consumer
    try:
        for n in range(batches):
            batch = await source.next_batch(size)
            await writer.write(batch.clicks, batch)
            if n < batches - 1 or acknowledge_last:
                await source.committed()
    finally:
        await source.close()
        await engine.dispose()


async def drain(settings: Settings) -> None:
    """Write what the stream holds, as a writer process would, and stop."""
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    writer = ClickWriter.for_settings(settings, sessionmaker, SecretKey(sessionmaker, None))
    writer.stop(drain_s=30)  # stops once the stream is written to its end
    await writer.run()
    await engine.dispose()


def a_gone_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_redirects_reach_the_database_through_the_stream_once(stream_settings: Settings) -> None:
    app = create_app(stream_settings)
    client = TestClient(app, base_url=BASE_URL, follow_redirects=False, client=PEER)
    with with_writer(client):
        create_link(client, make_key(client, "admin"), slug="s")
        for n in range(30):
            response = client.get("/s", headers={"Referer": f"https://news.example/{n}"})
            assert response.status_code == 302
        assert len(clicks_of(client, 30)) == 30
        metrics = client.get("/metrics").text
    expected = sorted(f"https://news.example/{n}" for n in range(30))
    assert sorted(written_referrers(stream_settings.database_url)) == expected
    assert "tautan_clicks_forwarded_total 30.0" in metrics
    # Written entries leave the stream, and forwarded segments the local log.
    assert stream_length(stream_settings.click_stream) == 0  # type: ignore[arg-type]
    assert segment_paths(Path(stream_settings.spool_dir)) == []


def test_a_forwarder_killed_mid_segment_resumes_where_its_marker_says(
    tmp_path: Path, click_stream: str, link: dict
) -> None:
    logged = clicks(link, 0, 5)
    log_segment(tmp_path, logged)
    [segment] = segment_paths(tmp_path)
    # What a forwarder killed after adding the first two clicks leaves: the marker that
    # was set in the same MULTI/EXEC as their entry.
    marker = stream.FORWARDED + segment.stem
    with redis.Redis.from_url(click_stream) as client:
        client.set(marker, len(encode(logged[0]) + encode(logged[1])))
        run(forward(click_stream, tmp_path))
        entries = client.xrange(stream.STREAM)
        assert client.exists(marker) == 0
    lines = b"".join(fields[b"clicks"] for _, fields in entries)
    assert lines == b"".join(map(encode, logged[2:]))
    assert segment_paths(tmp_path) == []


def test_while_redis_is_down_clicks_wait_in_the_local_log_then_go_in_order(
    tmp_path: Path, click_stream: str, link: dict, caplog: pytest.LogCaptureFixture
) -> None:
    for first in (0, 3, 6):  # three segments, oldest first
        log_segment(tmp_path, clicks(link, first, 3))
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING):
        down = run(forward(nobody, tmp_path))
    assert down.failures == 1 and down.forwarded == 0
    assert "clicks wait in the local log" in caplog.text
    assert len(segment_paths(tmp_path)) == 3

    up = run(forward(click_stream, tmp_path))
    assert (up.failures, up.forwarded) == (0, 9)
    with redis.Redis.from_url(click_stream) as client:
        lines = b"".join(fields[b"clicks"] for _, fields in client.xrange(stream.STREAM))
    referers = [line.split(b'"https://news.example/')[1][:1] for line in lines.splitlines()]
    assert referers == [str(n).encode() for n in range(9)]


def test_a_writer_dead_before_acknowledging_gets_its_entries_written_once(
    stream_settings: Settings, click_stream: str, link: dict
) -> None:
    spool = Path(stream_settings.spool_dir)
    for first in (0, 4, 8):  # three entries of 4 clicks
        log_segment(spool, clicks(link, first, 4))
    run(forward(click_stream, spool))
    # A writer of this machine writes two entries, the second committed but never
    # acknowledged, and is gone; the third stays handed to it, unwritten.
    dead = f"{HOST}:{a_gone_pid()}:0"
    run(write_batches(stream_settings, dead, batches=2, size=1))
    with redis.Redis.from_url(click_stream) as client:
        client.xreadgroup(stream.GROUP, dead, {stream.STREAM: ">"}, count=1)
    assert len(written_referrers(stream_settings.database_url)) == 8

    run(drain(stream_settings))  # a new writer takes over both at once
    written = written_referrers(stream_settings.database_url)
    assert sorted(written) == sorted(f"https://news.example/{n}" for n in range(12))
    assert stream_length(click_stream) == 0


def test_entries_held_by_a_silent_writer_elsewhere_are_taken_once_idle(
    stream_settings: Settings, click_stream: str, link: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Path(stream_settings.spool_dir)
    log_segment(spool, clicks(link, 0, 3))
    run(forward(click_stream, spool))
    run(write_batches(stream_settings, "other-machine:42:0", batches=1, size=1))  # not acked
    log_segment(spool, clicks(link, 3, 3))
    run(forward(click_stream, spool))
    with redis.Redis.from_url(click_stream) as client:  # handed out, never written
        client.xreadgroup(stream.GROUP, "other-machine:42:0", {stream.STREAM: ">"}, count=1)

    run(drain(stream_settings))  # the other machine may be alive: nothing taken yet
    assert len(written_referrers(stream_settings.database_url)) == 3
    monkeypatch.setattr(stream, "CLAIM_IDLE_MS", 0)
    run(drain(stream_settings))
    written = written_referrers(stream_settings.database_url)
    assert sorted(written) == sorted(f"https://news.example/{n}" for n in range(6))
    assert stream_length(click_stream) == 0


def test_a_writer_that_only_looks_gone_keeps_what_it_reads_meanwhile(
    stream_settings: Settings, click_stream: str, link: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer in another PID namespace under this host's name (a container on the host's
    network) looks gone to the writers here. It must not lose a batch it reads while they
    look at it."""
    elsewhere = f"{HOST}:{a_gone_pid()}:bbbbbb"
    with redis.Redis.from_url(click_stream) as r:  # known to the group, holding nothing
        r.xgroup_create(stream.STREAM, stream.GROUP, id="0", mkstream=True)
        r.xadd(stream.STREAM, {"clicks": b""})
        [[_, [(entry, _)]]] = r.xreadgroup(stream.GROUP, elsewhere, {stream.STREAM: ">"})
        r.xack(stream.STREAM, stream.GROUP, entry)
        r.xdel(stream.STREAM, entry)
    spool = Path(stream_settings.spool_dir)
    log_segment(spool, clicks(link, 0, 3))
    run(forward(click_stream, spool))
    consumers = redis.asyncio.Redis.xinfo_consumers

    async def it_reads_just_after(self: redis.asyncio.Redis, *args: object) -> object:
        seen = await consumers(self, *args)
        with redis.Redis.from_url(click_stream) as r:
            r.xreadgroup(stream.GROUP, elsewhere, {stream.STREAM: ">"}, count=10)
        return seen

    monkeypatch.setattr(redis.asyncio.Redis, "xinfo_consumers", it_reads_just_after)
    run(drain(stream_settings))
    monkeypatch.undo()
    # It dies before writing them: they are taken over once it has been idle long enough.
    monkeypatch.setattr(stream, "CLAIM_IDLE_MS", 0)
    run(drain(stream_settings))
    assert len(written_referrers(stream_settings.database_url)) == 3


def test_two_writers_at_once_write_each_click_once(
    stream_settings: Settings, click_stream: str, link: dict
) -> None:
    spool = Path(stream_settings.spool_dir)
    for first in range(0, 400, 20):
        log_segment(spool, clicks(link, first, 20))
    run(forward(click_stream, spool))
    settings = stream_settings.model_copy(update={"flush_batch": 30})

    async def both() -> None:
        await asyncio.gather(drain(settings), drain(settings))

    run(both())
    written = written_referrers(stream_settings.database_url)
    assert len(written) == 400 and len(set(written)) == 400


def test_the_stream_is_never_trimmed_forwarding_holds_back_at_its_cap(
    stream_settings: Settings, click_stream: str, link: dict, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(stream, "MAX_ENTRIES", 2)
    spool = Path(stream_settings.spool_dir)
    for first in (0, 2):
        log_segment(spool, clicks(link, first, 2))
    run(forward(click_stream, spool))  # under the cap when the round starts
    log_segment(spool, clicks(link, 4, 2))
    with caplog.at_level(logging.ERROR):
        held = run(forward(click_stream, spool))
    assert held.entries == 2 and held.forwarded == 0
    assert "forwarding waits for the writers" in caplog.text
    assert len(segment_paths(spool)) == 1 and stream_length(click_stream) == 2

    run(drain(stream_settings))
    run(forward(click_stream, spool))
    run(drain(stream_settings))
    assert len(written_referrers(stream_settings.database_url)) == 6


def test_the_rows_of_written_entries_are_kept_an_hour_unless_still_pending(
    stream_settings: Settings, click_stream: str, link: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Path(stream_settings.spool_dir)
    for first in (0, 3):
        log_segment(spool, clicks(link, first, 3))
        run(forward(click_stream, spool))
    # The first entry written and acknowledged; the second written and still pending (its
    # writer died before acknowledging it).
    dead = f"other-machine:1:{'0' * 6}"
    run(write_batches(stream_settings, dead, batches=2, size=1))
    assert run(count_rows(stream_settings.database_url, StreamEntry)) == 2
    run(drain(stream_settings))  # sweeps when it starts: both rows are younger than an hour
    assert run(count_rows(stream_settings.database_url, StreamEntry)) == 2

    monkeypatch.setattr(stream, "KEEP_ROWS_S", 0)
    run(drain(stream_settings))  # the pending one's row stays: it may be handed out again
    assert run(count_rows(stream_settings.database_url, StreamEntry)) == 1
    monkeypatch.setattr(stream, "CLAIM_IDLE_MS", 0)
    run(drain(stream_settings))  # taken over, found written, acknowledged
    run(drain(stream_settings))
    assert run(count_rows(stream_settings.database_url, StreamEntry)) == 0
    assert len(written_referrers(stream_settings.database_url)) == 6


def test_an_entry_written_long_after_it_was_added_keeps_its_row_an_hour(
    stream_settings: Settings, click_stream: str, link: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an outage of the database, writers write entries added hours before: a writer
    that was slow with one (and lost it to another) must still find it written."""
    spool = Path(stream_settings.spool_dir)
    log_segment(spool, clicks(link, 0, 3))
    run(forward(click_stream, spool))
    with redis.Redis.from_url(click_stream) as r:  # the entry, as added two hours ago
        [(_, fields)] = r.xrange(stream.STREAM)
        r.delete(stream.STREAM)
        r.xadd(stream.STREAM, fields, id=f"{int((time.time() - 7200) * 1000)}-0")

    async def slow_writer_then_others() -> None:
        engine = create_engine(stream_settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        slow = ClickWriter.for_settings(
            stream_settings, sessionmaker, SecretKey(sessionmaker, None)
        )
        assert isinstance(slow.source, StreamSource)
        slow.source.consumer = "other-machine:1:aaaaaa"
        batch = await slow.source.next_batch(1000)  # read, then nothing for over 30 s
        assert len(batch.clicks) == 3
        monkeypatch.setattr(stream, "CLAIM_IDLE_MS", 0)
        await drain(stream_settings)  # another writer takes it over and writes it
        await drain(stream_settings)  # and sweeps: the row was written just now
        with pytest.raises(IntegrityError):  # its row is there: the batch is read again
            await slow.write(batch.clicks, batch)
        await slow.source.close()
        await engine.dispose()

    run(slow_writer_then_others())
    assert len(written_referrers(stream_settings.database_url)) == 3


def test_a_batch_held_past_its_time_is_not_written_but_read_again(
    stream_settings: Settings, click_stream: str, link: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Path(stream_settings.spool_dir)
    log_segment(spool, clicks(link, 0, 3))
    run(forward(click_stream, spool))
    monkeypatch.setattr(stream, "HOLD_MAX_S", -1)  # any batch is held too long
    with pytest.raises(TimeoutError):
        run(write_batches(stream_settings, f"{HOST}:{a_gone_pid()}:0", batches=1, size=10))
    assert written_referrers(stream_settings.database_url) == []
    monkeypatch.setattr(stream, "HOLD_MAX_S", 600)
    run(drain(stream_settings))
    assert len(written_referrers(stream_settings.database_url)) == 3


def test_a_click_stream_that_is_no_redis_url_is_refused(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="must be a Redis URL") as refused:
        Settings(click_stream="http://127.0.0.1:6379/0")
    assert "click_stream" in str(refused.value)
