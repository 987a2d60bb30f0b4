"""The click log: raw clicks on their way from the serving processes that receive them to
the writer processes that store them, as segment files under TAUTAN_SPOOL_DIR.

A serving process appends each click as one line (raw.encode) to a segment of its own,
with one write() before the redirect is answered: from then on the kernel has it, whatever
happens to the process. Every flush interval it makes the segment durable (fsync, in a
thread) and seals it (`*.open` renamed `*.seg`); the next click starts the next segment.

A writer takes segments oldest first, each under an exclusive lock, and commits how far it
has written each (a byte offset, table `click_log_offsets`) in the same transaction as the
rows: killed at any moment, it resumes where the database says, and no click is written
twice or lost. A segment is deleted once written to its end.

A segment still named `*.open` whose lock nobody holds was left by a serving process that
died: it is read like a sealed one."""

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clicks.raw import RawClick, decode, encode
from app.core.dialect import upsert_insert
from app.core.tables import LogOffset

log = logging.getLogger(__name__)
OPEN, SEALED = ".open", ".seg"
NEW = ".new"  # a segment being created, not yet locked: no writer looks at it
UNBORN_AFTER_S = 60  # a `.new` file older than this was left by a process that died
COUNT_CHUNK = 1 << 20  # bytes read at a time when counting a segment's clicks
STATS_FOLDER = "writers"  # where writer processes publish their figures, for /metrics
FORGET_S = 1.0  # at a writer's stop, for the offsets of the segments last deleted


def _log_folder(directory: str) -> Path:
    # Clicks hold addresses and User-Agents: the folder and its files are the owner's alone.
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def segment_paths(directory: Path) -> list[Path]:
    """Every segment in the log, oldest first (names start with their creation time)."""
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.endswith((OPEN, SEALED))]
    return [directory / name for name in sorted(names)]


def log_bytes(directory: Path) -> int:
    """The size of every segment in the log, written or not."""
    total = 0
    for path in segment_paths(directory):
        with contextlib.suppress(FileNotFoundError):  # written and deleted meanwhile
            total += path.stat().st_size
    return total


def oldest_click_age(directory: Path, now_ns: int | None = None) -> float:
    """Seconds since the oldest segment still in the log was started, that is since its
    first click was received: how far behind the writers are (0 with an empty log). A
    segment written in part overstates it by at most a flush interval."""
    paths = segment_paths(directory)
    if not paths:
        return 0.0
    started = int(paths[0].name.partition("-")[0])
    return max(0.0, ((now_ns or time.time_ns()) - started) / 1e9)


