import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, update
from starlette.testclient import TestClient

from app.config import Settings
from app.links.models import Link
from app.main import create_app
from app.redirect.routes import split_query
from tests.clicks.test_capture import clicks_of
from tests.conftest import BASE_URL, PEER, create_link, in_app

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
    ("code", "no_cache"), [(301, False), (302, True), (307, True), (308, False)]
)
def test_redirect_code_per_link(
    client: TestClient, writer: dict, code: int, no_cache: bool
) -> None:
    create_link(client, writer, slug="c", redirect_code=code)
    response = client.get("/c")
    assert response.status_code == code
    assert ("cache-control" in response.headers) is no_cache


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


def test_link_over_max_clicks_is_gone(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="m", max_clicks=3)
    assert client.get("/m").status_code == 302
    in_app(client, lambda s: s.execute(update(Link).where(Link.slug == "m").values(clicks=3)))
    client.app.api.state.link_cache.forget("m")  # type: ignore[attr-defined]
    assert client.get("/m").status_code == 410


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
    pool = client.app.api.state.engine.sync_engine.pool  # type: ignore[attr-defined]
    event.listen(pool, "checkout", lambda *_: checkouts.append(1))
    for _ in range(20):
        assert client.get(untracked).status_code == 302
    assert checkouts == []


def test_changes_from_another_process_are_seen_after_the_ttl(
    settings: Settings, writer: dict, client: TestClient
) -> None:
    create_link(client, writer, slug="ttl", url="https://old.example/")
    short_ttl = settings.model_copy(update={"link_cache_ttl_s": 0.5})
    with TestClient(
        create_app(short_ttl), base_url=BASE_URL, follow_redirects=False, client=PEER
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
