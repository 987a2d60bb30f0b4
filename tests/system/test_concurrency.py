"""Two real `tautan serve` processes on one database, as a deployment of several would be:
concurrent creates of one slug give it to exactly one of them, a link PATCHed while it is
being followed is only ever served whole, and max_clicks holds across processes."""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from app import migrate
from app.core.database import create_engine
from app.core.tables import Link
from tests.support.app import DESKTOP_UA
from tests.support.databases import empty_database, run
from tests.support.server import KEY, serving

TTL_S = 0.5  # how long each process trusts its cached links here
ADMIN = {"Authorization": f"Bearer {KEY}"}
PERSON = {"User-Agent": DESKTOP_UA}


@pytest.fixture(scope="module")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of this module's own: its servers outlive a test, and each test uses
    links of its own."""
    url = empty_database(backend, tmp_path_factory.mktemp("db"), "concurrency")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def servers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The base URLs of two `tautan serve` processes sharing `database_url`."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TAUTAN_LINK_CACHE_TTL_S", str(TTL_S))
        # One after the other: the second finds the admin key the first created.
        with (
            serving(database_url, tmp_path_factory.mktemp("a")) as (_, a),
            serving(database_url, tmp_path_factory.mktemp("b")) as (_, b),
        ):
            yield a, b


def send_all(requests: list[tuple[str, str, dict[str, Any] | None]]) -> list[httpx2.Response]:
    """(method, url, json body) requests, all sent at once."""

    async def go() -> list[httpx2.Response]:
        async with httpx2.AsyncClient(timeout=60, headers={**ADMIN, **PERSON}) as http:
            return await asyncio.gather(
                *(http.request(method, url, json=body) for method, url, body in requests)
            )

    return asyncio.run(go())


def spread(bases: tuple[str, str], path: str, count: int) -> list[str]:
    return [f"{bases[i % 2]}{path}" for i in range(count)]


async def _served_clicks(database_url: str, slug: str) -> int:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        served = await connection.scalar(select(Link.served_clicks).where(Link.slug == slug))
    await engine.dispose()
    return served


def test_one_of_fifty_concurrent_creates_of_a_slug_wins(servers: tuple[str, str]) -> None:
    answers = send_all(
        [
            (
                "POST",
                f"{base}/api/links",
                {"url": "https://shop.example.com/", "slug": "launch", "title": f"attempt {i}"},
            )  # fmt: skip
            for i, base in enumerate(spread(servers, "", 50))
        ]
    )
    assert Counter(a.status_code for a in answers) == {201: 1, 409: 49}
    assert {a.text for a in answers if a.status_code == 409} == {
        '{"error":{"code":"slug_taken","message":"the slug \'launch\' is taken","details":null}}'
    }
    (winner,) = [a.json() for a in answers if a.status_code == 201]
    for base in servers:
        stored = httpx2.get(f"{base}/api/links/launch", headers=ADMIN).json()
        assert (stored["id"], stored["title"]) == (winner["id"], winner["title"])
        listed = httpx2.get(f"{base}/api/links?q=launch", headers=ADMIN).json()["links"]
        assert [link["slug"] for link in listed] == ["launch"]


def test_a_link_patched_while_followed_is_only_served_whole(servers: tuple[str, str]) -> None:
    a, b = servers
    created = httpx2.post(
        f"{a}/api/links",
        json={
            "url": "https://shop.example.com/v0",
            "slug": "live",
            "utm_source": "ig",
            "utm_campaign": "c0",
            "utm_content": "k0",
        },  # fmt: skip
        headers=ADMIN,
    ).json()
    destinations = {created["destination"]}
    served: list[str] = []
    patching = threading.Event()
    patching.set()

    def follow(base: str) -> None:
        with httpx2.Client(base_url=base, headers=PERSON, timeout=10) as http:
            for _ in range(20_000):  # bounded; ends when the patching does
                if not patching.is_set():
                    return
                served.append(http.get("/live").headers["location"])

    followers = [threading.Thread(target=follow, args=(base,)) for base in (a, b, a, b)]
    for thread in followers:
        thread.start()
    try:
        with httpx2.Client(headers=ADMIN, timeout=10) as api:
            # Each version changes the URL and two UTM fields together, alternately
            # through either process.
            for i in range(1, 41):
                change = {"url": f"https://shop.example.com/v{i}", "utm_campaign": f"c{i}",
                          "utm_content": f"k{i}"}  # fmt: skip
                patched = api.patch(f"{servers[i % 2]}/api/links/live", json=change)
                assert patched.status_code == 200, patched.text
                destinations.add(patched.json()["destination"])
    finally:
        patching.clear()
        for thread in followers:
            thread.join(timeout=60)
    assert set(served) <= destinations  # never the new URL with an old campaign, say
    assert len(set(served)) > 1, "the followers never saw the link change"
    # The last PATCH went through `a`: it serves it at once, `b` once its cached copy ages.
    last = "https://shop.example.com/v40?utm_source=ig&utm_campaign=c40&utm_content=k40"
    assert httpx2.get(f"{a}/live").headers["location"] == last
    deadline = time.monotonic() + 10
    while httpx2.get(f"{b}/live").headers["location"] != last:
        assert time.monotonic() < deadline, "the other process kept an old version"
        time.sleep(0.05)


def test_max_clicks_holds_across_processes(servers: tuple[str, str], database_url: str) -> None:
    a, b = servers
    link = {"url": "https://shop.example.com/drop", "slug": "drop", "max_clicks": 22}
    assert httpx2.post(f"{a}/api/links", json=link, headers=ADMIN).status_code == 201
    for base in servers:  # both processes cache the link; each HEAD takes a slot, no click
        assert httpx2.head(f"{base}/drop").status_code == 302

    answers = send_all([("GET", url, None) for url in spread(servers, "/drop", 120)])
    assert Counter(a.status_code for a in answers) == {302: 20, 410: 100}
    assert {a.headers["location"] for a in answers if a.status_code == 302} == {link["url"]}
    assert run(_served_clicks(database_url, "drop")) == 22

    # The clicks recorded are the 20 redirects (a 410 is no click), from both writers.
    deadline = time.monotonic() + 15
    while (clicks := httpx2.get(f"{b}/api/links/drop", headers=ADMIN).json()["clicks"]) < 20:
        assert time.monotonic() < deadline, f"only {clicks} clicks written"
        time.sleep(0.1)
    assert clicks == 20

    # A raised cap lets exactly the new slots through, whichever process serves them and
    # whatever the other one still has cached.
    raised = httpx2.patch(f"{a}/api/links/drop", json={"max_clicks": 32}, headers=ADMIN)
    assert raised.status_code == 200
    answers = send_all([("GET", url, None) for url in spread(servers, "/drop", 60)])
    assert Counter(a.status_code for a in answers) == {302: 10, 410: 50}
    assert run(_served_clicks(database_url, "drop")) == 32