class LogSize:
    """The log's size in clicks and in bytes, for /readyz and /metrics. A sealed segment
    never changes, so each is counted once; a segment written in part counts whole."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self._counted: dict[str, tuple[int, int]] = {}  # name -> (bytes, clicks)

    def measure(self) -> tuple[int, int]:
        """(clicks, bytes)"""
        counted = {}
        for path in segment_paths(self.directory):
            try:
                size = path.stat().st_size
                known = self._counted.get(path.name)
                if known is None or known[0] != size:
                    known = size, _count_lines(path)
            except FileNotFoundError:  # written and deleted meanwhile
                continue
            counted[path.name] = known
        self._counted = counted
        return sum(c for _, c in counted.values()), sum(b for b, _ in counted.values())


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as file:
        while chunk := file.read(COUNT_CHUNK):
            lines += chunk.count(b"\n")
    return lines


class ClickLog:
    """The serving process's side of the log. `append` costs one write() to the open
    segment, waits for no lock and no database, and never raises: a click the log cannot
    take (it is over `max_bytes`, or the disk refuses it) is dropped and counted in
    `dropped`, for /metrics and its alert."""

    def __init__(self, directory: str, *, interval_s: float, max_bytes: int) -> None:
        self.directory = _log_folder(directory)
        self.interval_s = interval_s
        self.max_bytes = max_bytes
        self.appended = 0  # clicks
        self.dropped = 0  # clicks
        self._fd: int | None = None
        self._path: Path | None = None
        self._room = max_bytes  # bytes the log may still take, as last measured
        self._refused = False  # the disk refused a write: nothing more until the next seal
        self._stopping = asyncio.Event()
        self.seal_and_measure(None)  # the room left, before the first click

    def append(self, click: RawClick) -> None:
        line = encode(click)
        if self._refused or len(line) > self._room:
            self.dropped += 1
            return
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            written = os.write(self._fd, line)  # O_APPEND: one line, whole, at the end
            if written != len(line):  # a full disk took part of it: take that back
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
                raise OSError(f"the disk took {written} of {len(line)} bytes")
        except OSError:
            self._refuse()
            self.dropped += 1
            return
        self._room -= len(line)
        self.appended += 1

    def _open(self) -> None:
        # Creation time first: names sort oldest first, across processes. The random part
        # keeps names (the writers' offsets key) unique across machines sharing a database.
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        # Created under a name writers do not look at, and locked before it gets one they
        # do: a writer never takes a segment its process has yet to lock.
        new = self.directory / f"{name}{NEW}"
        fd = os.open(new, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while open (nobody else has it)
            path = new.rename(self.directory / f"{name}{OPEN}")
        except OSError:
            os.close(fd)
            new.unlink(missing_ok=True)
            raise
        self._fd, self._path = fd, path

    def _refuse(self) -> None:
        if not self._refused:
            log.exception("the click log refuses clicks; they are dropped until it takes them")
        self._refused = True

    async def run(self) -> None:
        """Until stop(): every interval, seal the segment (durable from then on) and
        measure the log against its cap; then seal the last one."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            await asyncio.to_thread(self.seal_and_measure, self._take_segment())

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        """Seal the segment at once (for a process that stops without run())."""
        self.seal_and_measure(self._take_segment())

    def _take_segment(self) -> tuple[int, Path] | None:
        """The open segment, handed over for sealing: the next click starts a new one."""
        if self._fd is None:
            return None
        assert self._path is not None
        segment = self._fd, self._path
        self._fd = self._path = None
        return segment

    def seal_and_measure(self, segment: tuple[int, Path] | None) -> None:
        if segment is not None:
            fd, path = segment
            try:
                os.fsync(fd)
                # Renamed while still locked, so no writer takes it for a dead process's.
                path.rename(path.with_suffix(SEALED))
            except OSError:
                log.exception("sealing click log segment %s failed", path.name)
            finally:
                os.close(fd)
        try:
            size = log_bytes(self.directory)
        except OSError:
            log.exception("measuring the click log failed")
            return
        room = self.max_bytes - size
        if room <= 0 and self._room > 0:
            log.error(
                "the click log holds %d bytes, its cap (TAUTAN_SPOOL_MAX_MB): new clicks are "
                "dropped until the writers catch up",
                size,
            )
        self._room, self._refused = room, False


@dataclass
class Segment:
    """A segment a writer holds (locked), and how far it has read it."""

    path: Path
    file: IO[bytes]
    read_to: int  # bytes: everything before is in the database, or in the batch at hand
    done: bool = False  # read to its end

    @property
    def key(self) -> str:
        return self.path.name.rpartition(".")[0]  # the same, sealed or not


@dataclass
class Batch:
    clicks: list[RawClick] = field(default_factory=list)
    # What to commit with the clicks: where they are in the log (segment key -> bytes of it
    # written once they are; or stream entry id -> its clicks). A batch whose lines were all
    # unreadable has positions and no clicks: it is committed all the same.
    positions: dict[str, int] = field(default_factory=dict)


class LogReader:
    """A writer's side of the log: batches read from the segments it can lock, oldest
    first, each from the position the database holds for it."""

    def __init__(self, directory: str) -> None:
        self.directory = _log_folder(directory)
        self._held: list[Segment] = []
        _remove_unborn_segments(self.directory)

    async def next_batch(self, size: int, position_of: Callable[[str], Awaitable[int]]) -> Batch:
        """Up to `size` clicks: first from the segments held, then from newly claimed ones
        (`position_of(key)` says where the database has a segment written up to)."""
        batch = Batch()
        for segment in self._held:
            if len(batch.clicks) < size and not segment.done:
                self._read(segment, size - len(batch.clicks), batch)
        if len(batch.clicks) < size:
            held = {segment.path.name for segment in self._held}
            for path in segment_paths(self.directory):
                if path.name in held or (file := claim(path)) is None:
                    continue
                segment = Segment(path, file, 0)
                self._held.append(segment)  # let go by release() if what follows fails
                segment.read_to = await position_of(segment.key)
                file.seek(segment.read_to)
                self._read(segment, size - len(batch.clicks), batch)
                if len(batch.clicks) >= size:
                    break
        return batch

    def _read(self, segment: Segment, limit: int, batch: Batch) -> None:
        taken = 0
        while taken < limit:
            line = segment.file.readline()
            if not line.endswith(b"\n"):
                if line:  # the appending process died mid-write: it never answered that one
                    log.warning("click log segment %s ends in a partial line", segment.key)
                segment.read_to += len(line)
                segment.done = True
                break
            segment.read_to += len(line)
            try:
                batch.clicks.append(decode(line))
                taken += 1
            except ValueError:  # a disk error: the line is lost, not the rest
                log.warning("click log segment %s: an unreadable line skipped", segment.key)
        batch.positions[segment.key] = segment.read_to

    def committed(self) -> list[str]:
        """The batch is in the database: segments read to their end are deleted, and
        their keys returned, for their offsets to be forgotten."""
        finished = [segment for segment in self._held if segment.done]
        for segment in finished:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            segment.file.close()
        self._held = [segment for segment in self._held if not segment.done]
        return [segment.key for segment in finished]

    def release(self) -> None:
        """The batch failed: let go of every segment, to be read again from the positions
        the database holds."""
        for segment in self._held:
            segment.file.close()
        self._held = []


