import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import httpx2
import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.redirect.routes import split_query
from tests.support.app import (
    BASE_URL,
    DESKTOP_UA,
    PEER,
    check_capped_links_without_database,
    concurrently,
    create_link,
    make_key,
    served_clicks,
    state_of,
    statuses,
)
from tests.support.clicks import clicks_of, link_clicks, with_writer

DESTINATION = "https://shop.example.com/sale?color=red&utm_source=ig"


def test_redirect_sends_the_destination_uncached(client: TestClient, writer: dict) -> None:
    create_link(
        client, writer, slug="s", url="https://shop.example.com/sale?color=red", utm_source="ig"
    )
    response = client.get("/s")
    assert response.status_code == 302
    assert response.headers["location"] == DESTINATION
    assert response.headers["cache-control"] == "private, no-cache"
    head = client.head("/s")
    assert (head.status_code, head.headers["location"]) == (302, DESTINATION)


@pytest.mark.parametrize(
    ("code", "limits", "caching"),
    [
        (301, {}, "private, max-age=30"),
        (302, {}, "private, no-cache"),
        (307, {}, "private, no-cache"),
        (308, {}, "private, max-age=30"),
        # A browser must ask again for a link that may stop: it would go on after the stop.
        (301, {"expires_at": "2099-01-01T00:00:00Z"}, "private, no-cache"),
        (308, {"max_clicks": 10}, "private, no-cache"),
        (301, {"starts_at": "2020-01-01T00:00:00Z"}, "private, no-cache"),
    ],
)
def test_redirect_code_per_link(
    client: TestClient, writer: dict, code: int, limits: dict, caching: str
) -> None:
    create_link(client, writer, slug="c", redirect_code=code, **limits)
    response = client.get("/c")
    assert response.status_code == code
    assert response.headers["cache-control"] == caching


@pytest.mark.parametrize(
    ("url", "forward", "path", "expected"),
    [
        ("https://d.example/", True, "/f?fbclid=abc&x=1", "https://d.example/?fbclid=abc&x=1"),
        ("https://d.example/?a=1", True, "/f?b=2", "https://d.example/?a=1&b=2"),
        ("https://d.example/p#top", True, "/f?b=2", "https://d.example/p?b=2#top"),
        ("https://d.example/", False, "/f?fbclid=abc", "https://d.example/"),
        ("https://d.example/", True, "/f?qr=1&b=2&tautan_no_track=1", "https://d.example/?b=2"),
        ("https://d.example/", True, "/f?qr=1", "https://d.example/"),
        ("https://d.example/", True, "/f?q=%3Cscript%3E", "https://d.example/?q=%3Cscript%3E"),
    ],
)
def test_query_forwarding(
    client: TestClient, writer: dict, url: str, forward: bool, path: str, expected: str
) -> None:
    create_link(client, writer, slug="f", url=url, forward_query=forward)
    assert client.get(path).headers["location"] == expected


def test_forwarded_query_cannot_break_out_of_the_location_header() -> None:
    query, flags = split_query(b"a=1\r\nSet-Cookie: x=1&qr=1 ")
    assert query == b"a=1%0D%0ASet-Cookie:%20x=1"
    assert flags == {b"qr": b"1 "}


def test_unknown_slug_is_a_404_page(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert client.get("/api").status_code == 404  # reserved words go to the API
    assert client.get("/api").headers["content-type"] == "application/json"


def _at(**delta: int) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    "window",
    [{"starts_at": _at(days=1)}, {"expires_at": _at(seconds=-1), "starts_at": _at(days=-1)}],
    ids=["not-started", "expired"],
)
def test_inactive_links_go_to_the_fallback_or_410(
    client: TestClient, writer: dict, window: dict
) -> None:
    create_link(client, writer, slug="plain", **window)
    create_link(client, writer, slug="fb", fallback_url="https://shop.example.com/ended", **window)
    assert client.get("/plain").status_code == 410
    fallback = client.get("/fb")
    assert (fallback.status_code, fallback.headers["location"]) == (
        302,
        "https://shop.example.com/ended",
    )


def link_clicks_once_written(client: TestClient, slug: str, want: int) -> int:
    """The link's `clicks` once the writer has counted `want` (or given up waiting)."""
    deadline = time.monotonic() + 10
    while link_clicks(client, slug) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # any click beyond `want` would be written by now
    return link_clicks(client, slug)


def test_max_clicks_is_exact_under_concurrent_clicks(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="m", url="https://shop.example.com/drop", max_clicks=7)
    create_link(
        client, writer, slug="mf", max_clicks=3, fallback_url="https://shop.example.com/sold"
    )
    answers = concurrently(client, ["/m"] * 40 + ["/mf"] * 20)
    capped, with_fallback = answers[:40], answers[40:]
    assert statuses(capped) == {302: 7, 410: 33}
    assert {r.headers["location"] for r in capped if r.status_code == 302} == {
        "https://shop.example.com/drop"
    }
    assert sorted(r.headers["location"] for r in with_fallback) == (
        ["https://shop.example.com/"] * 3 + ["https://shop.example.com/sold"] * 17
    )
    assert (served_clicks(client, "m"), served_clicks(client, "mf")) == (7, 3)
    # 410s are not clicks; fallback redirects are. The counts agree with what was served.
    assert link_clicks_once_written(client, "m", 7) == 7
    assert link_clicks_once_written(client, "mf", 20) == 20


