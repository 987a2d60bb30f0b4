"""Retention purge: `app.clicks.retention.maintain` (short batches; on PostgreSQL whole
monthly partitions dropped) against the naive way, one `DELETE … WHERE ts < cutoff`, on the
same clicks in the same run. What matters is the longest transaction: while one runs, the
click writer waits for SQLite's write lock (PostgreSQL: for nothing, but the DELETE's
WAL and bloat are the cost).

    .venv/bin/python -m bench.purge_bench --clicks 300000 \\
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select

from app import migrate
from app.clicks import retention
from app.core.database import create_engine
from app.core.principal import DEFAULT_WORKSPACE
from app.core.tables import Click, Link, Workspace
from bench.databases import postgres_database

RETENTION_DAYS, SPAN_DAYS = 30, 90


async def seed(url: str, clicks: int) -> None:
    """`clicks` clicks of one link, spread evenly over the last SPAN_DAYS days."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(delete(Click.__table__))
        workspace = await connection.scalar(
            select(Workspace.id).where(Workspace.name == DEFAULT_WORKSPACE)
        )
        link = await connection.scalar(select(Link.id).where(Link.slug == "bench"))
        if link is None:
            link = await connection.scalar(
                insert(Link)
                .values(workspace_id=workspace, slug="bench", url="https://shop.example/")
                .returning(Link.id)
            )
        start, step = datetime.now(UTC) - timedelta(days=SPAN_DAYS), SPAN_DAYS * 86400 / clicks
        for offset in range(0, clicks, 5000):
            rows = [
                {"link_id": link, "workspace_id": workspace, "visitor_id": f"v{n % 5000}",
                 "ts": start + timedelta(seconds=n * step), "is_bot": False,
                 "device_type": "desktop", "referrer_source": "direct", "trigger": "link"}
                for n in range(offset, min(offset + 5000, clicks))
            ]  # fmt: skip
            await connection.execute(insert(Click.__table__), rows)
    await engine.dispose()


async def naive(url: str) -> tuple[int, float]:
    engine = create_engine(url)
    started = time.perf_counter()
    async with engine.begin() as connection:
        cutoff = retention.cutoff(RETENTION_DAYS)
        deleted = (await connection.execute(delete(Click).where(Click.ts < cutoff))).rowcount
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return deleted, elapsed


async def batched(url: str) -> tuple[retention.Purged, float, float]:
    engine = create_engine(url)
    # On PostgreSQL the partitions a running server makes ahead (and moves rows into)
    # exist before a purge; made here first so that the purge alone is timed.
    await retention.maintain(engine, None)
    longest, last = 0.0, time.perf_counter()

    def on_batch(_: int) -> None:
        nonlocal longest, last
        now = time.perf_counter()
        longest, last = max(longest, now - last - retention.PAUSE_S), now

    started = time.perf_counter()
    done = await retention.maintain(engine, RETENTION_DAYS, on_batch=on_batch)
    elapsed = time.perf_counter() - started
    async with engine.connect() as connection:
        left = await connection.scalar(select(func.count()).select_from(Click))
    await engine.dispose()
    print(f"  left after the purge: {left:,} clicks (the last {RETENTION_DAYS} days)")
    return done, elapsed, max(longest, 0.0)


async def run(name: str, url: str, clicks: int) -> None:
    print(f"\n== {name}: {clicks:,} clicks over {SPAN_DAYS} days, retention {RETENTION_DAYS} ==")
    await seed(url, clicks)
    deleted, naive_s = await naive(url)
    print(f"naive    one DELETE: {deleted:,} clicks in {naive_s:.2f} s, all in one transaction")
    await seed(url, clicks)
    done, batched_s, longest = await batched(url)
    dropped = ", ".join(f"{n} ({c:,})" for n, c in done.dropped.items()) or "none"
    print(
        f"batched  maintain: {done.clicks:,} clicks in {batched_s:.2f} s; partitions dropped: "
        f"{dropped}; {done.deleted:,} deleted in batches of {retention.BATCH:,}, the longest "
        f"{longest * 1000:.0f} ms"
    )
    print(
        f"longest transaction: naive ÷ batched = {naive_s / max(longest, 1e-3):.0f}×; "
        f"total time: batched ÷ naive = {batched_s / naive_s:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=300_000, help="at least 1")
    parser.add_argument("--postgres", help="also on this server, in a new database")
    args = parser.parse_args()
    if args.clicks < 1:
        parser.error("--clicks must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/purge.db"
        migrate.upgrade(url)
        asyncio.run(run("SQLite", url, args.clicks))
    if args.postgres:
        name = f"tautan_bench_purge_{os.getpid()}"
        url = asyncio.run(postgres_database(args.postgres, name, create=True))
        try:
            migrate.upgrade(url)
            asyncio.run(run("PostgreSQL", url, args.clicks))
        finally:
            asyncio.run(postgres_database(args.postgres, name, create=False))


if __name__ == "__main__":
    main()
