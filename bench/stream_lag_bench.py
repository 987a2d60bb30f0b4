"""End-to-end lag through the Redis Stream: redirects offered at a steady rate to a serving
node (`tautan serve`, one worker, `TAUTAN_WRITERS=0`) that forwards its clicks to the stream,
and `tautan writer` processes that commit them into embedded ClickHouse (or, with
`--postgres`, PostgreSQL). A click's lag is the time from its redirect being served to its
row being committed.

    .venv/bin/python -m bench.stream_lag_bench [--rate 10000] [--baseline-rate 1000]
        [--duration 20] [--writers 1] [--batch 1000] [--stream redis://127.0.0.1:6379/11]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]

How the lag is measured: while the load lasts, the bench counts the committed clicks every
50 ms (ClickHouse's `count()`; in PostgreSQL the links' counters, committed with the rows).
Once every click is written, it reads each click's `ts` (when its redirect was served) and
sorts them: the n-th click served is taken as the n-th committed (one stream, read in order),
so its lag is the first count that reached n less its `ts`. A count is seen up to one poll
late, so the figures are upper bounds by ~50 ms.

The rate is offered by wrk, each connection pausing between its requests (rounds of 2 s
first set how many connections give the rate; a busy machine then serves a little less, as
wrk waits for each answer). Each run first offers `--baseline-rate` (the lag of a writer
that is never behind: the flush and forwarding intervals), then `--rate`, and prints both
and their ratio. The Redis database is emptied first: give one no one else uses.
Every process it starts listens on 127.0.0.1 and is stopped before it exits."""

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import func, select

from app.clickhouse.client import ClickHouse, chdb_folder, connect
from app.clickhouse.embedded import owner_of
from app.config import Settings
from app.core.database import create_engine
from app.core.tables import Click, Link
from bench.databases import postgres_database
from bench.redirect_bench import BIN, KEY, ROOT, create_links, free_port, server, wrk_script

POLL_S = 0.05


def offer(port: int, seconds: int, connections: int, pause_ms: int, script: Path) -> dict:
    """wrk with `connections` connections, each pausing `pause_ms` between its requests."""
    paced = script.with_suffix(".paced.lua")
    paced.write_text(script.read_text() + f"\ndelay = function() return {pause_ms} end\n")
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "-s", str(paced),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    result = json.loads(out.split("JSON ", 1)[1])
    return {**result, "ok": result["requests"] - result["errors"]}


def pacing(rate: float, port: int, script: Path) -> tuple[int, int, int]:
    """(connections, pause in ms) that offer `rate` requests/s, from rounds of 2 s (a
    request's own time slows each connection a little: up to three tries to come within
    3 %); and how many clicks those rounds made."""
    connections = math.ceil(rate / 200)
    pause_ms = max(1, round(1000 * connections / rate))
    clicks = 0
    for _ in range(3):
        trial = offer(port, 2, connections, pause_ms, script)
        clicks += trial["ok"]
        achieved = trial["ok"] / trial["seconds"]
        if abs(achieved - rate) <= 0.03 * rate:
            break
        connections = max(1, round(connections * rate / achieved))
    return connections, pause_ms, clicks


class Store:
    """Where the writers commit: how many clicks it holds, and when each was served."""

    def __init__(self, database_url: str, clickhouse_url: str | None) -> None:
        self.database_url, self.clickhouse_url = database_url, clickhouse_url
        self.clickhouse: ClickHouse | None = None

    async def count(self) -> int:
        if self.clickhouse_url:
            if self.clickhouse is None:
                self.clickhouse = connect(self.clickhouse_url)
            [(count,)] = await self.clickhouse.query("SELECT count() FROM clicks")
            return int(count)
        engine = create_engine(self.database_url)
        async with engine.connect() as connection:
            count = await connection.scalar(select(func.sum(Link.clicks + Link.bot_clicks)))
        await engine.dispose()
        return int(count or 0)

    async def served_times(self) -> list[float]:
        """When each click was served (seconds since the epoch), in order."""
        if self.clickhouse is not None:
            rows = await self.clickhouse.query(
                "SELECT toUnixTimestamp64Micro(ts) FROM clicks ORDER BY ts"
            )
            return [micros / 1e6 for (micros,) in rows]
        engine = create_engine(self.database_url)
        async with engine.connect() as connection:
            times = (await connection.scalars(select(Click.ts).order_by(Click.ts))).all()
        await engine.dispose()
        return [ts.timestamp() for ts in times]

    async def close(self) -> None:
        if self.clickhouse is not None:
            await self.clickhouse.close()


def polled(count: Callable[[], int], until: Callable[[], bool]) -> list[tuple[float, int]]:
    """(time, count) every POLL_S until `until()`."""
    polls = []
    while not until():
        polls.append((time.time(), count()))
        time.sleep(POLL_S)
    return polls


def lags(served: list[float], polls: list[tuple[float, int]], before: int) -> list[float]:
    """Each click's lag: when the count first reached it, less when it was served."""
    found, j = [], 0
    for n, served_at in enumerate(served, before + 1):
        while j < len(polls) and polls[j][1] < n:
            j += 1
        if j == len(polls):
            break  # not seen committed while polling
        found.append(polls[j][0] - served_at)
    return found


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