def test_whatever_carries_a_capped_destination_takes_a_slot(
    client: TestClient, writer: dict
) -> None:
    """A User-Agent or a flag proves nothing: bots, HEAD and untracked requests take slots
    like anyone; only preview fetchers, whose page then leaves the destination out, do not."""
    one = create_link(client, writer, slug="one", max_clicks=1, og_title="Drop")
    for ua in ("Twitterbot/1.0", "WhatsApp/2.23.20.0"):
        page = client.get("/one", headers={"User-Agent": ua})
        assert page.status_code == 200 and 'content="Drop"' in page.text
        assert one["url"] not in page.text and "refresh" not in page.text
    assert served_clicks(client, "one") == 0
    for spoof in (
        {"method": "HEAD"},
        {"path": "/{slug}?tautan_no_track=1"},
        {"headers": {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}},
        {"headers": {"User-Agent": ""}},
    ):
        slug = f"cap-{len(spoof)}-{abs(hash(str(spoof))) % 10_000}"
        create_link(client, writer, slug=slug, max_clicks=1)
        method = spoof.get("method", "GET")
        path = str(spoof.get("path", "/{slug}")).format(slug=slug)
        headers = spoof.get("headers", {})
        first = client.request(method, path, headers=headers)
        again = client.request(method, path, headers=headers)
        assert (first.status_code, again.status_code) == (302, 410), spoof
        assert served_clicks(client, slug) == 1
    # The one slot of "one" goes to one person; from then on everybody gets the 410.
    assert statuses(concurrently(client, ["/one"] * 5)) == {302: 1, 410: 4}
    assert client.head("/one").status_code == 410
    assert client.get("/one", headers={"User-Agent": "Twitterbot/1.0"}).status_code == 410


def test_patching_max_clicks_applies_at_once(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="p", max_clicks=2)
    assert statuses(concurrently(client, ["/p"] * 4)) == {302: 2, 410: 2}
    raised = client.patch("/api/links/p", json={"max_clicks": 5}, headers=writer)
    assert raised.status_code == 200
    assert statuses(concurrently(client, ["/p"] * 6)) == {302: 3, 410: 3}  # 3 more, not 5
    refused = client.patch("/api/links/p", json={"max_clicks": 0}, headers=writer)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_error"
    assert client.get("/p").status_code == 410  # still capped at 5, all taken
    lowered = client.patch("/api/links/p", json={"max_clicks": 1}, headers=writer)
    assert lowered.status_code == 200
    assert client.get("/p").status_code == 410
    uncapped = client.patch("/api/links/p", json={"max_clicks": None}, headers=writer)
    assert uncapped.json()["max_clicks"] is None
    assert statuses(concurrently(client, ["/p"] * 4)) == {302: 4}


def test_a_new_cap_counts_the_clicks_already_recorded(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="late")
    assert statuses(concurrently(client, ["/late"] * 3)) == {302: 3}
    assert link_clicks_once_written(client, "late", 3) == 3
    capped = client.patch("/api/links/late", json={"max_clicks": 4}, headers=writer)
    assert capped.json()["max_clicks"] == 4
    assert statuses(concurrently(client, ["/late"] * 3)) == {302: 1, 410: 2}


def test_capped_links_are_not_served_uncounted_while_the_database_is_locked(
    short_busy_timeout: float, backend: str, client: TestClient, writer: dict, database_url: str
) -> None:
    if backend != "sqlite":
        pytest.skip("locks a SQLite file; PostgreSQL: the test with a stopped server")
    blocker = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
    try:
        check_capped_links_without_database(
            client,
            writer,
            lambda: blocker.execute("BEGIN EXCLUSIVE"),  # nobody else may write now
            lambda: blocker.execute("ROLLBACK"),
        )
    finally:
        blocker.close()


