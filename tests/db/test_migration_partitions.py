"""The migration that partitions `clicks` by month on PostgreSQL (and leaves SQLite as it
is): clicks already recorded survive it, up and down, with their ids."""

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import column, func, literal_column, select, table, text

from app import migrate
from app.core.database import create_engine
from app.core.tables import Click, Link
from tests.support.databases import empty_database, run

BEFORE = "4b9e2c7d1a05"
NOW = datetime.now(UTC).replace(microsecond=0)
MOMENTS = [
    datetime(2025, 3, 15, 8, 30, tzinfo=UTC),
    datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC),  # a month's last second
    datetime(2026, 11, 1, 0, 0, tzinfo=UTC),  # and the next month's first
    NOW,
]


async def _record_clicks(url: str) -> list[int]:
    engine = create_engine(url)
    async with engine.begin() as connection:
        workspace = await connection.scalar(text("SELECT id FROM workspaces"))
        # The links table as it was at that revision: the columns of today's may be more.
        columns = ("id", "workspace_id", "slug", "url", "redirect_code", "forward_query",
                   "created_at", "updated_at")  # fmt: skip
        links = table("links", *map(column, columns))
        link = (
            await connection.execute(
                links.insert()
                .values(workspace_id=workspace, slug="m", url="https://example.com/",
                        redirect_code=302, forward_query=True, created_at=NOW, updated_at=NOW)
                .returning(links.c.id)
            )
        ).scalar_one()  # fmt: skip
        ids = []
        for moment in MOMENTS:
            row = {
                "link_id": link,
                "workspace_id": workspace,
                "ts": moment,
                "visitor_id": "v",
                "is_bot": False,
                "device_type": "desktop",
                "referrer_source": "direct",
                "trigger": "link",
            }
            ids.append(
                (
                    await connection.execute(Click.__table__.insert().values(row))
                ).inserted_primary_key[0]
            )
    await engine.dispose()
    return ids


async def _clicks(url: str) -> dict[int, tuple[datetime, str]]:
    """Click id → (ts, the table holding the row)."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        where = "tableoid::regclass::text" if engine.dialect.name == "postgresql" else "'clicks'"
        rows = await connection.execute(select(Click.id, Click.ts, literal_column(where)))
        found = {id_: (ts, table) for id_, ts, table in rows}
    await engine.dispose()
    return found


async def _shape(url: str) -> tuple[str, list[str]]:
    """The kind of `clicks` (r: plain, p: partitioned) and its primary key columns."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        kind = await connection.scalar(
            text("SELECT relkind::text FROM pg_class WHERE relname = 'clicks'")
        )
        key = await connection.scalars(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'clicks'::regclass "
                "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
            )
        )
        columns = list(key)
    await engine.dispose()
    return kind, columns


async def _next_id(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as connection:  # rolled back: only the id is wanted
        row = {
            "link_id": await connection.scalar(select(func.min(Link.id))),
            "workspace_id": await connection.scalar(text("SELECT id FROM workspaces")),
            "ts": NOW,
            "visitor_id": "w",
            "is_bot": False,
            "device_type": "desktop",
            "referrer_source": "direct",
            "trigger": "link",
        }
        new = await connection.execute(Click.__table__.insert().values(row))
    await engine.dispose()
    return new.inserted_primary_key[0]


def test_clicks_survive_partitioning_up_and_down(backend: str, tmp_path: Path) -> None:
    url = empty_database(backend, tmp_path, "partitioning")
    migrate.upgrade(url, BEFORE)
    ids = run(_record_clicks(url))
    times = dict(zip(ids, MOMENTS, strict=True))

    migrate.upgrade(url)
    found = run(_clicks(url))
    assert {id_: ts for id_, (ts, _) in found.items()} == times
    if backend == "sqlite":  # nothing to partition: the table is as it was
        assert {table for _, table in found.values()} == {"clicks"}
        return
    assert {id_: table for id_, (_, table) in found.items()} == {
        id_: f"clicks_{ts:%Y_%m}" for id_, ts in times.items()
    }
    assert run(_shape(url)) == ("p", ["id", "ts"])
    assert run(_next_id(url)) > max(ids)  # the id sequence kept counting

    migrate.downgrade(url, BEFORE)
    assert run(_shape(url)) == ("r", ["id"])
    assert {id_: (ts, "clicks") for id_, ts in times.items()} == run(_clicks(url))
    assert run(_next_id(url)) > max(ids)

    migrate.upgrade(url)
    assert {id_: table for id_, (_, table) in run(_clicks(url)).items()} == {
        id_: f"clicks_{ts:%Y_%m}" for id_, ts in times.items()
    }
