"""Engine, sessions and the declarative base."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC one is needed")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# How long a SQLite writer waits for the lock before its write fails (the click writer
# then spools the batch).
SQLITE_BUSY_TIMEOUT_S = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        for callback in session.info.pop("after_commit", []):
            callback()


# scope="function": commit before the response is sent, so a client that gets 201 can
# follow the short URL at once.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
