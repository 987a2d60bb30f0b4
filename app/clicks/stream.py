"""The click log as a Redis Stream (TAUTAN_CLICK_STREAM), shared by every machine: serving
processes on any number of machines feed it, writer processes on any machine read it.

Serving processes still append each click to their local segment files first (log.py): a
write() before the redirect is answered, whatever Redis is doing. A forwarder task in each
serving process then moves the sealed segments into the stream, oldest first, in entries of
up to CHUNK_BYTES of log lines. Each entry is added in one MULTI/EXEC with a marker of how
far its segment is forwarded, so a forwarder killed at any moment neither skips nor repeats
a line; a segment is deleted once forwarded to its end. While Redis does not answer, or the
stream holds MAX_ENTRIES, clicks wait in the local log and are forwarded in order later.

Writers read through the consumer group `tautan-writers`. A writer commits the ids of the
entries it wrote in the same transaction as their clicks (table `click_stream_entries`),
then acknowledges and deletes them: the stream holds only what is not written yet. An entry
delivered again (its writer died between the commit and the acknowledgement, or took it
from a writer that looked dead) is recognised by its row and not written twice. Entries a
dead writer held are taken over by the others: at once when it was of the same machine,
else once idle for CLAIM_IDLE_MS (XAUTOCLAIM)."""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from pathlib import Path
from typing import IO

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clicks.log import Batch, claim, segment_paths
from app.clicks.raw import decode
from app.core.tables import StreamEntry

log = logging.getLogger(__name__)
STREAM = "tautan:clicks"
GROUP = "tautan-writers"
FORWARDED = "tautan:forwarded:"  # + segment key: bytes of the segment in the stream
# A marker is deleted with its segment; one left by a forwarder killed in between expires.
MARKER_TTL_S = 30 * 24 * 3600
CHUNK_BYTES = 64 * 1024  # of log lines an entry (a few hundred clicks)
CHUNKS_PER_TRIP = 16  # entries added in one MULTI/EXEC
# Past this many entries unwritten, forwarders hold back (clicks wait in the local logs,
# under their own cap) and say so: the stream is never trimmed, so no click is dropped.
MAX_ENTRIES = 100_000
TIMEOUT_S = 5.0  # for one Redis command: a Redis that hangs is a Redis that is down
CLAIM_IDLE_MS = 30_000  # entries a writer has held this long unacknowledged: it is dead
CLAIM_EVERY_S = 5.0
FORGET_WRITER_MS = 24 * 3600 * 1000  # a writer idle this long, holding nothing, leaves the group
# Rows of written entries are kept this long after they are written: whoever may still
# hold an entry in memory (a writer thought dead, whose entries another took over) then
# finds its row, and does not write it twice. A writer gives up a batch it has held for
# HOLD_MAX_S, far less.
KEEP_ROWS_S = 3600.0
HOLD_MAX_S = 600.0
SWEEP_EVERY_S = 60.0

EntryId = tuple[int, int]  # (ms, seq)
ENTRIES = StreamEntry.__table__
HOST = socket.gethostname()  # writers are named HOST:PID:RANDOM in the group


def _gone(consumer: str) -> bool:
    """Whether `consumer` is a writer of this machine that no longer runs."""
    host, pid, _ = (consumer.split(":") + ["", ""])[:3]
    if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, as another user's process
        pass
    return False


def connect(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)


def _entry_id(raw: bytes) -> EntryId:
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq)


