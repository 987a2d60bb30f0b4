"""Writer processes alone: how many clicks per second `tautan writer --processes N` commits
from a click log holding realistic clicks (those of bench/stats_bench.py: 50,000 visitors
over 30 countries, ~300 User-Agents of phones, in-app browsers and desktops, 7% bots, and
`--new-ua-share` of User-Agents never seen before, logged as a live stream of 20,000 clicks
a second), for each N in turn on a fresh database.

    .venv/bin/python -m bench.writer_bench [--clicks 200000] [--processes 1 2]
        [--new-ua-share 0.05] [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]
        [--stream redis://127.0.0.1:6379/8] [--chdb]

The log is written first, in segments of 4,000 clicks (what one serving process seals every
200 ms at 20,000 redirects/s); then the writers start, and their rate is counted from their
first committed click (a writer process takes a few seconds to load its parsers) until
every click is in the database. Each figure is compared with one writer's in the same run.
The writers run as real processes, reading a real log, on SQLite in a temp dir and, with
`--postgres`, in a new database on that (local) server, dropped at the end.

With `--stream` (a Redis database the bench may empty), each run is done twice: writers
reading the local log, then the same clicks forwarded into the Redis Stream first (as the
serving processes' forwarders do; their rate is printed too) and read from there. The
stream's figure is compared with the local log's.

With `--chdb`, each run is done once more with embedded ClickHouse as the click store
(TAUTAN_CLICKHOUSE_URL=chdb:///DIR): a click counts as written once its batch is in
ClickHouse (the links' counters hold it, and no batch waits in `clickhouse_batches`); at
the end ClickHouse's own count is checked. Its figure is compared with the SQL store's."""

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from app import migrate
from app.clickhouse.client import connect
from app.clicks.log import ClickLog
from app.clicks.stream import StreamForwarder
from app.config import Settings
from app.core.database import create_engine
from app.core.tables import Click, ClickHouseBatch, Link
from bench.databases import postgres_database
from bench.stats_bench import make_links, raw_clicks, world

SEGMENT_CLICKS = 4000
LIVE_RATE = 20_000  # clicks/s of the stream logged
TAUTAN = str(Path(sys.executable).parent / "tautan")


