"""Where raw clicks wait while the database cannot take them: append-only JSON-lines
files, fsynced per batch, replayed oldest first. Each process appends to a file of its
own, held under an exclusive lock; a file nobody holds (a finished one, or one left by a
crashed process) can be replayed by any process, and only one takes it."""

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


class Spool:
    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = None
        self._lines = 0

    def append(self, clicks: list[RawClick], *, sync: bool = True) -> None:
        """Write `clicks`; with `sync=False` they may wait in a buffer until `sync()`."""
        if self._file is None or self._lines >= MAX_CLICKS_PER_FILE:
            self._open_new()
        assert self._file is not None
        self._file.writelines(json.dumps(_as_row(c)) + "\n" for c in clicks)
        self._lines += len(clicks)
        if sync:
            self.sync()

    def sync(self) -> None:
        """Make what was appended durable."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def _open_new(self) -> None:
        self.close()
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}.jsonl"
        self._file = path.open("a", encoding="utf-8")
        fcntl.flock(self._file, fcntl.LOCK_EX)
        self._lines = 0

    def close(self) -> None:
        """Stop appending to the current file, which makes it replayable."""
        if self._file is not None:
            self.sync()
            self._file.close()  # closing releases the lock
            self._file = None

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl"))

    def pending(self) -> bool:
        return any(True for _ in self.directory.glob("*.jsonl"))

    def size(self) -> int:
        """Clicks waiting in the spool, for /readyz and /metrics."""
        total = 0
        for path in self.files():
            try:
                with path.open("rb") as file:
                    total += sum(1 for _ in file)
            except FileNotFoundError:  # replayed meanwhile
                pass
        return total

    async def replay(self, write: Callable[[list[RawClick]], Awaitable[None]]) -> int:
        """Hand every unlocked file to `write`, oldest first, deleting each once written.
        Stops at the first failure, which propagates; returns the clicks replayed."""
        self.close()
        replayed = 0
        for path in self.files():
            try:
                file = path.open("r+", encoding="utf-8")
            except FileNotFoundError:
                continue
            with file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process is appending to it or replaying it
                if not path.exists():  # replayed by another process before we locked it
                    continue
                clicks = list(_read(file, path))
                if clicks:
                    await write(clicks)
                path.unlink()
                replayed += len(clicks)
        return replayed


def _read(file: IO[str], path: Path) -> list[RawClick]:
    clicks = []
    for number, line in enumerate(file, 1):
        try:
            clicks.append(RawClick(**dict(zip(FIELDS, json.loads(line), strict=True))))
        except (ValueError, TypeError):
            # A line cut short by a crash mid-write: the rest of the file is still good.
            log.warning("spool %s line %d is unreadable and skipped", path.name, number)
    return clicks
