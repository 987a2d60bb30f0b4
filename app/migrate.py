"""Running Alembic (and the ClickHouse schema's migrations) from code (`tautan migrate`,
`tautan serve`, tests)."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.config import Settings

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def upgrade_stores(settings: Settings) -> None:
    """Both schemas to their latest: the SQL database's, and ClickHouse's when it is the
    click store (with the raw clicks' TTL set to TAUTAN_RETENTION_DAYS)."""
    upgrade(settings.database_url)
    if settings.clickhouse_url:
        asyncio.run(_upgrade_clickhouse(settings.clickhouse_url, settings.retention_days))


async def _upgrade_clickhouse(url: str, retention_days: int | None) -> None:
    from app.clickhouse import schema
    from app.clickhouse.client import connect

    clickhouse = connect(url)
    try:
        await schema.upgrade(clickhouse, retention_days)
    finally:
        await clickhouse.close()
