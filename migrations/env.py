"""Alembic environment: async engine, URL from Tautan's settings unless the caller
(`app.migrate`) passes one in `config.attributes["url"]`."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

import app.core.tables  # noqa: F401  (registers every table on Base.metadata)
from app.clicks.retention import is_partition
from app.config import get_settings
from app.core.database import create_engine
from app.core.tables.base import Base, UTCDateTime

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import app code that may change later: render our column
    # types as the plain SQLAlchemy types they stand for.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The monthly partitions of `clicks` (PostgreSQL) are made and dropped at run time and
    # have no model of their own: only `clicks` itself is compared with its model.
    return not (type_ == "table" and name is not None and is_partition(name))


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # SQLite alters a table by copying it into a new one and dropping the old: with
        # foreign keys enforced, the drop would delete every row that refers to it. The
        # pragma only takes effect outside a transaction, so not through SQLAlchemy,
        # which begins one first.
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":  # the checks left off above, made once
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"migration left rows with no parent: {broken[:5]}")


async def run_async() -> None:
    engine = create_engine(config.attributes.get("url") or get_settings().database_url)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
asyncio.run(run_async())