async def _count(url: str, clickhouse: bool = False) -> int:
    """Clicks written: rows of `clicks`; with ClickHouse as the store, the links' counters
    (committed with each batch), less one while a batch waits to go to ClickHouse."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        if clickhouse:
            counted = func.coalesce(func.sum(Link.clicks + Link.bot_clicks), 0)
            count = await connection.scalar(select(counted))
            count -= bool(await connection.scalar(select(func.count(ClickHouseBatch.id))))
        else:
            count = await connection.scalar(select(func.count()).select_from(Click))
    await engine.dispose()
    return count or 0


async def _clickhouse_count(url: str) -> int:
    clickhouse = connect(url)
    try:
        [(count,)] = await clickhouse.query("SELECT count() FROM clicks")
    finally:
        await clickhouse.close()
    return int(count)


async def _database(kind: str, server: str | None, name: str, tmp: Path) -> str:
    """A new, empty database: a SQLite file, or `name` on the PostgreSQL `server`."""
    if kind == "sqlite":
        path = tmp / f"{name}.db"
        path.unlink(missing_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    assert server is not None
    return await postgres_database(server, name, create=True)


async def _links(url: str, count: int) -> tuple[int, list[int]]:
    engine = create_engine(url)
    try:
        workspace, link_ids, _ = await make_links(engine, count)
    finally:
        await engine.dispose()
    return workspace, link_ids


def fill_log(spool: Path, url: str, tmp: Path, args: argparse.Namespace) -> None:
    """Migrate the database, make the links, and log args.clicks clicks on them."""
    migrate.upgrade(url)
    workspace, link_ids = asyncio.run(_links(url, args.links))
    r = random.Random(args.seed)
    visitors = world(r, tmp / "GeoLite2-City.mmdb")
    # A live stream at the target rate, as a writer meets it during a spike or after an
    # outage: the clicks of the last few seconds, not those of months (which would spread a
    # batch over many hours and days, each a rollup row of its own).
    start = time.time() - args.clicks / LIVE_RATE
    times = [start + n / LIVE_RATE for n in range(args.clicks)]
    log = ClickLog(str(spool), interval_s=1, max_bytes=1 << 40)
    clicks = raw_clicks(r, visitors, link_ids, workspace, times, args.new_ua_share)
    for n, click in enumerate(clicks, 1):
        log.append(click)
        if n % SEGMENT_CLICKS == 0:
            log.close()
    log.close()


async def _forward(stream: str, spool: Path) -> StreamForwarder:
    forwarder = StreamForwarder(stream, str(spool), interval_s=1)
    await forwarder.redis.flushdb()
    await forwarder.forward()
    await forwarder.close()
    return forwarder


def forward_log(stream: str, spool: Path, clicks: int) -> None:
    """The local log moved into the stream, as forwarders do; their rate printed."""
    started = time.perf_counter()
    forwarder = asyncio.run(_forward(stream, spool))
    seconds = time.perf_counter() - started
    assert forwarder.forwarded == clicks, f"{forwarder.forwarded:,} of {clicks:,} forwarded"
    print(f"  forwarded {clicks:,} clicks to the stream: {clicks / seconds:,.0f} clicks/s")


def run_writers(
    url: str, spool: Path, tmp: Path, processes: int, clicks: int, batch: int,
    stream: str | None = None, clickhouse: str | None = None,
) -> float:  # fmt: skip
    """`tautan writer --processes N` until the log (or the stream) is written; its clicks/s
    from its first committed click on."""
    env = {**os.environ, "TAUTAN_DATABASE_URL": url, "TAUTAN_SPOOL_DIR": str(spool),
           "TAUTAN_GEOIP_DB": str(tmp / "GeoLite2-City.mmdb"),
           "TAUTAN_SECRET_KEY": "bench-" + "x" * 40, "TAUTAN_FLUSH_BATCH": str(batch)}  # fmt: skip
    if stream:
        env["TAUTAN_CLICK_STREAM"] = stream
    if clickhouse:
        env["TAUTAN_CLICKHOUSE_URL"] = clickhouse
    writer = subprocess.Popen(
        [TAUTAN, "writer", "--processes", str(processes)],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 1800
        first: tuple[float, int] | None = None
        while (written := asyncio.run(_count(url, bool(clickhouse)))) < clicks:
            if writer.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the writers stopped at {written:,} of {clicks:,} clicks")
            if first is None and written:
                first = time.monotonic(), written
            time.sleep(0.2)
        assert first is not None, "written before the first count: use more --clicks"
        return (clicks - first[1]) / (time.monotonic() - first[0])
    finally:
        os.killpg(writer.pid, signal.SIGTERM)
        writer.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200_000)
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--new-ua-share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", help="also on this local PostgreSQL server")
    parser.add_argument("--stream", help="also through the Redis Stream at this URL (emptied)")
    parser.add_argument("--chdb", action="store_true", help="also into embedded ClickHouse")
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings().flush_batch,
        help="TAUTAN_FLUSH_BATCH of the writers",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tautan-writer-bench-"))
    name = f"tautan_writer_bench_{os.getpid()}"
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    try:
        for kind in kinds:
            rates = {}
            for processes in args.processes:
                logs = ["segments", "stream"] if args.stream else ["segments"]
                runs = [(log, "sql") for log in logs] + (
                    [("segments", "chdb")] if args.chdb else []
                )
                for log, store in runs:
                    url = asyncio.run(_database(kind, args.postgres, name, tmp))
                    spool = tmp / f"spool-{kind}-{processes}-{log}-{store}"
                    fill_log(spool, url, tmp, args)
                    stream = args.stream if log == "stream" else None
                    if stream:
                        forward_log(stream, spool, args.clicks)
                    clickhouse = None
                    if store == "chdb":
                        clickhouse = f"chdb://{tmp / f'chdb-{kind}-{processes}'}"
                        migrate.upgrade_stores(
                            Settings(database_url=url, clickhouse_url=clickhouse)
                        )
                    rate = run_writers(
                        url, spool, tmp, processes, args.clicks, args.batch, stream, clickhouse
                    )
                    if clickhouse:
                        stored = asyncio.run(_clickhouse_count(clickhouse))
                        assert stored == args.clicks, f"{stored:,} of {args.clicks:,} in ClickHouse"
                    rates[processes, log, store] = rate
                    base = rates[args.processes[0], "segments", "sql"]
                    into = f"{log} into {'embedded ClickHouse' if clickhouse else kind}"
                    print(
                        f"{kind}, {into}: {processes} writer process(es): {rate:,.0f} clicks/s"
                        f" = {rate / base:.2f} × {args.processes[0]} reading segments into {kind} "
                        f"({args.clicks:,} clicks, {args.new_ua_share:.0%} new User-Agents, "
                        f"batches of {args.batch:,})",
                        flush=True,
                    )
    finally:
        if args.postgres:
            asyncio.run(postgres_database(args.postgres, name, create=False))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
