"""The click writer: reads batches from the click log, enriches them, and writes each in one
transaction — click rows, rollups, link counters, and how far into the log it has written.
With ClickHouse as the click store, the transaction keeps the rows for ClickHouse instead of
the click rows and rollups, and they are inserted there once it is committed
(app/clicks/store/clickhouse.py). Runs in writer processes of its own
(app/clicks/writers.py), never beside the redirect."""

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clickhouse.client import ClickHouse
from app.clicks.enrich.enricher import Enricher
from app.clicks.log import Batch, SegmentSource
from app.clicks.raw import RawClick
from app.clicks.rollups import update_rollups
from app.clicks.store.clickhouse import ClickHouseStore
from app.clicks.store.sql import store_for
from app.clicks.stream import StreamSource
from app.clicks.user_agents import UserAgentIds, key_of
from app.clicks.visitors import Salts, mark_new_visitors
from app.config import Settings
from app.core.dialect import lock_writes
from app.core.tables import Link
from app.secret_key import SecretKey

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
# After stop(): how long the writer goes on writing what the log holds. What is left then
# stays in the log for the next start.
DRAIN_S = 8.0
LINKS = Link.__table__
EPOCH, DAY_S = date(1970, 1, 1), 86400
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


class ClickSource(Protocol):
    """Where a writer's batches come from, and how their positions are committed: the
    segment files of TAUTAN_SPOOL_DIR (log.SegmentSource) or the Redis Stream of
    TAUTAN_CLICK_STREAM (stream.StreamSource)."""

    async def next_batch(self, size: int) -> Batch:
        """About `size` clicks, and their positions; none written before."""

    async def save(self, session: AsyncSession, batch: Batch) -> None:
        """Commit `batch`'s positions, in the transaction of its clicks."""

    async def committed(self) -> None:
        """The batch last saved is in the database."""

    def release(self) -> None:
        """The batch failed: its clicks are to be read again."""

    async def close(self) -> None:
        """At stop."""


@dataclass
class WriterStats:
    """What a writer process has done, for /metrics (app/clicks/writers.py publishes it)."""

    clicks_written: int = 0
    bot_clicks: int = 0
    clicks_rejected: int = 0  # refused by the database as data
    writer_errors: int = 0  # batches that failed (and were written again later)
    batches: int = 0
    busy_seconds: float = 0.0  # spent enriching and writing batches


