"""Clicks into ClickHouse, exactly once. ClickHouse shares no transaction with the SQL
database, where a writer commits the log positions of what it wrote. So a batch goes in
two steps:
1. in the writer's transaction, beside its positions and the links' counters, the batch's
   rows are kept in `clickhouse_batches`, under a random token;
2. once that is committed, they are inserted into ClickHouse with the token, and the kept
   rows are deleted.
A batch whose second step did not happen (ClickHouse down, the writer killed) is inserted
by a later round of any writer. ClickHouse drops an insert whose token it stored already,
in the clicks and in their views, so a batch inserted twice is stored once."""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clickhouse.client import ClickHouse
from app.clicks.store.sql import CLICK_COLUMNS
from app.core.tables import ClickHouseBatch

# A batch kept longer than this is taken to be left by a writer that died or failed: any
# writer inserts it (meanwhile its own writer is inserting it, if it is alive).
LEFT_AFTER = timedelta(seconds=30)
PER_ROUND = 100  # batches a round inserts at most
ID_BITS = 24  # a click's id: its batch's id, then its place in the batch
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how ClickHouse reads a DateTime64 from JSON
BATCHES = ClickHouseBatch.__table__


def body_of(rows: list[dict[str, Any]], batch_id: int) -> bytes:
    """The rows as ClickHouse inserts them, numbered from the batch's id."""
    lines = []
    first = batch_id << ID_BITS
    for n, row in enumerate(rows):
        record = {column: row[column] for column in CLICK_COLUMNS}
        record["ts"] = row["ts"].strftime(TIME_FORMAT)
        record["id"] = first + n
        lines.append(orjson.dumps(record))
    return b"\n".join(lines)


class ClickHouseStore:
    def __init__(self, clickhouse: ClickHouse, *, left_after: timedelta = LEFT_AFTER) -> None:
        self.clickhouse, self.left_after = clickhouse, left_after

    async def keep(self, session: AsyncSession, rows: list[dict[str, Any]]) -> int | None:
        """Step 1, in the writer's transaction: the batch id kept (none for no rows)."""
        if not rows:
            return None
        if len(rows) >= 1 << ID_BITS:
            raise ValueError(f"a batch for ClickHouse holds fewer than {1 << ID_BITS} clicks")
        batch_id: int = await session.scalar(
            insert(BATCHES)
            .values(token=secrets.token_hex(16), created_at=datetime.now(UTC), body=b"")
            .returning(BATCHES.c.id)
        )
        body = body_of(rows, batch_id)
        await session.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(body=body))
        return batch_id

    async def insert(
        self, sessionmaker: async_sessionmaker[AsyncSession], kept: int | None = None
    ) -> int:
        """Step 2: insert the batch `kept` and those left by others, oldest first; returns
        how many batches. A failure raises (ClickHouseError), and what is not inserted
        stays kept for the next round."""
        left = datetime.now(UTC) - self.left_after
        async with sessionmaker() as session:
            batches = (
                await session.execute(
                    select(BATCHES.c.id, BATCHES.c.token, BATCHES.c.body)
                    .where(or_(BATCHES.c.id == kept, BATCHES.c.created_at < left))
                    .order_by(BATCHES.c.id)
                    .limit(PER_ROUND)
                )
            ).all()
        for batch_id, token, body in batches:
            await self.clickhouse.insert("clicks", body, token)
            async with sessionmaker.begin() as session:
                await session.execute(delete(BATCHES).where(BATCHES.c.id == batch_id))
        return len(batches)


async def erase_link(clickhouse: ClickHouse, link_id: int) -> None:
    """Delete every click of a link, and its rows of the KPI views (erasure on request)."""
    for table in ("clicks", "rollup_hours", "rollup_days"):
        await clickhouse.execute(
            f"DELETE FROM {table} WHERE link_id = {{link:UInt32}}", link=link_id
        )
