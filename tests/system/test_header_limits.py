"""Oversized request headers against a real `tautan serve`: headers over the limit are
refused with 431 before anything is done with them, those under it are cut at intake, and
neither kind leaves the server holding more memory than it held before the flood."""

import time
from pathlib import Path

import httpx2
from sqlalchemy import func, select

from app.core.database import create_engine
from app.core.tables import Click, UserAgent
from app.main import MAX_HEADER_BYTES
from app.redirect.routes import MAX_FORWARDING_LENGTH
from tests.support.databases import run
from tests.support.server import KEY, serving

# Requests of each kind: enough that the leak this guards against (about 2.2 MB a
# request, 339 MB for 150 before the fix) would pass RSS_BOUND_MB twice over.
FLOOD = 60
HUGE = 2 * 1024 * 1024  # bytes of User-Agent, and as many of X-Forwarded-For, per request
# Under the limit together (with the few headers the client adds), each far past its cut.
LARGE = 8192
# What the flood may leave resident, in MB. Measured on a server of about 213 MB (SQLite
# and PostgreSQL alike): the refused 2 MB requests leave nothing, the 8 KB ones under
# 1 MB; before the fix the 2 MB ones, answered with 302, left 339 MB.
RSS_BOUND_MB = 60


def _rss_mb(pid: int) -> float:
    """The process's resident memory, from /proc/PID/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def _recorded(url: str) -> tuple[int, list[str | None], list[str]]:
    """The number of clicks, their stored addresses and the raw User-Agents kept."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(Click))
        ips = list(await connection.scalars(select(Click.ip).order_by(Click.id)))
        agents = list(await connection.scalars(select(UserAgent.user_agent)))
    await engine.dispose()
    return count or 0, ips, agents


def _wait_for_clicks(url: str, want: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (count := run(_recorded(url))[0]) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def _large(i: int, kind: str) -> dict[str, str]:
    """A distinct User-Agent of LARGE characters, and an X-Forwarded-For about as long:
    what the client claimed, then its address as the trusted proxy (the peer) appended it."""
    agent = f"Mozilla/5.0 ({kind} {i:06d}; Linux; Android 14) " + "A" * LARGE
    claimed = f"{kind}-{i:06d}, " + "198.51.100.7, " * (LARGE // 14)
    return {"User-Agent": agent[:LARGE], "X-Forwarded-For": f"{claimed}203.0.113.{i % 250}"}


def test_a_flood_of_huge_headers_is_refused_and_leaves_memory_where_it_was(
    database_url: str, tmp_path: Path
) -> None:
    assert 2 * LARGE + 200 < MAX_HEADER_BYTES < HUGE
    with serving(database_url, tmp_path) as (process, base):
        admin = {"Authorization": f"Bearer {KEY}"}
        # A connection of its own per request: one kept alive while the test waits for the
        # writer may be closed by the server's keep-alive timeout just as it is used again.
        fresh = httpx2.Limits(max_keepalive_connections=0)
        with httpx2.Client(base_url=base, timeout=60, limits=fresh) as http:
            link = {"url": "https://shop.example.com/sale", "slug": "h"}
            assert http.post("/api/links", json=link, headers=admin).status_code == 201
            # Warm up: the writer's parsers, the memos' first entries, the database pool.
            for i in range(20):
                assert http.get("/h", headers=_large(i, "warm")).status_code == 302
            assert _wait_for_clicks(database_url, 20) == 20
            time.sleep(0.5)
            before = _rss_mb(process.pid)

            for i in range(FLOOD):
                huge = {
                    "User-Agent": f"Mozilla/5.0 {i:06d} " + "A" * HUGE,
                    "X-Forwarded-For": f"10.0.{i // 250}.{i % 250}, " + "9" * HUGE,
                }
                answer = http.get("/h", headers=huge)
                assert answer.status_code == 431, answer.text
                assert len(answer.content) < 200
            # A refused request reaches neither the redirect nor the API.
            assert http.post("/api/links", json=link, headers=huge).status_code == 431
            time.sleep(0.5)  # more than a flush interval: anything queued would be written
            assert run(_recorded(database_url))[0] == 20
            after_huge = _rss_mb(process.pid)

            for i in range(FLOOD):
                assert http.get("/h", headers=_large(i, "flood")).status_code == 302
            assert _wait_for_clicks(database_url, 20 + FLOOD) == 20 + FLOOD
            time.sleep(0.5)
            after = _rss_mb(process.pid)
            assert http.get("/h").status_code == 302  # still serving
            assert _wait_for_clicks(database_url, 20 + FLOOD + 1) == 20 + FLOOD + 1
        assert process.poll() is None

    figures = f"RSS {before:.1f} MB, {after_huge:.1f} after 2 MB flood, {after:.1f} after 8 KB"
    print(figures)
    assert after_huge - before < RSS_BOUND_MB, figures
    assert after - before < RSS_BOUND_MB, figures
    count, ips, agents = run(_recorded(database_url))
    assert count == 20 + FLOOD + 1
    # The client's address survived the cut: the chain is kept from its end.
    assert {ip for ip in ips[:-1]} == {"203.0.113.0"}
    assert all(len(agent) <= 512 for agent in agents)
    assert sum(agent.startswith("Mozilla/5.0 (flood ") for agent in agents) == FLOOD
    assert MAX_FORWARDING_LENGTH < LARGE