class StreamForwarder:
    """The serving process's side: forwards the local log's segments (sealed ones, and
    those a process that died left open) to the stream, every interval."""

    def __init__(self, url: str, directory: str, *, interval_s: float) -> None:
        self.redis = connect(url)
        self.directory = Path(directory)
        self.interval_s = interval_s
        self.forwarded = 0  # clicks
        self.failures = 0  # rounds that Redis did not answer
        # The stream as last seen: its entries, and the age of the oldest (not yet written).
        self.entries = 0
        self.oldest_s = 0.0
        self._failing = self._full = False
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Until stop(); then one last round for what the process logged last, begun after
        stop() (a round under way then may have listed the segments before the last one
        was sealed)."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            if not self._stopping.is_set():
                await self.forward()
        await self.forward()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self.redis.aclose()

    async def forward(self) -> None:
        """One round: every segment this process can claim, each to its end."""
        try:
            await self._measure()
            if self.entries >= MAX_ENTRIES:
                if not self._full:
                    log.error(
                        "the click stream holds %d unwritten entries: forwarding waits for the "
                        "writers, clicks stay in the local log",
                        self.entries,
                    )
                self._full = True
                return
            self._full = False
            for path in segment_paths(self.directory):
                if (file := claim(path)) is not None:
                    with file:
                        await self._forward_segment(path, file)
        except (RedisError, OSError) as exc:
            self.failures += 1
            if not self._failing:
                log.warning(
                    "the click stream is unreachable (%s): clicks wait in the local log", exc
                )
            self._failing = True
        else:
            if self._failing:
                log.info("the click stream answers again: forwarding the local log")
            self._failing = False

    async def _measure(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            entries, oldest = await pipe.xlen(STREAM).xrange(STREAM, count=1).execute()
        self.entries = entries
        self.oldest_s = max(0.0, time.time() - _entry_id(oldest[0][0])[0] / 1000) if oldest else 0.0

    async def _forward_segment(self, path: Path, file: IO[bytes]) -> None:
        marker = FORWARDED + path.name.rpartition(".")[0]
        position = int(await self.redis.get(marker) or 0)
        file.seek(position)
        # File work in a thread: the serving event loop answers redirects meanwhile.
        while chunks := await asyncio.to_thread(_read_chunks, file):
            pipe = self.redis.pipeline(transaction=True)
            for chunk in chunks:
                position += len(chunk)
                pipe.xadd(STREAM, {"clicks": chunk})
                pipe.set(marker, position, ex=MARKER_TTL_S)
            await pipe.execute()
            self.forwarded += sum(chunk.count(b"\n") for chunk in chunks)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await self.redis.delete(marker)


def _read_chunks(file: IO[bytes]) -> list[bytes]:
    """Up to CHUNKS_PER_TRIP chunks of whole lines from where `file` stands."""
    chunks = []
    for _ in range(CHUNKS_PER_TRIP):
        lines = file.readlines(CHUNK_BYTES)
        if lines and not lines[-1].endswith(b"\n"):
            lines.pop()  # its process died mid-write: that click was never answered
        if not lines:
            break
        chunks.append(b"".join(lines))
    return chunks


class StreamSource:
    """A writer's batches from the stream (see writer.ClickSource)."""

    def __init__(self, url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.redis = connect(url)
        self.sessionmaker = sessionmaker
        self.consumer = f"{HOST}:{os.getpid()}:{secrets.token_hex(3)}"
        self._read_own = True  # entries this writer was handed and has not acknowledged
        self._claim_at = 0.0  # monotonic: when to look for a dead writer's entries next
        self._sweep_at = 0.0  # monotonic: when to delete the rows of old entries next
        self._read_at = 0.0  # monotonic: when the batch at hand was read
        self._saved: list[bytes] = []  # the entries of the batch last saved

    async def next_batch(self, size: int) -> Batch:
        if time.monotonic() >= self._sweep_at:
            await self._sweep()
        self._read_at = time.monotonic()
        # Entries handed out before: this writer's own (of a batch that failed), and now
        # and then those a dead writer held. Some may be written already.
        again: dict[bytes, dict[bytes, bytes] | None] = {}
        if self._read_own:
            again.update(await self._read("0", size))
            self._read_own = False
        if time.monotonic() >= self._claim_at:
            self._claim_at = time.monotonic() + CLAIM_EVERY_S
            again.update(await self._claim_abandoned(size))
        written = await self._written([_entry_id(entry) for entry in again])
        await self._acknowledge([entry for entry in again if _entry_id(entry) in written])
        batch = Batch()
        for entry, fields in again.items():
            if _entry_id(entry) not in written:
                self._add(batch, entry, fields)
        while len(batch.clicks) < size and (fresh := await self._read(">", 1)):
            for entry, fields in fresh:
                self._add(batch, entry, fields)
        return batch

    async def _claim_abandoned(self, count: int) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """Entries other writers were handed and did not acknowledge: at once those of a
        writer of this machine that is gone, after CLAIM_IDLE_MS those of any writer."""
        claimed = []
        for consumer in await self.redis.xinfo_consumers(STREAM, GROUP):
            name, gone = consumer["name"], _gone(consumer["name"].decode())
            if consumer["pending"] and gone:
                held = await self.redis.xpending_range(STREAM, GROUP, "-", "+", count, name)
                ids = [entry["message_id"] for entry in held]
                claimed += await self.redis.xclaim(STREAM, GROUP, self.consumer, 0, ids)
            elif not consumer["pending"] and consumer["idle"] > FORGET_WRITER_MS:
                # Not as soon as it looks gone: a writer of another PID namespace with this
                # host's name looks gone, and deleting it as it reads would drop its batch.
                await self.redis.xgroup_delconsumer(STREAM, GROUP, name)
        _, idle, _ = await self.redis.xautoclaim(
            STREAM, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=count
        )
        return claimed + idle

    async def _read(self, start: str, count: int) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """Entries handed to this writer: new ones (`>`) or those it holds (`0`)."""
        got = await self.redis.xreadgroup(GROUP, self.consumer, {STREAM: start}, count=count)
        return got[0][1] if got else []

    def _add(self, batch: Batch, entry: bytes, fields: dict[bytes, bytes] | None) -> None:
        lines = (fields or {}).get(b"clicks", b"").split(b"\n")[:-1]
        for line in lines:
            try:
                batch.clicks.append(decode(line))
            except ValueError:
                log.warning("click stream entry %s: an unreadable line skipped", entry.decode())
        batch.positions[entry.decode()] = len(lines)

    async def _written(self, entries: list[EntryId]) -> set[EntryId]:
        """Those of `entries` whose clicks are in the database."""
        if not entries:
            return set()
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(ENTRIES.c.ms, ENTRIES.c.seq).where(
                    ENTRIES.c.ms.in_({ms for ms, _ in entries})
                )
            )
        return set(entries) & {(ms, seq) for ms, seq in rows}

    async def save(self, session: AsyncSession, batch: Batch) -> None:
        """In the batch's transaction. A plain insert: should another writer have taken one
        of these entries and written it meanwhile, it fails, and the batch is read again."""
        if time.monotonic() - self._read_at > HOLD_MAX_S:
            # Others may have taken these entries long ago, and their rows be swept soon.
            raise TimeoutError(f"a batch of the click stream held over {HOLD_MAX_S:.0f}s")
        self._saved = [entry.encode() for entry in batch.positions]
        now_ms = int(time.time() * 1000)
        rows = [
            {"ms": ms, "seq": seq, "written_ms": now_ms} for ms, seq in map(_entry_id, self._saved)
        ]
        await session.execute(insert(ENTRIES), rows)

    async def committed(self) -> None:
        await self._acknowledge(self._saved)

    async def _acknowledge(self, entries: list[bytes]) -> None:
        """Entries written: acknowledged and deleted from the stream. Should Redis not
        answer, they are read again later, found written, and acknowledged then."""
        if not entries:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.xack(STREAM, GROUP, *entries).xdel(STREAM, *entries).execute()
        except RedisError as exc:
            log.warning("acknowledging %d written stream entries failed (%s)", len(entries), exc)
            self._read_own = True

    def release(self) -> None:
        self._read_own = True  # the entries of the batch are still this writer's

    async def close(self) -> None:
        await self.redis.aclose()

    async def _sweep(self) -> None:
        """Make the group (reading the stream from its start) if it is new, and delete the
        rows written over KEEP_ROWS_S ago of entries that no writer holds."""
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        pending = await self.redis.xpending(STREAM, GROUP)
        before_ms = int((time.time() - KEEP_ROWS_S) * 1000)
        older_ms = before_ms  # an entry is added before it is written: the key's range
        if pending["pending"]:
            older_ms = min(before_ms, _entry_id(pending["min"])[0])
        async with self.sessionmaker.begin() as session:
            await session.execute(
                delete(ENTRIES).where(ENTRIES.c.ms < older_ms, ENTRIES.c.written_ms < before_ms)
            )
        self._sweep_at = time.monotonic() + SWEEP_EVERY_S
