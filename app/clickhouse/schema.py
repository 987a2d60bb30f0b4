"""The ClickHouse schema, versioned as Alembic versions the SQL one: each file of
migrations/clickhouse/ (`NNNN_name.sql`, statements ending with `;`) is applied once, in
order, and recorded in the table `tautan_migrations`. A file is never edited once landed:
a change is a new file. `tautan migrate` (and `tautan serve`) apply both schemas."""

import re
from dataclasses import dataclass
from pathlib import Path

from app.clickhouse.client import ClickHouse

FOLDER = Path(__file__).resolve().parent.parent.parent / "migrations" / "clickhouse"
FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")
RECORD = """CREATE TABLE IF NOT EXISTS tautan_migrations (
    version UInt32, name String, applied_at DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree ORDER BY version"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(folder: Path = FOLDER) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = FILE_NAME.fullmatch(path.name)
        if match is None:
            raise ValueError(f"{path.name}: a ClickHouse migration is named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], _statements(path.read_text())))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"ClickHouse migrations are numbered 1, 2, 3 …, not {versions}")
    return found


def _statements(text: str) -> tuple[str, ...]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return tuple(s.strip() for s in "\n".join(lines).split(";") if s.strip())


async def applied(clickhouse: ClickHouse) -> list[int]:
    await clickhouse.execute(RECORD)
    rows = await clickhouse.query("SELECT version FROM tautan_migrations ORDER BY version")
    return [version for (version,) in rows]


async def upgrade(clickhouse: ClickHouse, retention_days: int | None = None) -> list[Migration]:
    """Apply the migrations not applied yet, in order; returns them. Then set the raw
    clicks' TTL to `retention_days` (none: kept). A migration cut short is applied again
    from its start next time, so each statement of a migration must bear that (IF NOT
    EXISTS) or the migration must be one statement."""
    done = set(await applied(clickhouse))
    pending = [m for m in migrations() if m.version not in done]
    for migration in pending:
        for statement in migration.statements:
            await clickhouse.execute(_if_not_exists(statement))
        await clickhouse.execute(
            "INSERT INTO tautan_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            v=migration.version,
            n=migration.name,
        )
    await _keep_clicks_for(clickhouse, retention_days)
    return pending


async def _keep_clicks_for(clickhouse: ClickHouse, days: int | None) -> None:
    """Set the clicks' TTL, if it is not that already: a change rewrites the table's parts."""
    [(table,)] = await clickhouse.query(
        "SELECT create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'clicks'"
    )
    kept = re.search(r" TTL toDateTime\(ts\) \+ toIntervalDay\(\D*(\d+)", table)
    if (int(kept[1]) if kept else None) == days:
        return
    if days:
        await clickhouse.execute(
            "ALTER TABLE clicks MODIFY TTL toDateTime(ts) + toIntervalDay({days:UInt32})",
            days=days,
        )
    else:
        await clickhouse.execute("ALTER TABLE clicks REMOVE TTL")


def _if_not_exists(statement: str) -> str:
    """CREATE statements made safe to run again."""
    return re.sub(
        r"^CREATE (TABLE|MATERIALIZED VIEW) (?!IF NOT EXISTS)",
        r"CREATE \1 IF NOT EXISTS ",
        statement,
    )
