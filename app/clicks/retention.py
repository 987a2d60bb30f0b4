"""The data lifecycle. Raw clicks older than TAUTAN_RETENTION_DAYS are deleted in short
batches, while the rollups and the links' counters stay: KPIs over whole hours and days
keep their numbers, and what only raw clicks can answer covers the retention window.
On PostgreSQL `clicks` is partitioned by month: months past the cutoff are dropped whole,
and the coming months' partitions are made ahead of time. A link can also be erased with
everything recorded about it."""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import column, delete, func, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.tables import AuditEvent, Click, RollupDay, RollupHour

log = logging.getLogger(__name__)
CLICKS = Click.__table__
WORKSPACES = table("workspaces", column("id"))
BATCH = 5000  # rows deleted per transaction
PAUSE_S = 0.05  # between two batches, so a click writer waiting for SQLite's lock gets it
FIRST_RUN_AFTER_S = 3.0  # after start: the server is up and serving first
EVERY_S = 3600.0
MONTHS_AHEAD = 3  # partitions kept ready beyond the current month
# How long partition DDL may wait behind running queries: while it waits, the click
# writer's inserts queue behind it, so it gives up instead and tries again next pass.
LOCK_TIMEOUT = "2s"
ADVISORY_LOCK = 0x7461_7574_616E  # "tautan": one maintainer at a time, across processes
PARTITION = re.compile(r"clicks_(\d{4})_(\d{2})")
DEFAULT_PARTITION = "clicks_default"


def is_partition(name: str) -> bool:
    """Whether `name` is one of the partitions of `clicks` made here or by the migration."""
    return name == DEFAULT_PARTITION or PARTITION.fullmatch(name) is not None


def cutoff(days: int) -> datetime:
    """Raw clicks before this instant are purged: the UTC midnight `days` days back. Raw
    clicks then cover whole UTC days, and today's (which tell returning visitors) stay."""
    if days < 1:
        raise ValueError(f"the retention must be at least 1 day, not {days}")
    day = (datetime.now(UTC) - timedelta(days=days)).date()
    return datetime.combine(day, time(), UTC)


@dataclass
class Purged:
    cutoff: datetime | None  # None: no retention set, only partitions were looked after
    deleted: int = 0  # clicks deleted batch by batch
    dropped: dict[str, int] = field(default_factory=dict)  # partitions dropped whole: clicks
    created: list[str] = field(default_factory=list)  # partitions made ahead
    busy: bool = False  # another process was doing it
    audit_events: int = 0  # audit log entries past their retention, deleted

    @property
    def clicks(self) -> int:
        return self.deleted + sum(self.dropped.values())