class ClickWriter:
    def __init__(
        self,
        *,
        source: ClickSource,
        sessionmaker: async_sessionmaker[AsyncSession],
        enricher: Enricher,
        secret_key: SecretKey,
        batch: int,
        interval_s: float,
        clickhouse: ClickHouseStore | None = None,
    ) -> None:
        self.source, self.sessionmaker, self.enricher = source, sessionmaker, enricher
        self.clickhouse = clickhouse
        self.batch, self.interval_s = batch, interval_s
        self.salts = Salts(secret_key)
        self.user_agent_ids = UserAgentIds()
        self.stats = WriterStats()
        # The insert into ClickHouse of the batch written last: it runs (chdb and the HTTP
        # client let go of the GIL) while the next batch is read, enriched and committed.
        self._inserting: asyncio.Task[int] | None = None
        self._stop_at: float | None = None
        self._wake = asyncio.Event()

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        secret_key: SecretKey,
        clickhouse: ClickHouse | None = None,
    ) -> "ClickWriter":
        """A writer of the click log the settings name (the Redis Stream of
        TAUTAN_CLICK_STREAM, or else the segments in TAUTAN_SPOOL_DIR), batched as they say,
        into `clickhouse` if given (TAUTAN_CLICKHOUSE_URL), else the SQL database."""
        source: ClickSource
        if settings.click_stream:
            source = StreamSource(settings.click_stream, sessionmaker)
        else:
            source = SegmentSource(settings.spool_dir, sessionmaker)
        return cls(
            source=source,
            sessionmaker=sessionmaker,
            enricher=Enricher(settings),
            secret_key=secret_key,
            batch=settings.flush_batch,
            interval_s=settings.flush_interval_ms / 1000,
            clickhouse=ClickHouseStore(clickhouse) if clickhouse else None,
        )

    async def run(self) -> None:
        """Write what the log holds, batch after batch, until stop() (then for DRAIN_S more
        at most, until the log is empty)."""
        delay = RETRY_FIRST_S
        while self._stop_at is None or time.monotonic() < self._stop_at:
            try:
                batch = await self.source.next_batch(self.batch)
                if batch.positions:
                    await self._write(batch.clicks, batch)
                    await self.source.committed()
                elif self.clickhouse is not None:  # idle: insert what other writers left
                    await self.inserted()
                    await self.clickhouse.insert(self.sessionmaker)
            except Exception:
                self.source.release()  # read again from what the database holds
                self.stats.writer_errors += 1
                log.exception("writing clicks failed; they stay in the log, retry in %.1fs", delay)
                if self._stop_at is not None:
                    break  # no retry when stopping: the log keeps them for the next start
                await self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_FIRST_S
            if len(batch.clicks) < self.batch:  # the log is written to its end
                if self._stop_at is not None:
                    break
                await self._sleep(self.interval_s)
        try:
            await self.inserted()
        except Exception:  # kept in the SQL database, it is inserted after the next start
            log.exception("inserting the last batch into ClickHouse failed")
        await self.source.close()

    def stop(self, drain_s: float = DRAIN_S) -> None:
        self._stop_at = time.monotonic() + drain_s
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, unless stop() is called meanwhile."""
        if self._stop_at is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)

    async def write(self, clicks: list[RawClick], batch: Batch | None = None) -> None:
        """Enrich `clicks`, then write them, with the positions of the log `batch` they
        came in (if any), into ClickHouse too if it is the click store."""
        await self._write(clicks, batch)
        await self.inserted()

    async def _write(self, clicks: list[RawClick], batch: Batch | None) -> None:
        """write(), but the insert into ClickHouse goes on after it returns."""
        started = time.perf_counter()
        await self.write_rows(await self._enrich(clicks), batch)
        self.stats.batches += 1
        self.stats.busy_seconds += time.perf_counter() - started

    async def inserted(self) -> None:
        """Wait for the insert into ClickHouse started last, if any; raise its failure
        (what it did not insert stays kept, for a later round)."""
        if self._inserting is not None:
            inserting, self._inserting = self._inserting, None
            await inserting

    async def write_rows(self, rows: list[dict[str, Any]], batch: Batch | None = None) -> None:
        """Click rows, their rollups and counters, and the positions of `batch`, in one
        transaction (the rows kept for ClickHouse, with it as the click store, and their
        insert there started once committed: see inserted()). Rows the SQL database refuses
        as data (a click of a link deleted meanwhile) are inserted one by one, each refused
        one dropped and counted: one bad click must not hold up the rest for ever."""
        await self.inserted()  # one insert at a time, batches in order; a failure stops here
        kept = None
        async with self.sessionmaker() as session, session.begin():
            await lock_writes(session, alone=False)
            if self.clickhouse is not None:
                rows = await self._of_links_there(session, rows)
                await mark_new_visitors(session, rows)
                kept = await self.clickhouse.keep(session, rows)
            else:
                rows = await self._insert_clicks(session, rows)
                await update_rollups(session, rows)
            if counters := _counters(rows):
                await session.execute(ADD_CLICKS, counters)
            if batch is not None:
                await self.source.save(session, batch)
        self.stats.clicks_written += len(rows)
        self.stats.bot_clicks += sum(row["is_bot"] for row in rows)
        if self.clickhouse is not None:
            self._inserting = asyncio.create_task(self.clickhouse.insert(self.sessionmaker, kept))

    async def _insert_clicks(
        self, session: AsyncSession, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The click rows, inserted in the SQL database: those it takes."""
        try:
            async with session.begin_nested():
                await mark_new_visitors(session, rows)
                await store_for(session).insert_clicks(session, rows)
        except Exception as exc:  # the driver's own, raised past SQLAlchemy
            if not _refused_as_data(exc):
                raise
            return await self._one_by_one(session, rows)
        return rows

    async def _of_links_there(
        self, session: AsyncSession, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The rows whose link is still there: ClickHouse has no foreign key to refuse a
        click of a link erased meanwhile, as the SQL database does."""
        ids = {row["link_id"] for row in rows}
        there = set(await session.scalars(select(LINKS.c.id).where(LINKS.c.id.in_(ids))))
        if len(there) < len(ids):
            taken = [row for row in rows if row["link_id"] in there]
            self.stats.clicks_rejected += len(rows) - len(taken)
            log.warning("%d clicks of erased links dropped", len(rows) - len(taken))
            return taken
        return rows

    async def _one_by_one(
        self, session: AsyncSession, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The rows the database takes, each inserted under a savepoint of its own."""
        taken = []
        # In key order, as the batch's own insert: writers that wait on each other's
        # visitors in opposite orders would deadlock.
        for row in sorted(rows, key=lambda r: (r["link_id"], r["ts"].date(), r["visitor_id"])):
            try:
                async with session.begin_nested():
                    await mark_new_visitors(session, [row])
                    await store_for(session).insert_clicks(session, [row])
            except Exception as exc:
                if not _refused_as_data(exc):
                    raise
                self.stats.clicks_rejected += 1
                log.warning("click for link %s refused by the database: %s", row["link_id"], exc)
            else:
                taken.append(row)
        return taken

    async def _enrich(self, batch: list[RawClick]) -> list[dict[str, Any]]:
        """The rows of the clicks (outside the write transaction: enrichment is CPU work,
        and on SQLite the write transaction holds the database's one write lock)."""
        # One stat() per batch: a new geo database applies from the next batch on.
        self.enricher.reload_geo_if_changed()
        self.enricher.start_batch(len(batch))
        days = [int(raw.ts // DAY_S) for raw in batch]  # UTC days since the epoch
        salts = {
            day: await self.salts.of(self.sessionmaker, EPOCH + timedelta(days=day))
            for day in set(days)
        }
        rows = [self.enricher.enrich(raw, salts[day]) for raw, day in zip(batch, days, strict=True)]
        keys = [key_of(raw.user_agent, raw.client_hints) for raw in batch]
        ids = await self.user_agent_ids.of(self.sessionmaker, set(keys))
        for row, key in zip(rows, keys, strict=True):
            row["user_agent_id"] = ids[key]
        return rows


def _counters(rows: list[dict[str, Any]]) -> list[dict[str, int]]:
    """The links' counter increments: human clicks, their new visitors, bot clicks."""
    human: Counter[int] = Counter()
    visitors: Counter[int] = Counter()
    bots: Counter[int] = Counter()
    for row in rows:
        if row["is_bot"]:
            bots[row["link_id"]] += 1
        else:
            human[row["link_id"]] += 1
            visitors[row["link_id"]] += row["new_visitor"]
    return [
        {"link": link, "human": human[link], "visitors": visitors[link], "bots": bots[link]}
        for link in sorted(human | bots)  # in key order, as every writer: no deadlock
    ]


def _refused_as_data(exc: Exception) -> bool:
    """The database refused the values, not the work: a constraint violation (SQLSTATE
    class 23) or a data exception (class 22), whichever layer raised it."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig  # type: ignore[assignment]
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
        return True
    return str(getattr(exc, "sqlstate", "")).startswith(("22", "23"))
