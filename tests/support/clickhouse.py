"""ClickHouse for tests: embedded (chdb, a folder of the test's own) always, and the server
that TAUTAN_TEST_CLICKHOUSE_URL names when it is set (its tables dropped first)."""

import os
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from app.clickhouse import schema
from app.clickhouse.client import ClickHouse, connect
from tests.support.app import state_of
from tests.support.databases import run

SERVER_URL = os.environ.get("TAUTAN_TEST_CLICKHOUSE_URL")
ENGINES = ["chdb", "server"]
TABLES = ("rollup_hours_view", "rollup_days_view", "clicks", "rollup_hours", "rollup_days",
          "tautan_migrations")  # fmt: skip


def fresh_clickhouse(engine: str, tmp_path: Path) -> str:
    """The URL of an empty ClickHouse at the latest schema."""
    if engine == "chdb":
        url = f"chdb://{tmp_path / 'chdb'}"
    elif SERVER_URL:
        url = SERVER_URL
        run(_at(url, drop_tables))
    else:
        import pytest

        pytest.skip("TAUTAN_TEST_CLICKHOUSE_URL names no ClickHouse server")
    run(_at(url, schema.upgrade))
    return url


async def drop_tables(clickhouse: ClickHouse) -> None:
    for table in TABLES:
        await clickhouse.execute(f"DROP TABLE IF EXISTS {table}")


async def _at(url: str, work: Any) -> Any:
    clickhouse = connect(url)
    try:
        return await work(clickhouse)
    finally:
        await clickhouse.close()


def query(client: TestClient, sql: str, **params: Any) -> list[list[Any]]:
    """Rows from the ClickHouse of `client`'s app."""
    clickhouse = state_of(client).clickhouse
    assert clickhouse is not None and client.portal is not None
    return client.portal.call(lambda: clickhouse.query(sql, **params))


def clear(client: TestClient) -> None:
    """Forget every click of `client`'s ClickHouse, with its views' rows."""
    clickhouse = state_of(client).clickhouse
    assert clickhouse is not None and client.portal is not None
    for table in ("clicks", "rollup_hours", "rollup_days"):
        client.portal.call(clickhouse.execute, f"TRUNCATE TABLE {table}")


def referrers(url: str) -> list[str]:
    """The Referers of the clicks ClickHouse at `url` holds (asking the process that owns
    an embedded one, if another does)."""

    async def read(clickhouse: ClickHouse) -> list[str]:
        return [row[0] for row in await clickhouse.query("SELECT referrer_url FROM clicks")]

    return run(_at(url, read))