async def maintain(
    engine: AsyncEngine,
    retention_days: int | None,
    *,
    audit_retention_days: int | None = None,
    on_batch: Callable[[int], None] = lambda deleted: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Purged:
    """One pass: on PostgreSQL make the coming months' partitions and drop the months past
    the cutoff, then delete the remaining clicks older than the cutoff, and the audit log's
    entries older than theirs."""
    done = Purged(cutoff(retention_days) if retention_days is not None else None)
    async with _sole_maintainer(engine) as connection:
        if connection is None:
            done.busy = True
            return done
        if await _partitioned(connection):
            done.created = await ensure_partitions(connection)
            if done.cutoff:
                done.dropped = await drop_partitions_before(connection, done.cutoff)
        if done.cutoff:
            done.deleted = await delete_before(connection, done.cutoff, on_batch, should_stop)
        if audit_retention_days is not None:
            old = AuditEvent.ts < cutoff(audit_retention_days)
            done.audit_events = (await connection.execute(delete(AuditEvent).where(old))).rowcount
            await connection.commit()
    return done


@asynccontextmanager
async def _sole_maintainer(engine: AsyncEngine) -> AsyncIterator[AsyncConnection | None]:
    """A connection that, on PostgreSQL, holds a session advisory lock (None when another
    process holds it). SQLite needs none: its write lock serialises the batches."""
    async with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            yield connection
            return
        locked = await connection.scalar(select(func.pg_try_advisory_lock(ADVISORY_LOCK)))
        await connection.commit()
        if not locked:
            yield None
            return
        try:
            yield connection
        finally:
            await connection.rollback()
            await connection.execute(select(func.pg_advisory_unlock(ADVISORY_LOCK)))
            await connection.commit()


async def delete_before(
    connection: AsyncConnection,
    before: datetime,
    on_batch: Callable[[int], None] = lambda deleted: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Delete clicks older than `before`, BATCH at a time, each batch its own transaction.
    Workspace by workspace: the (workspace_id, ts) index finds them without a scan."""
    workspaces = list(await connection.scalars(select(WORKSPACES.c.id)))
    await connection.commit()
    deleted = 0
    for workspace in workspaces:
        expired = (
            select(CLICKS.c.id)
            .where(CLICKS.c.workspace_id == workspace, CLICKS.c.ts < before)
            .limit(BATCH)
        )
        # `ts` again outside: PostgreSQL then looks only in the partitions before the cutoff.
        statement = delete(CLICKS).where(CLICKS.c.ts < before, CLICKS.c.id.in_(expired))
        while not should_stop():
            async with connection.begin():
                count = (await connection.execute(statement)).rowcount
            deleted += count
            on_batch(count)
            if count < BATCH:
                break
            await asyncio.sleep(PAUSE_S)
    return deleted


async def _partitioned(connection: AsyncConnection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    query = text(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = to_regclass('clicks')"
    )
    partitioned = bool(await connection.scalar(query))
    await connection.commit()
    return partitioned


def _month_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


async def _partitions(connection: AsyncConnection) -> list[str]:
    """The partitions attached to `clicks`."""
    query = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'clicks'::regclass ORDER BY c.relname"
    )
    names = list(await connection.scalars(query))
    await connection.commit()
    return names


async def ensure_partitions(connection: AsyncConnection) -> list[str]:
    """Make the partitions of this month and the next MONTHS_AHEAD, and of every month
    with clicks in the DEFAULT partition (those are moved into their month's partition,
    so that DEFAULT stays near empty and past months can be dropped whole). Returns the
    names of the partitions made."""
    months = {_month_of(datetime.now(UTC))}
    for _ in range(MONTHS_AHEAD):
        months.add(_next_month(max(months)))
    in_default = await connection.scalars(
        text(f"SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM {DEFAULT_PARTITION}")
    )
    months |= {month.astimezone(UTC) for month in in_default}
    existing = set(await _partitions(connection))
    made = []
    for month in sorted(months):
        name = f"clicks_{month:%Y_%m}"
        if name in existing:
            continue
        try:
            async with connection.begin():
                await _make_partition(connection, name, month)
        except DBAPIError as exc:  # a lock not had in time: the next pass tries again
            log.warning("could not make partition %s: %s", name, exc.orig)
            continue
        made.append(name)
    return made


async def _make_partition(connection: AsyncConnection, name: str, month: datetime) -> None:
    """Made apart, filled with the month's clicks from DEFAULT, then attached: creating it
    as a partition outright fails while DEFAULT holds clicks of its range."""
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c.name) for c in CLICKS.columns)
    start, end = month.isoformat(), _next_month(month).isoformat()
    await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    # Every other statement on `clicks` waits for the move (new clicks queue up, then go
    # to the spool): one planned with the partitions of before the attach would miss the
    # moved rows, a DELETE leaving them behind, a count leaving them out.
    await connection.execute(text("LOCK TABLE ONLY clicks IN ACCESS EXCLUSIVE MODE"))
    await connection.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"))
    await connection.execute(text(f"CREATE TABLE {name} (LIKE clicks INCLUDING DEFAULTS)"))
    await connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= '{start}' "
            f"AND ts < '{end}' RETURNING {columns}) "
            f"INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"
        )
    )
    # Attaching adds the partitioned primary key, indexes and foreign keys to it.
    await connection.execute(
        text(f"ALTER TABLE clicks ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')")
    )


async def _monthly_tables(connection: AsyncConnection) -> dict[str, bool]:
    """The monthly tables beside `clicks`: name → whether attached to it. One not attached
    is left over from a pass stopped between detaching and dropping it."""
    query = text(
        "SELECT c.relname, EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = c.oid) "
        "FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ '^clicks_[0-9]{4}_[0-9]{2}$' "
        "AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'clicks'::regclass)"
    )
    tables = dict((await connection.execute(query)).all())
    await connection.commit()
    return tables


async def drop_partitions_before(connection: AsyncConnection, before: datetime) -> dict[str, int]:
    """Drop the monthly partitions that end at or before `before`; returns the clicks
    each held. Detached first (a brief lock on `clicks`), then counted and dropped apart."""
    dropped = {}
    for name, attached in sorted((await _monthly_tables(connection)).items()):
        match = PARTITION.fullmatch(name)
        assert match is not None
        month = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
        if _next_month(month) > before:
            continue
        if attached:
            try:
                async with connection.begin():
                    await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                    await connection.execute(text(f"ALTER TABLE clicks DETACH PARTITION {name}"))
            except DBAPIError as exc:  # its clicks are deleted in batches instead
                log.warning("could not detach partition %s: %s", name, exc.orig)
                continue
        async with connection.begin():
            dropped[name] = await connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0
            await connection.execute(text(f"DROP TABLE {name}"))
    return dropped


async def erase_link(session: AsyncSession, link_id: int) -> None:
    """Delete every click and rollup row of a link, in the caller's transaction."""
    for rows in (CLICKS, RollupHour.__table__, RollupDay.__table__):
        await session.execute(delete(rows).where(rows.c.link_id == link_id))


class RetentionTask:
    """Runs `maintain` shortly after start, then every EVERY_S, until `stop()`."""

    def __init__(
        self, engine: AsyncEngine, retention_days: int | None, audit_retention_days: int
    ) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.audit_retention_days = audit_retention_days
        self.passes = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        delay = FIRST_RUN_AFTER_S
        while not await self._stopped_after(delay):
            delay = EVERY_S
            try:
                done = await maintain(
                    self.engine, self.retention_days,
                    audit_retention_days=self.audit_retention_days, should_stop=self._stop.is_set,
                )  # fmt: skip
            except Exception:  # the database may be down: try again next pass
                log.exception("data retention pass failed; next in %.0fs", EVERY_S)
                continue
            self.passes += 1
            if done.clicks or done.created:
                log.info(
                    "retention: %d clicks before %s removed (partitions dropped: %s, made: %s)",
                    done.clicks, done.cutoff, ", ".join(done.dropped) or "none",
                    ", ".join(done.created) or "none",
                )  # fmt: skip

    async def _stopped_after(self, seconds: float) -> bool:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
