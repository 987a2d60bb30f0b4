import fcntl
import time
from pathlib import Path

import pytest

from app.clicks.queue import ClickQueue, RawClick
from app.clicks.spool import MAX_CLICKS_PER_FILE, Spool
from app.clicks.writer import ClickWriter
from app.metrics import Metrics
from tests.conftest import run


def raw(n: int) -> RawClick:
    return RawClick(n, 1, 1_700_000_000.0 + n, "127.0.0.1", "ua", "", "", "", "", "", "link")


def replay_all(spool: Spool) -> list[int]:
    seen: list[int] = []

    async def write(clicks: list[RawClick]) -> None:
        seen.extend(c.link_id for c in clicks)

    run(spool.replay(write))
    return seen


def test_spooled_clicks_come_back_in_order_and_the_files_go(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    spool.append([raw(1), raw(2)])
    spool.append([raw(3)])
    assert spool.size() == 3
    assert replay_all(spool) == [1, 2, 3]
    assert not spool.pending() and spool.size() == 0
    spool.append([raw(4)])  # appending goes on in a new file
    assert replay_all(spool) == [4]
    spool.close()


def test_files_rotate_so_one_replay_transaction_stays_bounded(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    spool.append([raw(i) for i in range(MAX_CLICKS_PER_FILE)])
    spool.append([raw(-1)])
    assert len(spool.files()) == 2
    batches: list[int] = []

    async def write(clicks: list[RawClick]) -> None:
        batches.append(len(clicks))

    run(spool.replay(write))
    assert batches == [MAX_CLICKS_PER_FILE, 1]
    spool.close()


def test_a_file_another_process_holds_is_left_alone(tmp_path: Path) -> None:
    crashed = Spool(str(tmp_path))
    crashed.append([raw(1)])
    crashed.close()  # a dead process holds no lock
    other = Spool(str(tmp_path))
    other.append([raw(2)])  # still open and locked by its owner
    held = other.files()[-1]
    with held.open() as file, pytest.raises(BlockingIOError):
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the owner holds it
    assert replay_all(Spool(str(tmp_path))) == [1]
    assert held.exists()
    other.close()


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    spool.append([raw(1), raw(2)])
    spool.close()
    path = spool.files()[0]
    path.write_text(path.read_text() + "[3, 1, 17000")
    assert replay_all(Spool(str(tmp_path))) == [1, 2]


def test_a_failed_write_keeps_the_file(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    spool.append([raw(1)])

    async def failing(clicks: list[RawClick]) -> None:
        raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        run(spool.replay(failing))
    assert replay_all(spool) == [1]


def test_a_full_queue_sends_clicks_to_the_spool(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    writer = ClickWriter(
        queue=ClickQueue(batch=10, maxsize=5),
        spool=spool,
        sessionmaker=None,  # type: ignore[arg-type]
        enricher=None,
        metrics=Metrics(),
        interval_s=0.2,  # type: ignore[arg-type]
        secret_key=None,
    )
    for n in range(8):
        writer.record(raw(n))
    # The waiting clicks went to the spool with the one that found the queue full, in order;
    # later ones queue again, behind the spool.
    assert replay_all(spool) == [0, 1, 2, 3, 4, 5]
    assert [c.link_id for c in writer.queue.take(10)] == [6, 7]
    assert writer.metrics.clicks_spooled == 6


def test_a_size_probe_reads_only_what_the_spool_gained_since_the_last(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    for _ in range(20):  # a long outage: /readyz and /metrics ask for the size all along
        spool.append([raw(1)] * MAX_CLICKS_PER_FILE, sync=False)

    def timed_size() -> tuple[float, int]:
        started = time.perf_counter()
        size = spool.size()
        return time.perf_counter() - started, size

    first, size = timed_size()
    assert size == 20 * MAX_CLICKS_PER_FILE
    again = min(timed_size()[0] for _ in range(5))
    assert again < first / 10  # it was a full read each time, redirects waiting behind it
    spool.append([raw(2), raw(3)])
    assert spool.size() == 20 * MAX_CLICKS_PER_FILE + 2
    replay_all(spool)
    assert spool.size() == 0
