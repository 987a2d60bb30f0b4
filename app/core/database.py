"""Engines, sessions (SQLite's pragmas and locking), and the SQL both databases share."""

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
K = TypeVar("K")

# How long a SQLite writer waits for the lock before its write fails (a click writer then
# tries the batch again).
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
    # Deferred sessions take no lock until they write: in WAL mode they read beside the
    # writer, and a lone write statement waits for the lock as any writer does.
    deferred = connection.get_execution_options().get("deferred", False)
    connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def create_sessionmaker(
    engine: AsyncEngine, *, deferred: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions of `engine`. `deferred`: for reads, or a lone write statement (on SQLite the
    write lock is then taken by the first write, not at BEGIN)."""
    if deferred:
        engine = engine.execution_options(deferred=True)
    # A sync sessionmaker of its own, so that on_commit() can listen to this maker's
    # sessions alone (SQLAlchemy's asyncio events are those of the sync sessions).
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=sessionmaker())


# Parameters SQLAlchemy prepares in one go: preparing costs event-loop time, and the
# redirects waiting on the loop should not wait for a whole batch's worth of it.
EXECUTEMANY_SLICE = 250


async def execute_many(session: AsyncSession, statement: Any, rows: list[dict[str, Any]]) -> None:
    """`statement` once per row, as executemany calls of EXECUTEMANY_SLICE rows each."""
    for start in range(0, len(rows), EXECUTEMANY_SLICE):
        await session.execute(statement, rows[start : start + EXECUTEMANY_SLICE])


def on_commit(
    maker: async_sessionmaker[AsyncSession],
    table: type[T],
    key: Callable[[T], K],
    callback: Callable[[K], None],
) -> None:
    """Call `callback(key(row))` for every row of `table` that a session of `maker` inserts,
    changes or deletes, once its transaction has committed: whatever the code path that
    wrote it, none can forget to say so (the link cache forgets a link this way). A row
    flushed and then rolled back is called back at the session's next commit, if any: one
    call too many is harmless where one too few is not."""
    written = f"written {table.__name__}"

    def collect(session: Session, _flush_context: Any) -> None:
        # Still the flush's own lists here: what it has just written.
        rows = (*session.new, *session.dirty, *session.deleted)
        session.info.setdefault(written, set()).update(
            key(row) for row in rows if isinstance(row, table)
        )

    def committed(session: Session) -> None:
        for value in session.info.pop(written, ()):
            callback(value)

    sync_maker = maker.kw["sync_session_class"]
    event.listen(sync_maker, "after_flush", collect)
    event.listen(sync_maker, "after_commit", committed)
