"""The click writer: one task per process that drains the queue every flush interval (or
full batch), enriches the clicks and writes them in one transaction. When the database
fails, clicks go to the spool and are replayed, in order, once it answers again."""

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clicks.enrich import Enricher
from app.clicks.models import Click
from app.clicks.queue import ClickQueue, RawClick
from app.clicks.rollups import update_rollups
from app.clicks.spool import PartlyWritten, Spool
from app.clicks.user_agents import UserAgentIds, key_of
from app.clicks.visitors import Salts, mark_new_visitors
from app.db import execute_many
from app.links.models import Link
from app.metrics import Metrics
from app.secret_key import SecretKey

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
ENRICH_SLICE_S = 0.005  # enrichment time between two turns of the event loop
LINKS = Link.__table__
CLICKS = Click.__table__
ADD_CLICKS = (
    update(LINKS)
    .where(LINKS.c.id == bindparam("link"))
    .values(
        clicks=LINKS.c.clicks + bindparam("human"),
        unique_visitors=LINKS.c.unique_visitors + bindparam("visitors"),
        bot_clicks=LINKS.c.bot_clicks + bindparam("bots"),
        updated_at=LINKS.c.updated_at,  # clicks are no edit of the link
    )
)


class ClickWriter:
    def __init__(
        self,
        *,
        queue: ClickQueue,
        spool: Spool,
        sessionmaker: async_sessionmaker[AsyncSession],
        enricher: Enricher,
        metrics: Metrics,
        interval_s: float,
        secret_key: SecretKey,
    ) -> None:
        self.queue, self.spool, self.sessionmaker = queue, spool, sessionmaker
        self.enricher, self.metrics = enricher, metrics
        self.interval_s = interval_s
        self.salts = Salts(secret_key)
        self.user_agent_ids = UserAgentIds()
        self._stopping = False
        self._retry_at = 0.0  # while the database is failing: when to try it again
        self._retry_delay = RETRY_FIRST_S
        # Taken from the queue but in neither the database nor the spool (both failing):
        # older than anything queued, so written or spooled first.
        self._unsaved: list[RawClick] = []
        self._spool_failing = False

    def record(self, click: RawClick) -> None:
        """Called by the redirect for each click: never blocks, never drops."""
        self.metrics.clicks_enqueued += 1
        if not self.queue.put(click):
            if self._spool_failing:  # the writer tries the disk again; a redirect must not
                self._unsaved.append(click)
                return
            # Overloaded or stalled writer: what waits goes to disk (durable at the next
            # flush), oldest first. The spool is replayed before the queue is written, so
            # the clicks keep the order they came in.
            waiting = [*self._unsaved, *self.queue.take(len(self.queue)), click]
            self._unsaved = []
            self._to_spool(waiting, sync=False)

    async def run(self) -> None:
        """Until stop(): flush, then on stop drain what is left."""
        await self._flush([])  # a spool left by an earlier run goes first
        while not self._stopping:
            await self.queue.wait(self.interval_s)
            self._sync_spool()
            await self._flush(self._next_batch())
        while len(self.queue) or self._unsaved:
            await self._flush(self._next_batch())
            if self._unsaved:  # neither the database nor the disk takes them: wait for one
                await asyncio.sleep(self.interval_s)
        try:
            self.spool.close()
        except OSError:
            log.exception("closing the spool failed")

    def stop(self) -> None:
        self._stopping = True
        self.queue.wake()

    def _next_batch(self) -> list[RawClick]:
        size = self.queue.batch
        batch, self._unsaved = self._unsaved[:size], self._unsaved[size:]
        return batch + self.queue.take(size - len(batch))

    async def _flush(self, batch: list[RawClick]) -> None:
        if time.monotonic() >= self._retry_at:
            batch = await self._write_after_spool(batch)
        self._to_spool(batch)

    async def _write_after_spool(self, batch: list[RawClick]) -> list[RawClick]:
        """Replay the spool (up to a stop), then write `batch`; returns what of `batch` the
        database did not take."""
        try:
            if self.spool.pending():
                replayed = await self.spool.replay(self.write, lambda: self._stopping)
                if replayed:
                    log.info("replayed %d spooled clicks", replayed)
        except Exception:
            self._database_failed()
            return batch
        if self._stopping and self.spool.pending():  # the replay was cut short: after it
            return batch
        try:
            if batch:
                await self.write(batch)
        except Exception as exc:
            self._database_failed()
            return batch[exc.written :] if isinstance(exc, PartlyWritten) else batch
        self._retry_at, self._retry_delay = 0.0, RETRY_FIRST_S
        return []

    def _database_failed(self) -> None:
        self.metrics.writer_errors += 1
        log.exception("writing clicks failed; spooling, retry in %.1fs", self._retry_delay)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_S)

    def _to_spool(self, batch: list[RawClick], *, sync: bool = True) -> None:
        """Spool `batch`; when the disk refuses it too, keep it in memory, to be written or
        spooled at the next flush (trying costs one failed open or write)."""
        if not batch:
            return
        try:
            self.spool.append(batch, sync=sync)
        except OSError:
            self.metrics.writer_errors += 1
            self._unsaved = [*batch, *self._unsaved]
            if not self._spool_failing:  # once, not at every flush while it lasts
                log.exception("spooling clicks failed; keeping them in memory")
            self._spool_failing = True
            return
        if self._spool_failing:
            log.warning("spooling works again")
        self._spool_failing = False
        self.metrics.clicks_spooled += len(batch)

    def _sync_spool(self) -> None:
        try:
            self.spool.sync()
        except OSError:
            # What record() appended is with the kernel, which writes it when it can.
            log.exception("syncing the spool failed")

    async def write(self, batch: list[RawClick]) -> None:
        """Enrich `batch`, then write it. A batch the database refuses as data (a click of a
        link deleted meanwhile, say) is written click by click, and the refused clicks are
        dropped and counted: one bad click must not hold up the rest for ever. When the
        database fails midway through that, PartlyWritten says how many are written."""
        started = time.perf_counter()
        rows, positions = await self._enrich(batch)
        keys = [key_of(batch[p].user_agent, batch[p].client_hints) for p in positions]
        ids = await self.user_agent_ids.of(self.sessionmaker, set(keys))
        for row, key in zip(rows, keys, strict=True):
            row["user_agent_id"] = ids[key]
        try:
            await self.write_rows(rows)
        except PartlyWritten as exc:
            # In clicks of `batch`: those before the first row not written are written,
            # or were left out by enrichment (and would be again).
            raise PartlyWritten(positions[exc.written]) from exc.__cause__
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    async def write_rows(self, rows: list[dict[str, Any]]) -> None:
        try:
            await self._insert(rows)
        except DBAPIError as exc:
            if not _refused_as_data(exc):
                raise
            for written, row in enumerate(rows):
                try:
                    await self._insert([row])
                except Exception as exc:  # a lost connection is an OSError, say
                    if not (isinstance(exc, DBAPIError) and _refused_as_data(exc)):
                        if written:  # those are committed: they must not be written twice
                            raise PartlyWritten(written) from exc
                        raise
                    self.metrics.clicks_rejected += 1
                    log.warning(
                        "click for link %s refused by the database: %s", row["link_id"], exc.orig
                    )

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert click rows, and update the rollups and link counters, in one transaction."""
        if not rows:
            return
        async with self.sessionmaker() as session, session.begin():
            await mark_new_visitors(session, rows)
            await execute_many(session, CLICKS.insert(), rows)
            await update_rollups(session, rows)
            human, visitors, bots = _counts_per_link(rows)
            counters = [
                {"link": link, "human": human[link], "visitors": visitors[link], "bots": bots[link]}
                for link in sorted(human | bots)  # in key order, as every writer: no deadlock
            ]
            await session.execute(ADD_CLICKS, counters)
        self.metrics.clicks_written += len(rows)
        self.metrics.bot_clicks += sum(bots.values())

    async def _enrich(self, batch: list[RawClick]) -> tuple[list[dict[str, Any]], list[int]]:
        """The rows of the clicks to record, and the position of each in `batch`. Outside
        the write transaction: enrichment is CPU work, and on SQLite the write transaction
        holds the database's one write lock."""
        # One stat() per batch: a new geo database applies from the next batch on.
        self.enricher.reload_geo_if_changed()
        self.enricher.start_batch()
        days = [datetime.fromtimestamp(raw.ts, UTC).date() for raw in batch]
        salts = {day: await self.salts.of(self.sessionmaker, day) for day in set(days)}
        rows, positions = [], []
        slice_ends = time.perf_counter() + ENRICH_SLICE_S
        for position, raw in enumerate(batch):
            row = self.enricher.enrich(raw, salts[days[position]])
            if row is not None:
                rows.append(row)
                positions.append(position)
            if time.perf_counter() > slice_ends:
                await asyncio.sleep(0)  # let waiting redirects run between slices
                slice_ends = time.perf_counter() + ENRICH_SLICE_S
        return rows, positions


def _counts_per_link(rows: list[dict[str, Any]]) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """Human clicks, their new visitors, and bot clicks, per link id."""
    human: Counter[int] = Counter()
    visitors: Counter[int] = Counter()
    bots: Counter[int] = Counter()
    for row in rows:
        if row["is_bot"]:
            bots[row["link_id"]] += 1
        else:
            human[row["link_id"]] += 1
            visitors[row["link_id"]] += row["new_visitor"]
    return human, visitors, bots


def _refused_as_data(exc: DBAPIError) -> bool:
    """The database refused the values, not the work: a constraint violation (SQLSTATE
    class 23) or a data exception (class 22), which asyncpg reports as a plain DBAPIError."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return str(getattr(exc.orig, "sqlstate", "")).startswith(("22", "23"))
