"""What SQLite and PostgreSQL do differently, in one place: upserts, epoch seconds, and the
lock that click writers share and re-enrichment takes alone."""

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

# PostgreSQL advisory lock taken shared by each click writer's batch (writers do not wait
# on each other) and alone by `tautan reenrich` while it counts a day's rollups again.
WRITES_LOCK = 0x7461_7574_7669


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """INSERT into `table` in the session's dialect, which offers ON CONFLICT clauses
    (`on_conflict_do_nothing`, `on_conflict_do_update`) on both databases."""
    return (postgresql_insert if is_postgresql(session) else sqlite_insert)(table)


def epoch_seconds(session: AsyncSession, column: Any) -> ColumnElement[int]:
    """Whole seconds since 1970 of a timestamp column."""
    if is_postgresql(session):
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), Integer)


async def lock_writes(session: AsyncSession, *, alone: bool) -> None:
    """Take the click writers' lock for the transaction: shared among writers, or `alone`.
    On SQLite nothing to do: its write lock (BEGIN IMMEDIATE) serialises writes already."""
    if is_postgresql(session):
        lock = func.pg_advisory_xact_lock if alone else func.pg_advisory_xact_lock_shared
        await session.execute(select(lock(WRITES_LOCK)))
