"""The click log on its own: segments appended, sealed, read in order from a position, and
deleted once written; what a dead process left; the size cap."""

import dataclasses
import fcntl
import os
import time
from pathlib import Path

import pytest

from app.clicks.log import Batch, ClickLog, LogReader, LogSize, oldest_click_age, segment_paths
from app.clicks.raw import RawClick, decode, encode
from tests.support.databases import run


def raw(n: int) -> RawClick:
    return RawClick(n, 1, 1_700_000_000.0 + n, "127.0.0.0", "k", "ua", "", "", "link")


def new_log(directory: Path, max_bytes: int = 1 << 30) -> ClickLog:
    return ClickLog(str(directory), interval_s=0.02, max_bytes=max_bytes)


def read_all(reader: LogReader, positions: dict[str, int] | None = None, size: int = 100) -> Batch:
    """One batch, from `positions` (segment -> bytes written) or the start."""

    async def position_of(key: str) -> int:
        return (positions or {}).get(key, 0)

    return run(reader.next_batch(size, position_of))


def test_clicks_come_back_in_order_across_segments_and_written_segments_go(
    tmp_path: Path,
) -> None:
    log = new_log(tmp_path)
    log.append(raw(1))
    log.append(raw(2))
    log.close()  # sealed: the next click starts a new segment
    log.append(raw(3))
    log.close()
    assert [p.suffix for p in segment_paths(tmp_path)] == [".seg", ".seg"]
    assert LogSize(str(tmp_path)).measure()[0] == 3

    reader = LogReader(str(tmp_path))
    batch = read_all(reader)
    assert [c.link_id for c in batch.clicks] == [1, 2, 3]
    assert sorted(batch.positions.values()) == sorted(
        p.stat().st_size for p in segment_paths(tmp_path)
    )
    assert len(reader.committed()) == 2
    assert segment_paths(tmp_path) == [] and oldest_click_age(tmp_path) == 0


