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
from app.clicks.spool import Spool
from app.clicks.visitors import Salts, mark_new_visitors
from app.db import execute_many
from app.links.models import Link
from app.metrics import Metrics
from app.secret_key import SecretKey

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
ENRICH_SLICE = 100  # clicks enriched between two turns of the event loop
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
        self._stopping = False
        self._retry_at = 0.0  # while the database is failing: when to try it again
        self._retry_delay = RETRY_FIRST_S

    def record(self, click: RawClick) -> None:
        """Called by the redirect for each click: never blocks, never drops."""
        self.metrics.clicks_enqueued += 1
        if not self.queue.put(click):
            # Overloaded or stalled writer: what waits goes to disk (durable at the next
            # flush), oldest first. The spool is replayed before the queue is written, so
            # the clicks keep the order they came in.
            waiting = [*self.queue.take(len(self.queue)), click]
            self.spool.append(waiting, sync=False)
            self.metrics.clicks_spooled += len(waiting)

    async def run(self) -> None:
        """Until stop(): flush, then on stop drain what is left."""
        await self._flush([])  # a spool left by an earlier run goes first
        while not self._stopping:
            await self.queue.wait(self.interval_s)
            self.spool.sync()
            await self._flush(self.queue.take(self.queue.batch))
        while len(self.queue):
            await self._flush(self.queue.take(self.queue.batch))
        self.spool.close()

    def stop(self) -> None:
        self._stopping = True
        self.queue.wake()

    async def _flush(self, batch: list[RawClick]) -> None:
        if time.monotonic() < self._retry_at:
            self._to_spool(batch)
            return
        try:
            if self.spool.pending():
                replayed = await self.spool.replay(self.write)
                if replayed:
                    log.info("replayed %d spooled clicks", replayed)
            if batch:
                await self.write(batch)
        except Exception:
            self.metrics.writer_errors += 1
            log.exception("writing clicks failed; spooling, retry in %.1fs", self._retry_delay)
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_S)
            self._to_spool(batch)
            return
        self._retry_at, self._retry_delay = 0.0, RETRY_FIRST_S

    def _to_spool(self, batch: list[RawClick]) -> None:
        if batch:
            self.spool.append(batch)
            self.metrics.clicks_spooled += len(batch)

    async def write(self, batch: list[RawClick]) -> None:
        """Enrich `batch`, then write it. A batch the database refuses as data (a click of a
        link deleted meanwhile, say) is written click by click, and the refused clicks are
        dropped and counted: one bad click must not hold up the rest for ever."""
        started = time.perf_counter()
        await self.write_rows(await self._enrich(batch))
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    async def write_rows(self, rows: list[dict[str, Any]]) -> None:
        try:
            await self._insert(rows)
        except DBAPIError as exc:
            if not _refused_as_data(exc):
                raise
            for row in rows:
                try:
                    await self._insert([row])
                except DBAPIError as exc:
                    if not _refused_as_data(exc):
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
                for link in human | bots
            ]
            await session.execute(ADD_CLICKS, counters)
        self.metrics.clicks_written += len(rows)
        self.metrics.bot_clicks += sum(bots.values())

    async def _enrich(self, batch: list[RawClick]) -> list[dict[str, Any]]:
        """Outside the write transaction: enrichment is CPU work, and on SQLite the write
        transaction holds the database's one write lock."""
        # One stat() per batch: a new geo database applies from the next batch on.
        self.enricher.reload_geo_if_changed()
        days = [datetime.fromtimestamp(raw.ts, UTC).date() for raw in batch]
        salts = {day: await self.salts.of(self.sessionmaker, day) for day in set(days)}
        rows = []
        for start in range(0, len(batch), ENRICH_SLICE):
            for raw, day in zip(
                batch[start : start + ENRICH_SLICE], days[start : start + ENRICH_SLICE], strict=True
            ):
                row = self.enricher.enrich(raw, salts[day])
                if row is not None:
                    rows.append(row)
            await asyncio.sleep(0)  # let waiting redirects run between slices
        return rows


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
