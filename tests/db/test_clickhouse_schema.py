"""The ClickHouse schema's migrations: applied once each, in order, by `tautan migrate`
with the SQL database's; the raw clicks kept as TAUTAN_RETENTION_DAYS says; a misnamed or
misnumbered migration file refused."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.clickhouse import schema
from app.clickhouse.client import ClickHouse, connect
from tests.support.cli import command
from tests.support.clickhouse import TABLES, drop_tables
from tests.support.databases import run


async def _inspect(url: str) -> tuple[list[int], set[str], str]:
    clickhouse: ClickHouse = connect(url)
    try:
        versions = await schema.applied(clickhouse)
        tables = {t for (t,) in await clickhouse.query("SHOW TABLES")}
        [(clicks,)] = await clickhouse.query(
            "SELECT create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'clicks'"
        )
        return versions, tables, clicks
    finally:
        await clickhouse.close()


def test_tautan_migrate_applies_both_schemas_once(database_url: str, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    env = {"TAUTAN_DATABASE_URL": database_url, "TAUTAN_CLICKHOUSE_URL": url,
           "TAUTAN_RETENTION_DAYS": "30"}  # fmt: skip
    for _ in range(2):  # the second time, nothing is left to apply
        result = command("migrate", env=env)
        assert result.returncode == 0, result.stdout
        assert "ClickHouse is at the latest migration" in result.stdout
    versions, tables, clicks = run(_inspect(url))
    assert versions == [m.version for m in schema.migrations()]  # each once
    assert set(TABLES) <= tables
    assert "TTL toDateTime(ts) + toIntervalDay(_CAST(30" in clicks
    result = command("migrate", env={**env, "TAUTAN_RETENTION_DAYS": None})
    assert result.returncode == 0
    assert " TTL " not in run(_inspect(url))[2]  # kept for ever again


def test_the_retention_applies_on_the_server_too(tmp_path: Path, clickhouse_url: str) -> None:
    async def keep(days: int | None) -> str:
        clickhouse = connect(clickhouse_url)
        try:
            await schema.upgrade(clickhouse, days)
        finally:
            await clickhouse.close()
        return (await _inspect(clickhouse_url))[2]

    assert "toIntervalDay(_CAST(7" in run(keep(7))
    assert " TTL " not in run(keep(None))


@pytest.mark.parametrize(
    ("names", "refused"),
    [
        (["0001_clicks.sql", "clicks_2.sql"], "named NNNN_name.sql"),
        (["0001_clicks.sql", "0003_views.sql"], "numbered 1, 2, 3"),
        (["0002_clicks.sql"], "numbered 1, 2, 3"),
    ],
)
def test_misnamed_or_misnumbered_migrations_are_refused(
    tmp_path: Path, names: list[str], refused: str
) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(ValueError, match=refused):
        schema.migrations(tmp_path)


def test_a_migrations_statements_split_at_semicolons_without_comments(tmp_path: Path) -> None:
    (tmp_path / "0001_two.sql").write_text(
        "-- a comment; with a semicolon\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\n"
        "CREATE TABLE b (x UInt8) ENGINE = Memory;\n"
    )
    [migration] = schema.migrations(tmp_path)
    assert migration.statements == (
        "CREATE TABLE a (x UInt8) ENGINE = Memory",
        "CREATE TABLE b (x UInt8) ENGINE = Memory",
    )


def test_the_route_migration_counts_the_clicks_stored_before_it_once(
    tmp_path: Path, clickhouse_url: str
) -> None:
    """Clicks stored before clicks had a route went to their link's own url: the `route`
    rows of the daily view say so, once, even when the migration is run again (cut short
    before it was recorded); clicks stored after it are counted by their route."""

    async def scenario() -> tuple[dict, dict]:
        clickhouse = connect(clickhouse_url)
        try:
            await drop_tables(clickhouse)
            first, second = schema.migrations()[:2]
            await schema.applied(clickhouse)  # the record table
            for statement in first.statements:
                await clickhouse.execute(statement)
            await clickhouse.execute(
                "INSERT INTO tautan_migrations (version, name) VALUES (1, 'clicks')"
            )
            await clickhouse.insert("clicks", _clicks(range(5)), "a" * 32, "JSONEachRow")
            await schema.upgrade(clickhouse)
            for statement in second.statements:  # a run cut short, done again
                await clickhouse.execute(statement)
            await clickhouse.insert(
                "clicks", _clicks(range(5, 8), route="ios"), "b" * 32, "JSONEachRow"
            )
            return await _sums(clickhouse, "route"), await _sums(clickhouse, "trigger")
        finally:
            await clickhouse.close()

    routes, triggers = run(scenario())
    assert routes == {"": 5, "ios": 3}
    assert sum(routes.values()) == sum(triggers.values()) == 8


def test_a_links_daily_rows_are_read_from_the_projection_that_orders_them_by_link(
    clickhouse_url: str,
) -> None:
    """rollup_days is ordered by workspace, dimension and day; a link's breakdown reads its
    projection ordered by link (fewer marks once a workspace has many links and days), with
    the clicks' answers: for rows stored before the migration that made it, after it, and
    once parts were merged."""
    device_types = (
        "SELECT value, sum(clicks) FROM rollup_days WHERE workspace_id = 1 AND link_id = 1 "
        "AND dimension = 'device_type' GROUP BY value ORDER BY value SETTINGS "
    )

    async def scenario() -> tuple[list, list, list]:
        clickhouse = connect(clickhouse_url)
        try:
            await drop_tables(clickhouse)
            await schema.applied(clickhouse)  # the record table
            for migration in schema.migrations()[:2]:
                for statement in migration.statements:
                    await clickhouse.execute(statement)
                await clickhouse.execute(
                    "INSERT INTO tautan_migrations (version, name) VALUES ({v:UInt32}, '')",
                    v=migration.version,
                )
            # 200 links, a click a minute for 140 days.
            await clickhouse.execute(
                "INSERT INTO clicks (id, link_id, workspace_id, ts, visitor_id, new_visitor, "
                "is_bot, device_type, referrer_source, trigger) "
                "SELECT number, number % 200 + 1, 1, toDateTime('2026-07-01') + number * 60, "
                "toString(number), true, false, ['mobile', 'desktop', 'tablet'][number % 3 + 1], "
                "'direct', 'link' FROM numbers(200000)"
            )
            await schema.upgrade(clickhouse)
            by_link = device_types + "force_optimize_projection_name = 'by_link'"  # or fails
            before = await clickhouse.query(by_link)
            more = _clicks(range(200_000, 200_003), device="tv")
            await clickhouse.insert("clicks", more, "b" * 32, "JSONEachRow")
            await clickhouse.execute("OPTIMIZE TABLE rollup_days FINAL")
            read = await clickhouse.query(by_link)
            table = await clickhouse.query(device_types + "optimize_use_projections = 0")
            clicks = await clickhouse.query(
                "SELECT device_type, count() FROM clicks WHERE link_id = 1 "
                "GROUP BY device_type ORDER BY device_type"
            )
            return before, read, table, clicks
        finally:
            await clickhouse.close()

    before, read, table, clicks = run(scenario())
    assert before == [row for row in clicks if row[0] != "tv"]
    assert read == table == clicks
    assert dict(clicks)["tv"] == 3


def _clicks(ids: range, route: str | None = None, device: str = "mobile") -> bytes:
    rows = [
        {"id": i, "link_id": 1, "workspace_id": 1, "ts": "2026-12-01 10:00:00", "visitor_id": str(i),
         "new_visitor": True, "is_bot": False, "device_type": device, "referrer_source": "direct",
         "trigger": "link"} | ({"route": route} if route else {})
        for i in ids
    ]  # fmt: skip
    return "\n".join(map(json.dumps, rows)).encode()


async def _sums(clickhouse: ClickHouse, dimension: str) -> dict:
    rows = await clickhouse.query(
        "SELECT value, sum(clicks) FROM rollup_days WHERE dimension = {d:String} GROUP BY value",
        d=dimension,
    )
    return dict(rows)


def test_times_come_back_in_utc_with_or_without_their_zone_written(clickhouse_url: str) -> None:
    """ClickHouse writes a DateTime without its zone, unless its settings say `iso` (a
    server's profile may): both read as the same aware time."""

    async def moments(output: str) -> list[object]:
        clickhouse = connect(clickhouse_url)
        try:
            [row] = await clickhouse.query(
                "SELECT toDateTime64('2024-01-01 07:00:00.5', 6, 'UTC'), "
                "toDateTime('2024-01-01 07:00:00', 'UTC'), "
                "CAST(NULL AS Nullable(DateTime('UTC'))) "
                f"SETTINGS date_time_output_format = '{output}'"
            )
            return row
        finally:
            await clickhouse.close()

    expected = [datetime(2024, 1, 1, 7, 0, 0, 500000, UTC), datetime(2024, 1, 1, 7, tzinfo=UTC),
                None]  # fmt: skip
    assert run(moments("simple")) == expected
    assert run(moments("iso")) == expected
