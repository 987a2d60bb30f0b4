"""No request can send a short link anywhere but its stored destination (the short URL's
query is only ever appended to it), and no link may lead back into this service, however
its URL spells the service's host."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import ada_url
import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.redirect.routes import split_query
from tests.support.app import BASE_URL, PEER, create_link, make_key
from tests.support.clicks import with_writer

DESTINATION = "https://shop.example.com/sale?color=red"
HOSTILE_QUERIES = [
    "url=https://evil.example/",
    "next=//evil.example",
    "redirect=https://evil.example",
    "return_to=javascript:alert(1)",
    "@evil.example",
    "a=%0d%0aLocation:%20https://evil.example",
    "a=%0D%0ASet-Cookie:%20session=stolen",
    "a=%23@evil.example",
    "\\\\evil.example",
    "a=1&url=http%3A%2F%2Fevil.example",
]
# Paths that look like a way out: none is a slug, so none reaches the redirect.
HOSTILE_PATHS = [
    "//evil.example",
    "///evil.example",
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "/o%2F%2Fevil.example",
    "/o//evil.example",
    "/@evil.example",
    "/o@evil.example",
    "/o/https://evil.example",
    "/o%0d%0aLocation:%20https://evil.example",
    "/o/..%2F%2Fevil.example",
]


def _browser_view(location: str) -> tuple[str, str, str]:
    """Scheme, host and path of a Location as a browser reads it."""
    url = ada_url.URL(location)
    return url.protocol, url.host, url.pathname


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_the_query_is_only_appended_to_the_stored_destination(
    client: TestClient, writer: dict, query: str
) -> None:
    create_link(client, writer, slug="o", url=DESTINATION)
    create_link(client, writer, slug="n", url=DESTINATION, forward_query=False)

    forwarded = client.get(f"/o?{query}")
    assert forwarded.status_code == 302
    location = forwarded.headers["location"]
    assert location.startswith(DESTINATION + "&")
    assert "\r" not in location and "\n" not in location
    assert _browser_view(location) == _browser_view(DESTINATION)
    assert "set-cookie" not in forwarded.headers

    kept = client.get(f"/n?{query}")
    assert (kept.status_code, kept.headers["location"]) == (302, DESTINATION)


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_paths_that_look_like_a_way_out_are_unknown(
    client: TestClient, writer: dict, path: str
) -> None:
    create_link(client, writer, slug="o", url=DESTINATION)
    response = client.get(BASE_URL + path)
    assert response.status_code == 404
    assert "location" not in response.headers


def test_raw_control_bytes_in_the_query_are_escaped() -> None:
    query, _ = split_query(b"a=\r\nLocation: https://evil.example\x00&b=\x7f")
    assert query == b"a=%0D%0ALocation:%20https://evil.example%00&b=%7F"


def test_an_inactive_link_sends_to_its_fallback_whatever_the_query(
    client: TestClient, writer: dict
) -> None:
    fallback = "https://shop.example.com/ended"
    expired = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    create_link(client, writer, slug="x", url=DESTINATION, expires_at=expired,
                starts_at=(datetime.now(UTC) - timedelta(days=2)).isoformat(),
                fallback_url=fallback)  # fmt: skip
    for query in HOSTILE_QUERIES:
        response = client.get(f"/x?{query}")
        assert (response.status_code, response.headers["location"]) == (302, fallback)


# The service's own host, spelled as browsers would still take it to the service.
OWN_HOST_SPELLINGS = [
    "http://tautan.test/a",
    "https://tautan.test/a",
    "HTTP://TAUTAN.TEST./a",
    "http://tautan.test:80/a",
    "http://tautan.test:8080/a",
    "http://%74autan.test/a",
    "http://tautan.test\\.evil.example/a",
    "http://ｔａｕｔａｎ.test/a",
    "http://tautan.test/a?utm_source=loop",
]
LOOPBACK_BASE = "http://127.0.0.1:8000"
LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:8000/a",
    "http://127.1:8000/a",
    "http://2130706433:8000/a",
    "http://0x7f000001:8000/a",
    "http://0177.0.0.1:8000/a",
    "http://[::ffff:127.0.0.1]:8000/a",
    "http://[::1]:8000/a",
    "http://localhost:8000/a",
    "http://LOCALHOST.:8000/a",
]


def _assert_loop_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "redirect_loop"
    assert response.json()["error"]["details"] == {"field": field}


def _assert_refused_everywhere(client: TestClient, headers: dict, spelling: str) -> None:
    """A link to `spelling` cannot be made, in any field or by any way of writing links,
    and a refusal changes nothing."""
    _assert_loop_refused(client.post("/api/links", json={"url": spelling, "slug": "b"},
                                     headers=headers), "url")  # fmt: skip
    assert client.get("/api/links/b", headers=headers).status_code == 404
    fallback = {"url": "https://shop.example.com/", "slug": "b", "fallback_url": spelling}
    _assert_loop_refused(client.post("/api/links", json=fallback, headers=headers), "fallback_url")
    assert client.get("/api/links/b", headers=headers).status_code == 404

    bulk = client.post("/api/links/bulk", json={"links": [{"url": spelling}]}, headers=headers)
    assert bulk.status_code == 200
    assert bulk.json()["results"][0]["error"]["code"] == "redirect_loop"

    for field in ("url", "fallback_url"):
        _assert_loop_refused(client.patch("/api/links/a", json={field: spelling},
                                          headers=headers), field)  # fmt: skip
    link = client.get("/api/links/a", headers=headers).json()
    assert (link["url"], link["fallback_url"]) == ("https://shop.example.com/", None)
    assert client.get("/a").headers["location"] == "https://shop.example.com/"


@pytest.mark.parametrize("spelling", OWN_HOST_SPELLINGS)
def test_a_link_into_the_service_is_refused(
    client: TestClient, writer: dict, spelling: str
) -> None:
    create_link(client, writer, slug="a", url="https://shop.example.com/")
    _assert_refused_everywhere(client, writer, spelling)


@pytest.fixture
def loopback_client(settings: Settings) -> Iterator[TestClient]:
    """The service as `make run` starts it: its short URLs on 127.0.0.1:8000."""
    local = settings.model_copy(update={"base_url": LOOPBACK_BASE})
    with with_writer(TestClient(create_app(local), base_url=LOOPBACK_BASE, follow_redirects=False,
                    client=PEER)) as client:  # fmt: skip
        yield client


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_on_a_loopback_base_every_loopback_spelling_is_refused(
    loopback_client: TestClient, spelling: str
) -> None:
    headers = make_key(loopback_client, "links:read", "links:write")
    create_link(loopback_client, headers, slug="a", url="https://shop.example.com/")
    _assert_refused_everywhere(loopback_client, headers, spelling)


@pytest.mark.parametrize(
    "url",
    [
        "https://tautan.test.shop.example/a",  # a host that merely starts like ours
        "https://shop.example/tautan.test/a",
        "https://shop.example/?next=http://tautan.test/a",
        "https://sub.tautan.test/a",  # another host under our domain
    ],
)
def test_urls_that_only_mention_the_service_are_accepted(
    client: TestClient, writer: dict, url: str
) -> None:
    assert create_link(client, writer, url=url)["url"] == url
