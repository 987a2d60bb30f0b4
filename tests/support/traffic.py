"""Redirects sent to a real server from threads, and what reached its database."""

import threading
import time
from collections.abc import Callable

import httpx2
from sqlalchemy import select

from app.core.database import create_engine
from app.core.tables import Click
from tests.support.databases import run
from tests.support.server import KEY, UAS

HUMAN = UAS[2]


async def _referrers(url: str) -> list[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        found = list(await connection.scalars(select(Click.referrer_url)))
    await engine.dispose()
    return found


def referrers(url: str) -> list[str]:
    return run(_referrers(url))


def wait_until(done: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def create_link(base: str, slug: str) -> None:
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as api:
        response = api.post("/api/links", json={"url": "https://shop.example/", "slug": slug})
        assert response.status_code == 201, response.text


class Traffic:
    """Threads sending redirects, each with a Referer of its own, until stopped; which of
    them were answered with a 302, and how many got no answer (a connection cut)."""

    def __init__(self, base: str, slug: str, threads: int = 4, name: str = "news") -> None:
        self.name = name  # in the Referers: two Traffics' clicks tell apart
        self.answered: set[str] = set()
        self.unanswered = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send, args=(base, slug, n)) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, base: str, slug: str, thread: int) -> None:
        with httpx2.Client(base_url=base, timeout=10) as client:
            for n in range(20_000):  # bounded; stop() ends it sooner
                if self._stop.is_set():
                    return
                referer = f"https://{self.name}.example/{thread}/{n}"
                try:
                    response = client.get(
                        f"/{slug}", headers={"User-Agent": HUMAN, "Referer": referer}
                    )
                except httpx2.TransportError:
                    with self._lock:
                        self.unanswered += 1
                    continue
                if response.status_code == 302:
                    with self._lock:
                        self.answered.add(referer)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def written(
        self, database_url: str, stored: Callable[[str], list[str]] = referrers
    ) -> list[str]:
        """Stop, then the Referers of the click rows (those `stored` reads at
        `database_url`) once there are as many as answered clicks, and a second more:
        anything written twice would be by then."""
        self.stop()
        assert wait_until(lambda: len(stored(database_url)) >= len(self.answered))
        time.sleep(1)
        return stored(database_url)
