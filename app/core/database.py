"""Engine, sessions and the declarative base."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# How long a SQLite writer waits for the lock before its write fails (the click writer
# then spools the batch).
SQLITE_BUSY_TIMEOUT_S = 5


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets redirects read while the writer commits; NORMAL is durable across process
    # crashes and several times faster than FULL (measured: docs/design.md).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # SQLAlchemy emits BEGIN itself (below): the driver's own transaction handling breaks
    # SAVEPOINT, which bulk creation relies on.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front, so a transaction that reads and then writes
    # waits its turn (busy timeout) instead of failing when another writer got in between.
    # Read-only sessions take no lock: in WAL mode they read beside the writer.
    read_only = connection.get_execution_options().get("read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    if read_only:
        engine = engine.execution_options(read_only=True)
    return async_sessionmaker(engine, expire_on_commit=False)


# Parameters SQLAlchemy prepares in one go: preparing costs event-loop time, and the
# redirects waiting on the loop should not wait for a whole batch's worth of it.
EXECUTEMANY_SLICE = 250


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """INSERT into `table` in the session's dialect, which offers ON CONFLICT clauses
    (`on_conflict_do_nothing`, `on_conflict_do_update`) on both databases."""
    dialect = session.get_bind().dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


async def execute_many(session: AsyncSession, statement: Any, rows: list[dict[str, Any]]) -> None:
    """`statement` once per row, as executemany calls of EXECUTEMANY_SLICE rows each."""
    for start in range(0, len(rows), EXECUTEMANY_SLICE):
        await session.execute(statement, rows[start : start + EXECUTEMANY_SLICE])


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (e.g. cache invalidation)."""
    session.info.setdefault("after_commit", []).append(callback)
