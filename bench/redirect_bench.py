"""Redirect throughput: a bare Starlette 302 (the ceiling) against `tautan serve` with
tracking on, loaded in turn (A B A B …) with the same concurrency, duration and realistic
headers (50,000 visitors; 5 % of User-Agents never seen before, as in-app browsers make
them). For each Tautan round it also counts the clicks its writer processes committed
while the load lasted, and how far behind they were when it ended. Then checks that every
302 a client received is a click row: what a stopped server left in its click log is
written by starting it once more.

    .venv/bin/python bench/redirect_bench.py [--duration 10] [--connections 64] [--rounds 3]
        [--workers 1 2] [--writers 1] [--warmup 2] [--exact 3]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]
        [--stream redis://127.0.0.1:6379/10] [--domain] [--targeted]

With `--stream` (a Redis database the bench may empty), Tautan's click log is that Redis
Stream (TAUTAN_CLICK_STREAM): serving processes forward their clicks to it, writers read it.
With `--domain`, each round also loads links on a branded domain, asked for by its Host, and
compares them with the base host's links. With `--targeted`, each round also loads links
with 5 rules (device, OS, country and language conditions, none of which the load's
visitors meet, so that every rule is tried) and 2 variants, against a real `.mmdb`, and
compares them with the plain links.

Uses `wrk` when installed (`apt-get install wrk`), else a built-in asyncio client (which
is slower than the servers, so its figures measure the client more than the server).
Every server it starts listens on 127.0.0.1 and is stopped before it exits."""

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.clicks.log import LogSize  # noqa: E402
from app.clicks.stream import STREAM  # noqa: E402
from app.core.database import create_engine  # noqa: E402
from app.core.tables import Click, Link  # noqa: E402
from bench.databases import postgres_database  # noqa: E402
from bench.stats_bench import world  # noqa: E402

BIN = Path(sys.executable).parent
KEY = "tk_redirect_bench_key"
LINKS = 100
BRAND = "go.bench.test"
# Rules the load's visitors (phones with no Accept-Language, from 198.x addresses) never
# meet: each redirect tries every condition (a memoised User-Agent, a country lookup, the
# language), then picks a variant.
RULES = [
    {"name": "tv", "if": {"device": ["tv", "console"]}, "url": "https://shop.example.com/tv"},
    {"name": "windows", "if": {"os": ["Windows"]}, "url": "https://shop.example.com/pc"},
    {"name": "android-id", "if": {"os": ["Android"], "country": ["ID"]},
     "url": "https://play.google.com/store/apps/x"},
    {"name": "german", "if": {"language": ["de"]}, "url": "https://shop.example.com/de"},
    {"name": "japan", "if": {"country": ["JP"]}, "url": "https://shop.example.com/jp"},
]  # fmt: skip
VARIANTS = [
    {"name": "a", "url": "https://shop.example.com/a", "weight": 50},
    {"name": "b", "url": "https://shop.example.com/b", "weight": 50},
]
AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.4.32.98 (iPhone15,2; iOS 17_5; en_US; en; scale=3.00; 1179x2556; 612379432)",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; 23021RAAEG Build/TKQ1.221114.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/471.0.0.35.83;]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
]
REFERERS = ["https://l.instagram.com/", "https://l.facebook.com/", "https://t.co/abc", ""]
WRK_SCRIPT = """
local paths, agents, referers = {}, {%(agents)s}, {%(referers)s}
for i = 1, %(links)d do paths[i] = "/%(prefix)s" .. i end
local n = 0
request = function()
  n = n + 1
  local agent = agents[n %% #agents + 1]
  if n %% 20 == 0 then agent = agent .. " App/" .. math.random(1e9) end
  local visitor = n * 7919 %% 50000
  return wrk.format("GET", paths[n %% #paths + 1], {%(host)s
    ["User-Agent"] = agent, ["Referer"] = referers[n %% #referers + 1],
    ["X-Forwarded-For"] = "198." .. math.floor(visitor / 250) .. "." .. (visitor %% 250) .. ".7"})
end
done = function(summary, latency, requests)
  io.write(string.format('\\nJSON {"requests": %%d, "errors": %%d, "seconds": %%f, "p50": %%f, "p99": %%f}\\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wrk_script(work: Path, prefix: str, host: str | None = None) -> Path:
    """Requests for the links of `prefix`, with `host` as their Host header if given."""
    script = work / f"{prefix}bench.lua"
    quote = lambda items: ", ".join(json.dumps(i) for i in items)  # noqa: E731
    header = f'["Host"] = {json.dumps(host)},' if host else ""
    script.write_text(WRK_SCRIPT % {"agents": quote(AGENTS), "referers": quote(REFERERS),
                                    "links": LINKS, "prefix": prefix, "host": header})  # fmt: skip
    return script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    # Its output is kept (access logs are off in both), so that a server that does not
    # start says why.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        said = log.read().decode(errors="replace")[-4000:]
                        raise RuntimeError(f"{command} did not start:\n{said}") from None
                    time.sleep(0.1)
            yield process
        finally:
            # The server and its workers, nothing else (gone already when it did not
            # start). A writer that fell behind spools its backlog before it exits: give
            # it time.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=600)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def rss_mb(pid: int) -> tuple[list[float], list[float]]:
    """Resident memory, in MB, of each serving process (the workers when uvicorn runs
    several: their supervisor serves nothing; else the process itself) and of each writer."""
    serving, writers = [], []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"app.clicks.writers" in command:
            writers.append(_rss_mb(int(child)))
        elif b"spawn_main" in command:
            serving.append(_rss_mb(int(child)))
    return serving or [_rss_mb(pid)], writers


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def log_state(port: int) -> tuple[float, float]:
    """The click log's lag (seconds) and depth (clicks), from the server's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")
    return float(values["tautan_click_log_lag_seconds"]), float(values["tautan_queue_depth"])