@contextmanager
def writers(env: dict[str, str], processes: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [str(BIN / "tautan"), "writer", "--processes", str(processes)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def run_phase(
    label: str, rate: float, args: argparse.Namespace, port: int, script: Path, store: Store
) -> dict:
    loop = asyncio.new_event_loop()
    count = lambda: loop.run_until_complete(store.count())  # noqa: E731
    connections, pause_ms, _ = pacing(rate, port, script)
    settled(count)  # the pacing rounds' clicks written first
    before, started = count(), time.time()
    result: dict = {}
    loaded = threading.Thread(
        target=lambda: result.update(offer(port, args.duration, connections, pause_ms, script))
    )
    loaded.start()
    polls = polled(count, lambda: not loaded.is_alive())
    loaded.join()
    polls += settled(count)
    served = [ts for ts in loop.run_until_complete(store.served_times()) if ts >= started]
    loop.close()
    measured = lags(served, polls, before)
    figures = {
        "label": label, "offered": rate, "served": result["ok"] / result["seconds"],
        "p99_ms": result["p99"], "clicks": result["ok"], "written": polls[-1][1] - before,
        "connections": connections,
    }  # fmt: skip
    if measured:
        figures |= {"lag_p50": statistics.median(measured), "lag_p99": percentile(measured, 0.99),
                    "lag_max": max(measured)}  # fmt: skip
    return figures


def settled(count: Callable[[], int]) -> list[tuple[float, int]]:
    """Polls until the count has not moved for 3 s (at most 2 minutes)."""
    polls: list[tuple[float, int]] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        polls.append((time.time(), count()))
        if len(polls) > 60 and polls[-61][1] == polls[-1][1]:
            break
        time.sleep(POLL_S)
    return polls


def child_pids(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--baseline-rate", type=float, default=1_000)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings().flush_batch,
        help="TAUTAN_FLUSH_BATCH of the writers",
    )
    parser.add_argument("--stream", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--postgres", help="commit into PostgreSQL rather than ClickHouse")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("this benchmark offers its rate with wrk: apt-get install wrk")
    with redis.Redis.from_url(args.stream) as client:
        client.flushdb()
    work = Path(tempfile.mkdtemp(prefix="tautan-lag-bench-"))
    database = f"tautan_lag_bench_{os.getpid()}"
    try:
        if args.postgres:
            url = asyncio.run(postgres_database(args.postgres, database, create=True))
            clickhouse = None
        else:
            url, clickhouse = f"sqlite+aiosqlite:///{work}/links.db", f"chdb://{work}/chdb"
        bench(url, clickhouse, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.postgres:
            asyncio.run(postgres_database(args.postgres, database, create=False))


def bench(url: str, clickhouse: str | None, args: argparse.Namespace, work: Path) -> None:
    port = free_port()
    env = {"TAUTAN_DATABASE_URL": url, "TAUTAN_ADMIN_KEY": KEY, "TAUTAN_WRITERS": "0",
           "TAUTAN_SPOOL_DIR": str(work / "spool"), "TAUTAN_CLICK_STREAM": args.stream,
           "TAUTAN_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONPATH": str(ROOT),
           "TAUTAN_GEO_DOWNLOAD": "false", "TAUTAN_FLUSH_BATCH": str(args.batch)}  # fmt: skip
    if clickhouse:
        env["TAUTAN_CLICKHOUSE_URL"] = clickhouse
    store = Store(url, clickhouse)
    command = [str(BIN / "tautan"), "serve", "--port", str(port), "--workers", "1"]
    results = []
    with server(command, env, port), writers(env, args.writers) as writer:
        create_links(port, "l")
        script = wrk_script(work, "l")
        if clickhouse:  # a writer owns the chdb folder (from its first batch); the bench asks it
            offer(port, 1, 1, 10, script)
            folder = Path(chdb_folder(clickhouse))
            if not wait_for(lambda: owner_of(folder) in child_pids(writer.pid), 60):
                raise SystemExit("no writer took the chdb folder")
        for label, rate in (("baseline", args.baseline_rate), ("target", args.rate)):
            results.append(run_phase(label, rate, args, port, script, store))
        asyncio.run(store.close())
    report(results, args, clickhouse is not None)


def report(results: list[dict], args: argparse.Namespace, clickhouse: bool) -> None:
    into = "embedded ClickHouse" if clickhouse else "PostgreSQL"
    print(f"through the Redis Stream into {into}: 1 serving worker, {args.writers} writer "
          f"process(es), batches of {args.batch:,}, {args.duration} s per rate")  # fmt: skip
    for r in results:
        lag = (f"lag p50 {r['lag_p50']:.2f} s  p99 {r['lag_p99']:.2f} s  max {r['lag_max']:.2f} s"
               if "lag_p99" in r else "lag: no click seen committed")  # fmt: skip
        print(f"  {r['label']:8} offered {r['offered']:>8,.0f}/s  served {r['served']:>8,.0f}/s "
              f"(p99 {r['p99_ms']:.1f} ms, {r['connections']} connections)  written "
              f"{r['written']:,} of {r['clicks']:,}  {lag}")  # fmt: skip
    base, target = results
    if "lag_p99" in base and "lag_p99" in target:
        verdict = ("PASS" if target["lag_p99"] <= 2 else "FAIL") if target["offered"] >= 10_000 \
            else "not judged below 10,000/s"  # fmt: skip
        print(f"  p99 lag at {target['offered']:,.0f}/s ÷ at {base['offered']:,.0f}/s: "
              f"{target['lag_p99'] / base['lag_p99']:.2f}; target p99 ≤ 2 s at 10,000/s "
              f"offered: {verdict}")  # fmt: skip
    # wrk counts the answers it read while the load lasted; those still on their way when
    # it stopped were served and written too (at most one a connection).
    lost = [r for r in results if not r["clicks"] <= r["written"] <= r["clicks"] + r["connections"]]
    if lost:
        raise SystemExit(f"clicks served and written differ: {lost}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