def test_capped_clicks_waiting_for_the_lock_leave_connections_for_other_links(
    short_busy_timeout: float, backend: str, client: TestClient, writer: dict, database_url: str
) -> None:
    """Capped clicks waiting for SQLite's write lock (held by the click writer or an import,
    say) must not take every pooled connection: a link not cached still needs one to be
    read, and reading does not wait for the lock."""
    if backend != "sqlite":
        pytest.skip("locks a SQLite file")
    create_link(client, writer, slug="cap", max_clicks=1000)
    create_link(client, writer, slug="free")
    assert client.head("/cap").status_code == 302  # cached
    path = database_url.split(":///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")

    async def burst_then_free() -> tuple[int, list[int]]:
        transport = httpx2.ASGITransport(app=client.app, client=PEER)
        async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            capped = [asyncio.create_task(http.get("/cap")) for _ in range(30)]
            await asyncio.sleep(0.3)  # all waiting for the lock
            free = asyncio.create_task(http.get("/free"))
            done, _ = await asyncio.wait([free], timeout=short_busy_timeout / 2)
            free_while_locked = free.result().status_code if done else 0
            # Each capped click waits for its turn as long as for the lock, no longer:
            # all are refused within the busy timeout, not 4 at a time one after the other.
            done, _ = await asyncio.wait(capped, timeout=2 * short_busy_timeout)
            capped_while_locked = [c.result().status_code for c in done]
            blocker.execute("ROLLBACK")
            await asyncio.gather(free, *capped)
            return free_while_locked, capped_while_locked

    try:
        assert client.portal is not None
        free_while_locked, capped_while_locked = client.portal.call(burst_then_free)
    finally:
        blocker.close()
    assert free_while_locked == 302
    assert capped_while_locked == [503] * 30


def test_a_link_starts_redirecting_when_its_start_passes(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="soon", starts_at=_at(seconds=1))
    assert client.get("/soon").status_code == 410
    time.sleep(1.1)
    assert client.get("/soon").status_code == 302  # the cached link, re-evaluated in time


def test_patch_and_create_take_effect_at_once_despite_the_cache(
    client: TestClient, writer: dict
) -> None:
    assert client.get("/later").status_code == 404  # remembered as unknown
    create_link(client, writer, slug="later")
    assert client.get("/later").status_code == 302
    client.patch("/api/links/later", json={"url": "https://new.example/"}, headers=writer)
    assert client.get("/later").headers["location"] == "https://new.example/"


def test_cache_hits_open_no_database_connection(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="hot")
    untracked = "/hot?tautan_no_track=1"  # so that the click writer stays idle too
    client.get(untracked)
    checkouts = []
    pool = state_of(client).engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: checkouts.append(1))
    for _ in range(20):
        assert client.get(untracked).status_code == 302
    assert checkouts == []


def test_changes_from_another_process_are_seen_after_the_ttl(
    settings: Settings, writer: dict, client: TestClient
) -> None:
    create_link(client, writer, slug="ttl", url="https://old.example/")
    short_ttl = settings.model_copy(update={"link_cache_ttl_s": 0.5})
    with with_writer(
        TestClient(create_app(short_ttl), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as other:
        assert other.get("/ttl").headers["location"] == "https://old.example/"
        client.patch("/api/links/ttl", json={"url": "https://new.example/"}, headers=writer)
        assert other.get("/ttl").headers["location"] == "https://old.example/"
        time.sleep(0.6)
        assert other.get("/ttl").headers["location"] == "https://new.example/"


def test_preview_fetchers_get_the_open_graph_page(client: TestClient, writer: dict) -> None:
    create_link(
        client,
        writer,
        slug="og",
        url="https://shop.example.com/sale",
        og_title='Sale <50% off> & "more"',
        og_description="Only this week",
        og_image="https://cdn.example.com/sale.jpg",
    )
    for fetcher in (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "WhatsApp/2.23.20.0",
        "Twitterbot/1.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ):
        page = client.get("/og", headers={"User-Agent": fetcher})
        assert page.status_code == 200, fetcher
        assert (
            '<meta property="og:title" content="Sale &lt;50% off&gt; &amp; &quot;more&quot;">'
            in page.text
        )
        assert '<meta name="twitter:image" content="https://cdn.example.com/sale.jpg">' in page.text
        assert 'url=https://shop.example.com/sale"' in page.text
    person = client.get(
        "/og", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
    )
    assert person.status_code == 302
    create_link(client, writer, slug="plain")
    assert client.get("/plain", headers={"User-Agent": "Twitterbot/1.0"}).status_code == 302
    bots = clicks_of(client, 6)
    assert [c.bot_name for c in bots if c.is_bot] == [
        "facebookexternalhit",
        "WhatsApp",
        "Twitterbot",
        "Slackbot",
        "Twitterbot",
    ]


def test_a_forwarding_header_sent_on_several_lines_is_one_list(settings: Settings) -> None:
    """Proxies such as HAProxy add their X-Forwarded-For hop on a line of its own."""
    trusted = [ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8")]
    behind_two = settings.model_copy(update={"trusted_proxies": trusted, "store_ip": "full"})
    with with_writer(
        TestClient(create_app(behind_two), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        create_link(client, make_key(client, "links:write"), slug="hops")
        lines = [("User-Agent", DESKTOP_UA), ("X-Forwarded-For", "203.0.113.9"),
                 ("X-Forwarded-For", "10.0.0.1")]  # fmt: skip
        assert client.get("/hops", headers=lines).status_code == 302
        [click] = clicks_of(client, 1)
        assert click.ip == "203.0.113.9"