def test_a_batch_stops_at_its_size_and_the_next_goes_on_from_there(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    for n in range(5):
        log.append(raw(n))
    log.close()
    reader = LogReader(str(tmp_path))
    first = read_all(reader, size=3)
    assert [c.link_id for c in first.clicks] == [0, 1, 2]
    [(key, position)] = first.positions.items()
    assert reader.committed() == []  # not read to its end: kept
    second = read_all(reader, size=3)
    assert [c.link_id for c in second.clicks] == [3, 4]
    assert reader.committed() == [key]


def test_a_reader_resumes_from_the_position_the_database_holds(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    for n in range(4):
        log.append(raw(n))
    log.close()
    [segment] = segment_paths(tmp_path)
    written = len(encode(raw(0))) + len(encode(raw(1)))
    key = segment.name.rpartition(".")[0]
    # As after a writer was killed once the first two were committed, or after a failed
    # batch was let go: they are not read again.
    reader = LogReader(str(tmp_path))
    batch = read_all(reader, {key: written})
    assert [c.link_id for c in batch.clicks] == [2, 3]
    reader.release()
    # And a segment written to its end but not yet deleted gives nothing, and goes.
    reader = LogReader(str(tmp_path))
    done = read_all(reader, {key: segment.stat().st_size})
    assert done.clicks == [] and done.positions == {key: segment.stat().st_size}
    assert reader.committed() == [key] and not segment.exists()


def test_a_segment_its_process_still_appends_to_is_left_alone(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append(raw(1))  # open, and locked by its process
    reader = LogReader(str(tmp_path))
    assert read_all(reader).clicks == []
    log.close()
    assert [c.link_id for c in read_all(reader).clicks] == [1]
    reader.release()


def test_a_segment_left_open_by_a_dead_process_is_read_and_its_cut_line_skipped(
    tmp_path: Path,
) -> None:
    # What a process killed mid-write leaves: an open segment nobody locks, whose last line
    # is cut short (a redirect never answered).
    segment = tmp_path / "00000000000000000001-999-abcd.open"
    segment.write_bytes(encode(raw(1)) + encode(raw(2)) + encode(raw(3))[:20])
    reader = LogReader(str(tmp_path))
    batch = read_all(reader)
    assert [c.link_id for c in batch.clicks] == [1, 2]
    assert batch.positions == {segment.stem: segment.stat().st_size}
    assert reader.committed() == [segment.stem] and not segment.exists()


def test_an_unreadable_line_is_skipped_not_the_segment(tmp_path: Path) -> None:
    good = encode(raw(1)).decode()
    fields = good.removeprefix("[").removesuffix("]\n").split(",")
    # JSON that is no click would fail every batch it is in, for ever: skipped like the rest.
    not_clicks = [
        b'[1, "\xff\n',  # not JSON
        b'{"link_id": 1}\n',
        b"[1, 1]\n",
        ("[" + ",".join(fields + ['"x"', '"y"']) + "]\n").encode(),  # too many fields
        ('[1, 1, "noon",' + ",".join(fields[3:]) + "]\n").encode(),  # a time of no number
        ('["1", 1,' + ",".join(fields[2:]) + "]\n").encode(),
        ("[1, 1, 1e300," + ",".join(fields[3:]) + "]\n").encode(),  # past any calendar
        ("[" + ",".join(fields[:-1] + ["null"]) + "]\n").encode(),
    ]
    segment = tmp_path / "00000000000000000001-999-abcd.seg"
    segment.write_bytes(encode(raw(1)) + b"".join(not_clicks) + encode(raw(3)))
    reader = LogReader(str(tmp_path))
    assert [c.link_id for c in read_all(reader).clicks] == [1, 3]
    reader.release()


def test_a_line_logged_before_client_hints_were_kept_is_still_a_click() -> None:
    line = encode(raw(7))
    older = line.removesuffix(b"]\n").rsplit(b",", 1)[0] + b"]\n"
    assert decode(older) == dataclasses.replace(raw(7), client_hints="")


def test_another_reader_does_not_take_a_segment_one_holds(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append(raw(1))
    log.append(raw(2))
    log.close()
    first, second = LogReader(str(tmp_path)), LogReader(str(tmp_path))
    assert len(read_all(first, size=1).clicks) == 1  # holds it, half read
    [segment] = segment_paths(tmp_path)
    with segment.open("rb") as file, pytest.raises(BlockingIOError):
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert read_all(second).clicks == []
    first.release()  # a failed batch: nothing of it was written
    assert [c.link_id for c in read_all(second).clicks] == [1, 2]
    second.release()


def test_files_and_folder_are_the_owners_alone(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        log = new_log(tmp_path / "spool")
        log.append(raw(1))
        log.close()
    finally:
        os.umask(old)
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    [segment] = segment_paths(tmp_path / "spool")
    assert segment.stat().st_mode & 0o777 == 0o600


def test_past_its_cap_the_log_drops_clicks_and_counts_them(tmp_path: Path) -> None:
    line = len(encode(raw(1)))
    log = new_log(tmp_path, max_bytes=3 * line)
    for n in range(5):
        log.append(raw(n))
    assert (log.appended, log.dropped) == (3, 2)
    log.close()  # measured again: still full
    log.append(raw(9))
    assert log.dropped == 3
    reader = LogReader(str(tmp_path))
    read_all(reader)
    reader.committed()  # written and deleted: room again
    log.close()
    log.append(raw(10))
    assert (log.appended, log.dropped) == (4, 3)


def test_a_disk_that_refuses_drops_clicks_without_raising(tmp_path: Path) -> None:
    log = new_log(tmp_path / "spool")
    (tmp_path / "spool").rmdir()
    (tmp_path / "spool").write_text("")  # a file where the folder was: nothing can be created
    log.append(raw(1))
    log.append(raw(2))
    assert (log.appended, log.dropped) == (0, 2)
    (tmp_path / "spool").unlink()
    (tmp_path / "spool").mkdir()
    log.close()  # at the next seal it tries again
    log.append(raw(3))
    assert (log.appended, log.dropped) == (1, 2)


def test_an_empty_segment_left_half_created_by_a_dead_process_is_removed(
    tmp_path: Path,
) -> None:
    # A process killed between creating a segment and renaming it leaves an empty `.new`.
    dead = tmp_path / "00000000000000000001-999-abcd.new"
    dead.touch()
    an_hour_ago = time.time() - 3600
    os.utime(dead, (an_hour_ago, an_hour_ago))
    being_made = tmp_path / "00000000000000000002-998-abcd.new"  # by a live process, now
    being_made.touch()
    LogReader(str(tmp_path))
    assert not dead.exists() and being_made.exists()
