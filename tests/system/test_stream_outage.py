"""A real `tautan serve` whose click log is a Redis Stream, while that Redis goes away and
comes back: redirects go on, clicks wait in the local log, and every answered click is
written once when it answers again."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.support.server import serving
from tests.support.stream import ThrowawayRedis, entries_written
from tests.support.traffic import Traffic, create_link


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def metric(base: str, name: str) -> float:
    for line in httpx2.get(f"{base}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_redirects_go_on_while_redis_is_down_and_every_click_is_written_once(
    database_url: str, tmp_path: Path, own_redis: ThrowawayRedis
) -> None:
    env = {"TAUTAN_CLICK_STREAM": own_redis.url, "TAUTAN_FLUSH_INTERVAL_MS": "50"}
    with serving(database_url, tmp_path, env=env) as (_, base):
        create_link(base, "r")
        traffic = Traffic(base, "r")
        time.sleep(1)
        own_redis.stop()
        during = len(traffic.answered)
        time.sleep(1.5)
        assert len(traffic.answered) > during + 50, "redirects stopped with Redis"
        assert metric(base, "tautan_click_stream_failures_total") > 0
        own_redis.start()
        time.sleep(0.5)
        written = traffic.written(database_url)
        answered = traffic.answered
        assert len(answered) > 100 and traffic.unanswered == 0
    assert len(written) == len(set(written)), "a click was written twice"
    assert set(written) == answered
    assert entries_written(own_redis.url) > 0
