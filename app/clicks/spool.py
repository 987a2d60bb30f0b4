"""Where raw clicks wait while the database cannot take them: append-only JSON-lines
files, fsynced per batch, replayed oldest first. Each process appends to a file of its
own, held under an exclusive lock; a file nobody holds (a finished one, or one left by a
crashed process) can be replayed by any process, and only one takes it."""

import contextlib
import dataclasses
import fcntl
import json
import logging
import operator
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from app.clicks.queue import RawClick

log = logging.getLogger(__name__)
FIELDS = [f.name for f in dataclasses.fields(RawClick)]
_as_row = operator.attrgetter(*FIELDS)  # much cheaper than dataclasses.astuple
# One file is replayed in one transaction; rotating keeps that transaction bounded.
MAX_CLICKS_PER_FILE = 10_000
COUNT_CHUNK = 1 << 20  # bytes read at a time when counting a file's clicks


class PartlyWritten(Exception):
    """The database failed after the first `written` clicks of a batch were committed (the
    click writer commits click by click when it must): only the rest may be written again."""

    def __init__(self, written: int) -> None:
        super().__init__(f"the first {written} clicks were written, the rest were not")
        self.written = written


class Spool:
    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        # Clicks hold addresses and User-Agents: the folder and its files are the owner's alone.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._file: IO[bytes] | None = None
        self._lines = 0
        self._counted: dict[Path, tuple[int, int]] = {}  # file -> (bytes read, clicks in them)
        self._skipped: set[Path] = set()  # unreadable files that could not be moved aside

    def append(self, clicks: list[RawClick], *, sync: bool = True) -> None:
        """Write all of `clicks` or, raising OSError, none of them (the caller still holds
        them); with `sync=False` they reach the disk for certain only at `sync()`."""
        if self._file is None or self._lines >= MAX_CLICKS_PER_FILE:
            self._open_new()
        assert self._file is not None
        data = "".join([json.dumps(_as_row(c)) + "\n" for c in clicks]).encode()
        fd = self._file.fileno()
        end = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):  # a full disk may take part of it, then refuse
                written += os.write(fd, data[written:])
            if sync:
                os.fsync(fd)
        except OSError:
            self._take_back(end)
            raise
        self._lines += len(clicks)

    def _take_back(self, end: int) -> None:
        """After a failed append, cut the file back to `end`. The next append starts a new
        file, in case cutting failed too: a cut line at the end is skipped on replay, but
        glued to the next one it would spoil that one too."""
        assert self._file is not None
        file, self._file = self._file, None
        with contextlib.suppress(OSError), file:
            os.ftruncate(file.fileno(), end)
            if end == 0:  # a new file: gone, so a full disk does not leave one per try
                os.unlink(file.name)

    def sync(self) -> None:
        """Make what was appended durable."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def _open_new(self) -> None:
        self.close()
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}.jsonl"
        self._file = open(path, "ab", buffering=0, opener=_owner_only)  # noqa: SIM115
        fcntl.flock(self._file, fcntl.LOCK_EX)
        self._lines = 0

    def close(self) -> None:
        """Stop appending to the current file, which makes it replayable."""
        if self._file is not None:
            file, self._file = self._file, None
            with file:  # closing releases the lock, even when the sync fails
                os.fsync(file.fileno())

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.jsonl") if p not in self._skipped)

    def pending(self) -> bool:
        return any(p not in self._skipped for p in self.directory.glob("*.jsonl"))

    def size(self) -> int:
        """Clicks waiting in the spool, for /readyz and /metrics. Each file's bytes are
        counted once: a probe during a long outage reads only what was appended since."""
        counted = {}
        for path in self.files():
            with contextlib.suppress(OSError):  # replayed meanwhile, or unreadable
                counted[path] = self._count(path)
        self._counted = counted
        return sum(clicks for _, clicks in counted.values())

    def _count(self, path: Path) -> tuple[int, int]:
        read, clicks = self._counted.get(path, (0, 0))
        size = path.stat().st_size
        if size == read:
            return read, clicks
        if size < read:  # rewritten shorter by a partial replay
            read, clicks = 0, 0
        with path.open("rb") as file:
            file.seek(read)
            while chunk := file.read(COUNT_CHUNK):
                read += len(chunk)
                clicks += chunk.count(b"\n")
        return read, clicks

    async def replay(
        self,
        write: Callable[[list[RawClick]], Awaitable[None]],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Hand every unlocked file to `write`, oldest first, deleting each once written,
        until `should_stop()`. Stops at the first failure of `write`, which propagates; a
        file that cannot be read is moved aside. Returns the clicks replayed."""
        self.close()
        replayed = 0
        for path in self.files():
            if should_stop():
                break
            file = self._claim(path)
            if file is None:
                continue
            with file:
                try:
                    clicks = _read(file, path)
                except OSError as exc:
                    self._set_aside(path, exc)
                    continue
                if clicks:
                    try:
                        await write(clicks)
                    except PartlyWritten as exc:
                        _keep_only(file, clicks[exc.written :])  # never write a click twice
                        raise
                self._remove(path, file)
                replayed += len(clicks)
        return replayed

    def _claim(self, path: Path) -> IO[str] | None:
        """`path` opened and locked for replay; None when another process has it, or it
        cannot be read."""
        try:
            # A stray byte (a disk error) spoils a line, not the file: the line is kept as
            # far as it reads, or skipped with the lines that do not.
            file = path.open("r+", encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._set_aside(path, exc)
            return None
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return None  # another process is appending to it or replaying it
        except OSError as exc:
            file.close()
            self._set_aside(path, exc)
            return None
        if not path.exists():  # replayed by another process before we locked it
            file.close()
            return None
        return file

    def _remove(self, path: Path, file: IO[str]) -> None:
        """Delete a replayed file; one that will not go is emptied instead, so its clicks,
        now in the database, are never written twice."""
        try:
            path.unlink()
        except OSError as exc:
            file.truncate(0)
            self._set_aside(path, exc)

    def _set_aside(self, path: Path, error: OSError) -> None:
        """A file replay cannot handle stops nothing: it is renamed *.bad for someone to
        look at, and the other files and new clicks go on."""
        aside = path.with_suffix(".bad")
        try:
            path.rename(aside)
        except OSError:
            self._skipped.add(path)  # it cannot even be moved: skip it until a restart
            log.error("spool file %s cannot be replayed (%s); skipped", path, error)
        else:
            log.error("spool file %s cannot be replayed (%s); moved to %s", path, error, aside)


def _owner_only(path: str, flags: int) -> int:
    """Opens a file as open() does, creating it readable by its owner only (0600)."""
    return os.open(path, flags, 0o600)


def _read(file: IO[str], path: Path) -> list[RawClick]:
    clicks = []
    unreadable = 0
    for number, line in enumerate(file, 1):
        try:
            # By position: a line spooled before a field was added lacks that last field.
            clicks.append(RawClick(*json.loads(line)))
        except (ValueError, TypeError):
            # A line cut short by a crash mid-write: the rest of the file is still good.
            if not unreadable:  # one warning a file, however many lines are spoilt
                log.warning("spool %s line %d is unreadable and skipped", path.name, number)
            unreadable += 1
    if unreadable > 1:
        log.warning("spool %s: %d unreadable lines skipped in all", path.name, unreadable)
    return clicks


def _keep_only(file: IO[str], clicks: list[RawClick]) -> None:
    """Rewrite the file being replayed with just `clicks`: the others are in the database."""
    file.seek(0)
    file.truncate()
    file.writelines(json.dumps(_as_row(c)) + "\n" for c in clicks)
    file.flush()
    os.fsync(file.fileno())
