"""Real databases for tests: a SQLite file each, and PostgreSQL when TAUTAN_TEST_POSTGRES_URL
names a server."""

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, make_url, select, text

from app.core.database import create_engine
from app.core.principal import DEFAULT_WORKSPACE
from app.core.tables.base import Base

T = TypeVar("T")


POSTGRES_URL = os.environ.get("TAUTAN_TEST_POSTGRES_URL")


BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _recreate_postgres_database(name: str) -> str:
    assert POSTGRES_URL
    server = create_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await server.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


CREATED_DATABASES: list[str] = []


def empty_database(backend: str, tmp_path: Path, name: str) -> str:
    """The URL of a new, empty database of the given backend (PostgreSQL ones are
    dropped when the test session ends)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"
    database = f"tautan_{name}_{os.getpid()}"
    CREATED_DATABASES.append(database)
    return run(_recreate_postgres_database(database))


async def drop_postgres_databases(names: list[str]) -> None:
    assert POSTGRES_URL
    server = create_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        for name in names:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await server.dispose()


async def clear(url: str) -> None:
    """Empty every table, but for the default workspace (as the migrations leave it)."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            query = delete(table)
            if table.name == "workspaces":
                query = query.where(table.c.name != DEFAULT_WORKSPACE)
            await connection.execute(query)
    await engine.dispose()


async def count_rows(url: str, table: Any) -> int:
    """How many rows `table` (a mapped class) holds in the database at `url`."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        found = await connection.scalar(select(func.count()).select_from(table))
    await engine.dispose()
    return found or 0
