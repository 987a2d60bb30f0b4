"""The SQL of a click writer's transaction, one class per database. It goes to the driver
directly: for a batch of a thousand clicks, SQLAlchemy's processing of every parameter of
every row costs more than the database's own work. Each method runs in the transaction of
the session it is given, and orders rows by key, as every writer does: two writers that
lock the same rows in opposite orders deadlock on PostgreSQL."""

from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.dialect import is_postgresql
from app.core.tables import Click

CLICK_COLUMNS = [c.name for c in Click.__table__.columns if c.name != "id"]
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a timestamp in SQLite
VisitorKey = tuple[int, date, str]  # link, UTC day, visitor id
Counts = dict[tuple, list[int]]  # a rollup's key -> [clicks, visitors] to add


async def _driver(session: AsyncSession) -> Any:
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


class SqliteStore:
    INSERT_CLICKS = "INSERT INTO clicks ({}) VALUES ({})".format(
        ", ".join(f'"{c}"' for c in CLICK_COLUMNS), ", ".join("?" * len(CLICK_COLUMNS))
    )
    VISITORS_PER_STATEMENT = 1000  # 3 parameters each; SQLite takes 32,766

    async def insert_clicks(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        records = [
            tuple(row[c].strftime(SQLITE_TIME) if c == "ts" else row[c] for c in CLICK_COLUMNS)
            for row in rows
        ]
        await (await _driver(session)).executemany(self.INSERT_CLICKS, records)

    async def insert_visitors(
        self, session: AsyncSession, keys: list[VisitorKey]
    ) -> set[VisitorKey]:
        """Insert the (link, day, visitor) keys not there yet; returns those it inserted."""
        driver = await _driver(session)
        inserted = set()
        for start in range(0, len(keys), self.VISITORS_PER_STATEMENT):
            chunk = keys[start : start + self.VISITORS_PER_STATEMENT]
            cursor = await driver.execute(
                "INSERT INTO visitor_days (link_id, day, visitor_id) VALUES "
                + ", ".join(["(?, ?, ?)"] * len(chunk))
                + " ON CONFLICT DO NOTHING RETURNING link_id, day, visitor_id",
                [
                    value
                    for link, day, visitor in chunk
                    for value in (link, day.isoformat(), visitor)
                ],
            )
            rows = await cursor.fetchall()
            await cursor.close()
            inserted |= {(link, date.fromisoformat(day), visitor) for link, day, visitor in rows}
        return inserted

    async def add_counts(
        self, session: AsyncSession, table: str, keys: tuple[str, ...], counts: Counts
    ) -> None:
        """Add `counts` to the rollup `table` (key columns `keys`: its primary key, then
        workspace_id)."""
        statement = (
            f"INSERT INTO {table} ({', '.join(keys)}, clicks, visitors) "
            f"VALUES ({', '.join('?' * (len(keys) + 2))}) "
            f"ON CONFLICT ({', '.join(keys[:-1])}) DO UPDATE SET "
            "clicks = clicks + excluded.clicks, visitors = visitors + excluded.visitors"
        )
        # The timestamp or date of a key (`hour`, `day`) as SQLAlchemy stores it in SQLite;
        # a batch has few distinct ones.
        when = keys.index("hour" if "hour" in keys else "day")
        texts: dict[date, str] = {}
        records = []
        for key, (clicks, visitors) in sorted(counts.items()):
            moment = key[when]
            if (text := texts.get(moment)) is None:
                text = texts[moment] = (
                    moment.strftime(SQLITE_TIME) if isinstance(moment, datetime) else str(moment)
                )
            records.append((*key[:when], text, *key[when + 1 :], clicks, visitors))
        await (await _driver(session)).executemany(statement, records)


class PostgresStore:
    async def insert_clicks(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        records = [tuple(row[c] for c in CLICK_COLUMNS) for row in rows]
        await (await _driver(session)).copy_records_to_table(
            "clicks", records=records, columns=CLICK_COLUMNS
        )

    async def insert_visitors(
        self, session: AsyncSession, keys: list[VisitorKey]
    ) -> set[VisitorKey]:
        """Insert the (link, day, visitor) keys not there yet; returns those it inserted.
        A key another writer inserted and has not committed yet waits for its commit."""
        links, days, visitors = zip(*keys, strict=True) if keys else ((), (), ())
        rows = await (await _driver(session)).fetch(
            "INSERT INTO visitor_days (link_id, day, visitor_id) "
            "SELECT * FROM unnest($1::int[], $2::date[], $3::text[]) "
            "ON CONFLICT DO NOTHING RETURNING link_id, day, visitor_id",
            list(links),
            list(days),
            list(visitors),
        )
        return {(row[0], row[1], row[2]) for row in rows}

    async def add_counts(
        self, session: AsyncSession, table: str, keys: tuple[str, ...], counts: Counts
    ) -> None:
        """Add `counts` to the rollup `table` (key columns `keys`: its primary key, then
        workspace_id), in one statement."""
        if not counts:
            return
        ordered = sorted(counts.items())
        columns = [list(column) for column in zip(*(key for key, _ in ordered), strict=True)]
        columns += [[c for _, (c, _) in ordered], [v for _, (_, v) in ordered]]
        types = [_POSTGRES_TYPES[key] for key in keys] + ["int", "int"]
        arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, 1))
        await (await _driver(session)).execute(
            f"INSERT INTO {table} ({', '.join(keys)}, clicks, visitors) "
            f"SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT ({', '.join(keys[:-1])}) DO UPDATE SET "
            f"clicks = {table}.clicks + excluded.clicks, "
            f"visitors = {table}.visitors + excluded.visitors",
            *columns,
        )


_POSTGRES_TYPES = {
    "link_id": "int", "hour": "timestamptz", "is_bot": "bool", "workspace_id": "int",
    "dimension": "text", "day": "date", "value": "text",
}  # fmt: skip


def store_for(session: AsyncSession) -> SqliteStore | PostgresStore:
    return PostgresStore() if is_postgresql(session) else SqliteStore()