def load_wrk(port: int, seconds: int, connections: int, script: Path) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    result = json.loads(out.split("JSON ", 1)[1])
    return {"ok": result["requests"] - result["errors"], **result}


async def _load_builtin(
    port: int, seconds: float, connections: int, prefix: str, host: str = "127.0.0.1"
) -> dict:
    """Keep-alive HTTP/1.1 on `connections` sockets until the deadline; in-flight
    requests are awaited, so every response sent is counted."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def one_connection(seed: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ok, n = 0, seed
        while time.monotonic() < deadline:
            n += 1
            request = (
                f"GET /{prefix}{n % LINKS + 1} HTTP/1.1\r\nHost: {host}\r\n"
                f"User-Agent: {AGENTS[n % len(AGENTS)]}\r\nReferer: {REFERERS[n % len(REFERERS)]}\r\n"
                f"X-Forwarded-For: 198.{n * 7919 % 50000 // 250}.{n * 7919 % 250}.7\r\n\r\n"
            )
            started = time.perf_counter()
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    (
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    b"0",
                )
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            ok += head.startswith(b"HTTP/1.1 302")
        writer.close()
        return ok

    started = time.monotonic()
    counts = await asyncio.gather(*(one_connection(i * 7919) for i in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "ok": sum(counts),
        "requests": len(latencies),
        "seconds": elapsed,
        "p50": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
    }


def load(
    port: int,
    seconds: int,
    connections: int,
    script: Path | None,
    prefix: str,
    host: str = "127.0.0.1",
) -> dict:
    if script is not None:
        return load_wrk(port, seconds, connections, script)
    return asyncio.run(_load_builtin(port, seconds, connections, prefix, host))


async def _count_rows(url: str, prefix: str) -> int:
    """Click rows of the links whose slugs start with `prefix`."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(Click).join(Link, Link.id == Click.link_id)
            .where(Link.slug.startswith(prefix))
        )  # fmt: skip
    await engine.dispose()
    return count or 0


def create_links(port: int, prefix: str, domain: str | None = None, **extra: object) -> None:
    """LINKS links of slugs `prefix`N, on `domain` (registered first) if given, with the
    `extra` fields of a link body."""
    auth = {"Authorization": f"Bearer {KEY}"}
    on = {"domain": domain} if domain else {}
    if domain:
        response = httpx.post(f"http://127.0.0.1:{port}/api/domains", json={"host": domain},
                              headers=auth, timeout=60)  # fmt: skip
        response.raise_for_status()
    links = [
        {"url": f"https://shop.example.com/p/{i}", "slug": f"{prefix}{i}", "utm_source": "ig",
         "utm_campaign": "bench", **on, **extra}
        for i in range(1, LINKS + 1)
    ]  # fmt: skip
    response = httpx.post(f"http://127.0.0.1:{port}/api/links/bulk", json={"links": links},
                          headers=auth, timeout=60)  # fmt: skip
    response.raise_for_status()


def unwritten(log_size: LogSize, stream: str | None) -> int:
    """Clicks in the local log, and (with a stream) entries in the stream."""
    if not stream:
        return log_size.measure()[0]
    with redis.Redis.from_url(stream) as client:
        return log_size.measure()[0] + client.xlen(STREAM)


