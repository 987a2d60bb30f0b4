"""The link cache under unknown-slug floods, on the real database: unknown slugs never push
out links, links used lately outlive links not used, and slugs missed at once are read
together, at most one statement each (BEGIN included)."""

import asyncio
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient

from app.core.clock import utcnow
from app.core.database import create_sessionmaker
from app.core.tables import Link
from app.redirect.cache import MAX_LINKS, MAX_UNKNOWN, LinkCache
from tests.support.app import (
    concurrently,
    create_link,
    link_reads,
    run_in_transaction,
    state_of,
    statuses,
)


def test_a_flood_of_unknown_slugs_leaves_known_links_cached(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="known")
    assert client.head("/known").status_code == 302  # read once, cached
    cache: LinkCache = state_of(client).link_cache
    flood = max(MAX_LINKS, MAX_UNKNOWN) + 1  # more than the cache could hold of anything

    async def scan() -> None:
        for start in range(0, flood, 2000):
            slugs = (f"scan-{n}" for n in range(start, min(start + 2000, flood)))
            assert not any(await asyncio.gather(*map(cache.get, slugs)))

    assert client.portal is not None
    client.portal.call(scan)
    with link_reads(client) as reads:
        assert client.head("/known").status_code == 302
        assert client.head(f"/scan-{flood - 1}").status_code == 404  # remembered
    assert reads == []
    # The unknown slugs were kept as far as their own room goes: the first are forgotten.
    with link_reads(client) as reads:
        assert client.head("/scan-0").status_code == 404
    assert len(reads) in (1, 2)  # (BEGIN and) the SELECT


def test_links_used_lately_outlive_links_not_used(client: TestClient, writer: dict) -> None:
    for slug in ("old", "used", "new"):
        create_link(client, writer, slug=slug)
    engine = state_of(client).engine
    cache = LinkCache(create_sessionmaker(engine, deferred=True), 30, max_links=2)
    assert client.portal is not None

    def selects(*slugs: str) -> int:
        """The SELECTs that following `slugs`, in order, costs."""
        with link_reads(client) as reads:
            for slug in slugs:
                target = client.portal.call(cache.get, slug)  # type: ignore[union-attr]
                assert target is not None and target.location == "https://shop.example.com/"
        return sum(statement.lstrip().upper().startswith("SELECT") for statement in reads)

    assert selects("used", "old") == 2
    assert selects("used") == 0  # used since it was read: it stays when room is needed
    assert selects("new") == 1  # the cache is full: "old", not used since, makes room
    assert selects("used", "new") == 0
    assert selects("old") == 1


def test_the_links_kept_are_bounded_in_bytes_too(client: TestClient, writer: dict) -> None:
    """Links may carry 4 KB destinations and preview pages of several: the cache counts what
    they weigh, not only how many they are."""
    slugs = [f"heavy-{n}" for n in range(6)]
    for slug in slugs:
        create_link(
            client, writer, slug=slug, url="https://shop.example.com/" + "p" * 3000,
            og_title="T" * 200, og_description="D" * 1000,
        )  # fmt: skip
    engine = state_of(client).engine
    read = create_sessionmaker(engine, deferred=True)
    one = client.portal.call(LinkCache(read, 30).get, slugs[0])  # type: ignore[union-attr]
    assert one is not None and one.weight > 5000
    cache = LinkCache(read, 30, max_bytes=3 * one.weight + 100)
    for slug in slugs:
        assert client.portal.call(cache.get, slug) is not None  # type: ignore[union-attr]
    assert len(cache._links) == 3  # the three most recent: the others made room
    assert cache._bytes == sum(e.target.weight for e in cache._links.values())
    assert cache._bytes <= 3 * one.weight + 100
    cache.forget(slugs[-1])
    assert cache._bytes == 2 * one.weight


def test_slugs_missed_at_once_cost_at_most_one_statement_each(client: TestClient) -> None:
    unknown = [f"/nope-{n}" for n in range(150)]
    pool = state_of(client).engine.sync_engine.pool
    checkouts: list[object] = []

    def checkout(*_: Any) -> None:
        checkouts.append(1)

    event.listen(pool, "checkout", checkout)
    try:
        with link_reads(client) as reads:
            answers = concurrently(client, unknown * 3)  # each slug asked three times at once
    finally:
        event.remove(pool, "checkout", checkout)
    assert statuses(answers) == {404: 450}
    assert 0 < len(reads) <= len(unknown)
    # Nor a pooled connection each: on PostgreSQL a checkout is itself three round trips
    # (the pool's pre-ping), and a flood must leave connections to the API and the writer.
    assert 0 < len(checkouts) <= len(unknown) / 10
    with link_reads(client) as reads:
        assert statuses(concurrently(client, unknown)) == {404: 150}  # remembered
    assert reads == []


def test_a_link_written_by_any_code_path_is_forgotten_once_committed(
    client: TestClient, writer: dict
) -> None:
    """The cache forgets a link whatever wrote it through the app's sessions: no write path
    has to remember to say so (here, one that is not the API's)."""
    create_link(client, writer, slug="moved", url="https://a.example/")
    assert client.get("/moved").headers["location"] == "https://a.example/"

    async def move(session: AsyncSession) -> None:
        link = await session.scalar(select(Link).where(Link.slug == "moved"))
        assert link is not None
        link.url = "https://b.example/"

    run_in_transaction(client, move)
    assert client.get("/moved").headers["location"] == "https://b.example/"

    async def archive(session: AsyncSession) -> None:
        link = await session.scalar(select(Link).where(Link.slug == "moved"))
        assert link is not None
        link.archived_at = utcnow()

    run_in_transaction(client, archive)
    assert client.get("/moved").status_code == 404
