"""Link import: `app.links.transfer.import_links` (valid rows inserted together, a few
hundred per statement) against creating the same links one by one with
`service.create_link` (a savepoint and its round trips per link), in the same run. Then
how long another connection's one-row write (a capped link taking its slot) waits while
links are created: all in one transaction (as imports used to be), and through
`import_links` (committed chunk by chunk), for real and as a dry run (rolled back chunk by
chunk). On SQLite, one writer at a time, that wait is what redirects of capped links and
the click writer see.

    .venv/bin/python -m bench.import_bench --rows 5000 \\
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

import argparse
import asyncio
import io
import os
import tempfile
import time

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app import migrate
from app.core.database import create_engine, create_sessionmaker
from app.core.principal import Principal
from app.links import service, transfer
from app.links.schemas import LinkCreate
from bench.databases import postgres_database

CTX = service.LinkContext(base_url="https://tautan.example")


def rows(count: int, prefix: str) -> list[dict[str, object]]:
    return [
        {"url": f"https://shop.example/p/{n}", "slug": f"{prefix}{n}", "tags": ["spring", "ig"],
         "utm_source": "instagram", "utm_campaign": "spring"}
        for n in range(count)
    ]  # fmt: skip


def as_csv(items: list[dict[str, object]]) -> str:
    lines = ["url,slug,tags,utm_source,utm_campaign"]
    lines += [
        f"{i['url']},{i['slug']},spring|ig,{i['utm_source']},{i['utm_campaign']}" for i in items
    ]
    return "\n".join(lines) + "\n"


async def longest_write_wait(url: str, count: int, prefix: str, how: str) -> float:
    """The longest a one-row UPDATE on another connection waited while `count` links were
    created `how` (inf when one gave up: SQLite's busy timeout)."""
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    principal = Principal.operator(1)
    bump = text("UPDATE links SET served_clicks = served_clicks + 1 WHERE slug = 'one-0'")
    waits: list[float] = []
    creating = True

    async def write_meanwhile() -> None:
        while creating:
            started = time.perf_counter()
            try:
                async with engine.begin() as connection:
                    await connection.execute(bump)
                waits.append(time.perf_counter() - started)
            except OperationalError:
                waits.append(float("inf"))
            await asyncio.sleep(0.005)

    writes = asyncio.create_task(write_meanwhile())
    async with sessionmaker() as session:
        if how == "one transaction":
            await service.create_links(session, principal, rows(count, prefix), CTX)
            await session.commit()
        else:  # import_links commits (or rolls back) chunk by chunk
            csv_text = io.StringIO(as_csv(rows(count, prefix)), newline="")
            dry_run = how == "dry run"
            await transfer.import_links(session, principal, csv_text, CTX, dry_run=dry_run)
    creating = False
    await writes
    await engine.dispose()
    return max(waits, default=0.0)  # none: the writes never got a turn (a tiny --rows)


async def timed(url: str, count: int) -> tuple[float, float]:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    principal = Principal.operator(1)
    started = time.perf_counter()
    async with sessionmaker() as session, session.begin():
        for item in rows(count, "one-"):
            await service.create_link(session, principal, LinkCreate.model_validate(item), CTX)
    one_by_one = time.perf_counter() - started
    started = time.perf_counter()
    async with sessionmaker() as session:
        csv_text = io.StringIO(as_csv(rows(count, "csv-")), newline="")
        report = await transfer.import_links(session, principal, csv_text, CTX)
    imported = time.perf_counter() - started
    await engine.dispose()
    assert report.imported == count, report.errors[:3]
    return one_by_one, imported


def run(name: str, url: str, count: int) -> None:
    migrate.upgrade(url)
    one_by_one, imported = asyncio.run(timed(url, count))
    print(
        f"{name:10} {count:,} links: one by one {one_by_one:.2f} s "
        f"({one_by_one / count * 1000:.2f} ms/link), import {imported:.2f} s "
        f"({imported / count * 1000:.2f} ms/link); one by one ÷ import = {one_by_one / imported:.1f}×"
    )
    waits = {
        how: asyncio.run(longest_write_wait(url, count, f"w{n}-", how))
        for n, how in enumerate(("one transaction", "import", "dry run"))
    }
    baseline = waits["one transaction"]
    print(
        f"{name:10} longest wait of a one-row write while {count:,} links are created: "
        + ", ".join(f"{how} {wait * 1000:.0f} ms" for how, wait in waits.items())
        + f"; one transaction ÷ import = {baseline / waits['import']:.1f}×"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="links per run (at least 1)")
    parser.add_argument("--postgres", help="also on this server, in a new database")
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite+aiosqlite:///{tmp}/import.db", args.rows)
    if args.postgres:
        name = f"tautan_bench_import_{os.getpid()}"
        url = asyncio.run(postgres_database(args.postgres, name, create=True))
        try:
            run("PostgreSQL", url, args.rows)
        finally:
            asyncio.run(postgres_database(args.postgres, name, create=False))


if __name__ == "__main__":
    main()