def bench_database(url: str, label: str, args: argparse.Namespace, work: Path) -> None:
    print(f"\n== {label} ==")
    for workers in args.workers:
        ceiling_port, tautan_port = free_port(), free_port()
        ceiling = [str(BIN / "uvicorn"), "bench.ceiling_app:app", "--port", str(ceiling_port),
                   "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                   "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
        tautan = [
            str(BIN / "tautan"),
            "serve",
            "--port",
            str(tautan_port),
            "--workers",
            str(workers),
        ]
        env = {"TAUTAN_DATABASE_URL": url, "TAUTAN_ADMIN_KEY": KEY, "TAUTAN_SPOOL_DIR": str(work / "spool"),
               "TAUTAN_WRITERS": str(args.writers),
               "TAUTAN_BASE_URL": f"http://127.0.0.1:{tautan_port}", "PYTHONPATH": str(ROOT)}  # fmt: skip
        if args.targeted:  # country rules look addresses up in a real database
            env["TAUTAN_GEOIP_DB"] = str(work / "geo.mmdb")
            world(random.Random(1), work / "geo.mmdb")
        if args.stream:
            env["TAUTAN_CLICK_STREAM"] = args.stream
            with redis.Redis.from_url(args.stream) as client:
                client.flushdb()
        # Each configuration loads links of its own, so its click rows can be told apart.
        loaded, exact_links, branded = f"w{workers}-", f"x{workers}-", f"b{workers}-"
        targeted = f"t{workers}-"
        script = wrk_script(work, loaded) if shutil.which("wrk") else None
        branded_script = wrk_script(work, branded, BRAND) if script and args.domain else None
        targeted_script = wrk_script(work, targeted) if script and args.targeted else None
        results: dict[str, list[dict]] = {"ceiling": [], "tautan": []}
        # (name, port, script, slugs, Host): what each round loads, in turn.
        loads = [("ceiling", ceiling_port, script, loaded, "127.0.0.1"),
                 ("tautan", tautan_port, script, loaded, "127.0.0.1")]  # fmt: skip
        if args.domain:  # links on a branded domain, asked for with its Host
            results["branded"] = []
            loads.append(("branded", tautan_port, branded_script, branded, BRAND))
        if args.targeted:  # links with rules and variants
            results["targeted"] = []
            loads.append(("targeted", tautan_port, targeted_script, targeted, "127.0.0.1"))
        with (
            server(ceiling, {"PYTHONPATH": str(ROOT)}, ceiling_port),
            server(tautan, env, tautan_port) as process,
        ):
            create_links(tautan_port, loaded)
            create_links(tautan_port, exact_links)
            if args.domain:
                create_links(tautan_port, branded, BRAND)
            if args.targeted:
                create_links(tautan_port, targeted, rules=RULES, variants=VARIANTS)
            if args.warmup:  # warm caches and parsers
                for _, port, its_script, slugs, host in loads:
                    load(port, args.warmup, args.connections, its_script, slugs, host)
            for round_ in range(args.rounds):
                # The writer still works through the last round's clicks during the next:
                # Tautan's two loads take turns at following the ceiling's.
                tracked = loads[1:] if round_ % 2 == 0 else loads[:0:-1]
                for name, port, its_script, slugs, host in [loads[0], *tracked]:
                    before = asyncio.run(_count_rows(url, loaded)) if name == "tautan" else 0
                    result = load(port, args.duration, args.connections, its_script, slugs, host)
                    if name == "tautan":  # committed while the load lasted, and the lag left
                        result["committed"] = asyncio.run(_count_rows(url, loaded)) - before
                        result["lag"], result["depth"] = log_state(port)
                    results[name].append(result)
            # The built-in client waits for every response it asked for, so it knows
            # exactly how many 302s were served: each must be a click row.
            exact = asyncio.run(_load_builtin(tautan_port, args.exact, 16, exact_links))
            memory, writer_memory = rss_mb(process.pid)
            stopping = time.monotonic()
        # Leaving `server` sent SIGTERM: the writers wrote what they could in their time.
        drain_s = time.monotonic() - stopping
        log_size = LogSize(str(work / "spool"))
        left = unwritten(log_size, args.stream)
        catch_up_s = 0.0
        if left:  # the next start writes it
            started = time.monotonic()
            with server(tautan, {**env, "TAUTAN_WRITERS": "1"}, tautan_port):
                while unwritten(log_size, args.stream) and time.monotonic() - started < 600:
                    time.sleep(0.2)
            catch_up_s = time.monotonic() - started
        loaded_rows = asyncio.run(_count_rows(url, loaded))
        exact_rows = asyncio.run(_count_rows(url, exact_links))
        received = sum(r["ok"] for r in results["tautan"])
        rps = {k: statistics.median(r["ok"] / r["seconds"] for r in v) for k, v in results.items()}
        p50 = {k: statistics.median(r["p50"] for r in v) for k, v in results.items()}
        p99 = {k: statistics.median(r["p99"] for r in v) for k, v in results.items()}
        print(f"-- {workers} worker(s), {args.writers} writer(s), {args.connections} connections, {args.rounds}×{args.duration}s, "
              f"{'wrk' if script else 'built-in client'}, click log: {'stream' if args.stream else 'segments'}")  # fmt: skip
        for name in results:
            print(f"{name:8} {rps[name]:>9,.0f} req/s   p50 {p50[name]:6.2f} ms   p99 {p99[name]:6.2f} ms"
                  "   rounds: " + ", ".join(f"{r['ok'] / r['seconds']:,.0f}" for r in results[name]))  # fmt: skip
        ratio, p99_ratio = rps["tautan"] / rps["ceiling"], p99["tautan"] / p99["ceiling"]
        committed = statistics.median(r["committed"] / r["seconds"] for r in results["tautan"])
        lag = max(r["lag"] for r in results["tautan"])
        print(
            f"tracked / ceiling: {ratio:.2f} (target ≥ 0.95)   p99 ratio {p99_ratio:.2f} (target ≤ 3)"
        )
        if args.domain:
            print(f"branded domain / base host: {rps['branded'] / rps['tautan']:.2f} req/s, "
                  f"p99 {p99['branded'] / p99['tautan']:.2f}")  # fmt: skip
        if args.targeted:
            print(f"5 rules and 2 variants / plain links: {rps['targeted'] / rps['tautan']:.2f} "
                  f"req/s (target ≥ 0.9), p99 {p99['targeted'] / p99['tautan']:.2f}")  # fmt: skip
        print(f"committed while the load lasted: {committed:,.0f} clicks/s = {committed / rps['ceiling']:.2f} "
              f"× ceiling (target ≥ 0.5); rounds: "
              + ", ".join(f"{r['committed'] / r['seconds']:,.0f}" for r in results["tautan"]))  # fmt: skip
        print(f"writer lag at the end of a round: at most {lag:.1f} s (target ≤ 2 s); clicks "
              "waiting then: " + ", ".join(f"{r['depth']:,.0f}" for r in results["tautan"]))  # fmt: skip
        print(f"resident memory after the run: serving {', '.join(f'{m:.0f}' for m in memory)} MB "
              f"(target ≤ 120 MB), writers {', '.join(f'{m:.0f}' for m in writer_memory)} MB")  # fmt: skip
        lost = exact_rows - exact["ok"]
        print(f"exact run: {exact['ok']:,} 302s received, {exact_rows:,} click rows -> "
              + ("0 lost" if not lost else f"MISMATCH ({lost:+,})"))  # fmt: skip
        print(
            f"shutdown took {drain_s:.1f} s and left {left:,} clicks (stream: entries) in the log, "
            f"written by the next start in {catch_up_s:.1f} s (counted above)"
        )
        print(
            f"load runs: {received:,} 302s counted by the load generator (warm-up not counted; "
            f"it drops requests in flight at its deadline), {loaded_rows:,} click rows"
        )
        if lost:
            sys.exit(f"{lost:+,} click rows against the 302s received")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--writers",
        type=int,
        default=1,
        help="TAUTAN_WRITERS during the load (0: the redirect alone; written after the run)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of untimed load per server first (0: none)"
    )
    parser.add_argument(
        "--exact", type=float, default=3, help="seconds of the exact run (every 302 a click row)"
    )
    parser.add_argument(
        "--postgres", help="also run against this PostgreSQL server (a fresh database is made)"
    )
    parser.add_argument("--stream", help="the click log as the Redis Stream at this URL (emptied)")
    parser.add_argument(
        "--domain",
        action="store_true",
        help=f"also load links on a branded domain ({BRAND}, by its Host) in each round",
    )
    parser.add_argument(
        "--targeted",
        action="store_true",
        help="also load links with 5 rules and 2 variants in each round",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tautan-bench-"))
    try:
        bench_database(f"sqlite+aiosqlite:///{work}/bench.db", "SQLite", args, work)
        if args.postgres:
            name = f"tautan_redirect_bench_{os.getpid()}"
            url = asyncio.run(postgres_database(args.postgres, name, create=True))
            try:
                bench_database(url, "PostgreSQL", args, work)
            finally:
                asyncio.run(postgres_database(args.postgres, name, create=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
