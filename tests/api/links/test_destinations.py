"""Destinations through the API: control characters refused, Unicode hosts stored as the
browser would reach them."""

import pytest
from starlette.testclient import TestClient

from tests.support.app import create_link


@pytest.mark.parametrize("field", ["url", "fallback_url"])
def test_a_del_character_is_refused_like_other_control_characters(
    client: TestClient, writer: dict, field: str
) -> None:
    body = {"url": "https://shop.example/", "slug": "d", field: "https://shop.example/a\x7fb"}
    response = client.post("/api/links", json=body, headers=writer)
    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    assert (detail["loc"], detail["msg"]) == (
        ["body", field],
        "the URL contains spaces or control characters",
    )
    assert client.get("/api/links", headers=writer).json()["links"] == []


@pytest.mark.parametrize(
    ("url", "stored"),
    [  # browsers convert hosts by UTS-46 (IDNA 2008), not Python's IDNA 2003 codec
        ("http://faß.de/ü", "http://xn--fa-hia.de/%C3%BC"),  # not fass.de
        ("http://ς.com/", "http://xn--3xa.com/"),  # not xn--4xa.com (σ.com)
        ("http://[2001:db8::1]/ü", "http://[2001:db8::1]/%C3%BC"),
    ],
)
def test_a_unicode_url_sends_to_the_host_a_browser_would_reach(
    client: TestClient, writer: dict, url: str, stored: str
) -> None:
    link = create_link(client, writer, slug="u", url=url)
    assert (link["url"], link["destination"]) == (stored, stored)
    response = client.get("/u")
    assert (response.status_code, response.headers["location"]) == (302, stored)
