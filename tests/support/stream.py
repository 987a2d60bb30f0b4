"""The click stream for tests: a database of the machine's Redis per pytest-xdist worker."""

import os
import subprocess
import time
from pathlib import Path

import redis

from tests.support.server import free_port

REDIS = "redis://127.0.0.1:6379"


def stream_url() -> str:
    """TAUTAN_CLICK_STREAM for this test worker, its database emptied: databases 1 to 9
    (the rate-limit tests use 11 and 15)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    url = f"{REDIS}/{1 + worker % 9}"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


def stream_length(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return client.xlen("tautan:clicks")


def entries_written(url: str) -> int:
    """How many entries the writers' group has been handed (0 if it has none yet)."""
    with redis.Redis.from_url(url) as client:
        if not client.exists("tautan:clicks"):
            return 0
        groups = client.xinfo_groups("tautan:clicks")
        return sum(group["entries-read"] or 0 for group in groups)


def stream_state(url: str) -> dict:
    """The stream's length, and its group's pending entries per consumer (for a failure's
    message)."""
    with redis.Redis.from_url(url) as client:
        if not client.exists("tautan:clicks"):
            return {}
        pending = client.xpending("tautan:clicks", "tautan-writers")
        return {"length": client.xlen("tautan:clicks"), "pending": pending}


class ThrowawayRedis:
    """A Redis server of the test's own (appending every write to its file, as a production
    one should), which the test may stop and start on the same port and data."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis.from_url(self.url) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