def _remove_unborn_segments(directory: Path) -> None:
    """Remove what a process killed while creating a segment left: an empty `.new` file
    (clicks are appended only once it is renamed). One a live process is creating right
    now is a few microseconds old: those of the last minute are left alone."""
    stale = time.time() - UNBORN_AFTER_S
    for path in directory.glob(f"*{NEW}"):
        with contextlib.suppress(OSError):  # renamed or removed meanwhile
            status = path.stat()
            if status.st_size == 0 and status.st_mtime < stale:
                path.unlink()


def claim(path: Path) -> IO[bytes] | None:
    """`path` opened and locked, or None: a serving process still appends to it, another
    writer has it, or it is gone (written, or renamed by sealing)."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    if not path.exists():  # sealed or deleted between the listing and the lock
        file.close()
        return None
    return file


class SegmentSource:
    """A writer's batches from the local log (LogReader), their positions committed in
    `click_log_offsets` with the clicks. A segment's row is forgotten in the transaction
    after the one that wrote it to its end, once the file is deleted."""

    def __init__(self, directory: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.reader = LogReader(directory)
        self.sessionmaker = sessionmaker
        self._finished: list[str] = []  # segments deleted, whose offsets are to be forgotten

    async def next_batch(self, size: int) -> Batch:
        return await self.reader.next_batch(size, self._position_of)

    async def _position_of(self, segment: str) -> int:
        async with self.sessionmaker() as session:
            position = await session.scalar(
                select(LogOffset.position).where(LogOffset.segment == segment)
            )
        return position or 0

    async def save(self, session: AsyncSession, batch: Batch) -> None:
        """In the batch's transaction."""
        if self._finished:  # deleted after an earlier batch: their offsets are no use now
            await session.execute(delete(LogOffset).where(LogOffset.segment.in_(self._finished)))
        insert = upsert_insert(session, LogOffset)
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=["segment"], set_={"position": insert.excluded.position}
            ),
            [{"segment": key, "position": at} for key, at in sorted(batch.positions.items())],
        )

    async def committed(self) -> None:
        """The batch saved is in the database (and with it, the forgetting of `_finished`)."""
        self._finished = self.reader.committed()

    def release(self) -> None:
        self.reader.release()

    async def close(self) -> None:
        """At stop: let go of the segments, and forget the offsets of those deleted since the
        last batch (no next batch will). Best effort, bounded: a database that is down must
        not hold up the stop, and a row left is a few bytes, read by nobody."""
        self.reader.release()
        if not self._finished:
            return
        try:
            async with asyncio.timeout(FORGET_S), self.sessionmaker.begin() as session:
                await session.execute(
                    delete(LogOffset).where(LogOffset.segment.in_(self._finished))
                )
        except Exception:
            log.warning("forgetting the offsets of %d written segments failed", len(self._finished))
        else:
            self._finished = []


def stats_path(spool_dir: str, pid: int) -> Path:
    return Path(spool_dir) / STATS_FOLDER / f"{pid}.json"


def read_stats(spool_dir: str) -> list[dict[str, Any]]:
    """The figures each running writer process last published."""
    found = []
    for path in sorted((Path(spool_dir) / STATS_FOLDER).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):  # gone meanwhile, or being replaced
            found.append(json.loads(path.read_text()))
    return found
