import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.core.tables import Link
from tests.support.app import BASE_URL, create_link, make_key, run_in_transaction
from tests.support.clicks import raw_click, seed_clicks


def count_links(client: TestClient) -> int:
    return run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(Link)))


def test_create_returns_the_link_with_its_short_url_and_destination(
    client: TestClient, writer: dict
) -> None:
    link = create_link(
        client,
        writer,
        url="https://shop.example.com/sale?color=red&utm_source=old",
        utm_source="instagram",
        utm_medium="social",
        utm_campaign="launch",
        tags=["summer", "ig", "summer"],
        title="Summer sale",
    )
    assert len(link["slug"]) == 7 and link["slug"].isalnum()
    assert link["short_url"] == f"{BASE_URL}/{link['slug']}"
    assert link["destination"] == (
        "https://shop.example.com/sale?color=red&utm_source=instagram"
        "&utm_medium=social&utm_campaign=launch"
    )
    assert link["tags"] == ["ig", "summer"]
    assert (link["clicks"], link["redirect_code"], link["forward_query"]) == (0, 302, True)
    assert client.get(f"/api/links/{link['slug']}", headers=writer).json() == link


def test_custom_slug_is_case_sensitive_and_taken_slug_is_409(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="Promo")
    create_link(client, writer, slug="promo")
    response = client.post(
        "/api/links", json={"url": "https://other.example/", "slug": "Promo"}, headers=writer
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slug_taken"
    assert count_links(client) == 2


BAD_BODIES = [
    {"url": "javascript:alert(1)"},
    {"url": "data:text/html,hi"},
    {"url": "ftp://files.example/"},
    {"url": "https:///nohost"},
    {"url": "https://user:pass@evil.example/"},
    {"url": "https://x.example/" + "a" * 4100},
    {"url": f"{BASE_URL}/loop"},
    {"url": "https://TAUTAN.test:8080/loop"},
    {"url": "https://ok.example/", "fallback_url": f"{BASE_URL}/x"},
    {"url": "https://ok.example/", "slug": "a/b"},
    {"url": "https://ok.example/", "slug": "a b"},
    {"url": "https://ok.example/", "slug": "x" * 65},
    {"url": "https://ok.example/", "slug": ""},
    {"url": "https://ok.example/", "slug": "api"},
    {"url": "https://ok.example/", "slug": "Dashboard"},
    {"url": "https://ok.example/", "slug": "healthz"},
    {"url": "https://ok.example/", "max_clicks": 0},
    {"url": "https://ok.example/", "max_clicks": -3},
    {"url": "https://ok.example/", "redirect_code": 303},
    {
        "url": "https://ok.example/",
        "starts_at": "2030-01-02T00:00:00Z",
        "expires_at": "2030-01-01T00:00:00Z",
    },
    {"url": "https://ok.example/", "bogus": 1},
    {"url": "https://ok.example/", "tags": ["a|b"]},
    # PostgreSQL text cannot hold NUL: a 422, not a 500 from the INSERT.
    {"url": "https://ok.example/", "title": "a\x00b"},
    {"url": "https://ok.example/", "tags": ["a\x00"]},
    {"url": "https://ok.example/", "utm_source": "\x00"},
    {"url": "https://ok.example/", "og_title": "\x00"},
    {"url": "https://ok.example/", "og_description": "\x00"},
    {"slug": "nourl"},
    {"url": 12},
    # Out of range: a 422, not a 500 from the conversion to UTC or from the INSERT.
    {"url": "https://ok.example/", "expires_at": "9999-12-31T23:59:59-05:00"},  # past 9999 in UTC
    {"url": "https://ok.example/", "starts_at": "0001-01-01T00:00:00+05:00"},  # before year 1
    {"url": "https://ok.example/", "max_clicks": 2**31},  # past PostgreSQL's integer
    {"url": "https://ok.example/", "max_clicks": 2**63},  # past SQLite's
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=lambda b: str(b)[:50])
def test_bad_input_is_refused_with_422_and_nothing_is_written(
    client: TestClient, writer: dict, body: dict
) -> None:
    response = client.post("/api/links", json=body, headers=writer)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert count_links(client) == 0


def test_the_extreme_values_in_range_are_kept(client: TestClient, writer: dict) -> None:
    link = create_link(
        client,
        writer,
        starts_at="0001-01-01T05:00:00+05:00",
        expires_at="9999-12-31T23:59:59+05:00",
        max_clicks=2**31 - 1,
    )
    assert (link["starts_at"], link["expires_at"], link["max_clicks"]) == (
        "0001-01-01T00:00:00Z",
        "9999-12-31T18:59:59Z",
        2**31 - 1,
    )
    assert client.get(f"/api/links/{link['slug']}", headers=writer).json() == link


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"null"])
def test_malformed_bodies_get_the_error_shape(client: TestClient, writer: dict, raw: bytes) -> None:
    response = client.post(
        "/api/links", content=raw, headers={**writer, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_bulk_reports_each_item_in_order_and_one_bad_item_does_not_stop_the_rest(
    client: TestClient, writer: dict
) -> None:
    items: list[dict[str, Any]] = [
        {"url": "https://ok.example/1", "slug": "bulk-1"},
        {"url": "javascript:x"},
        {"url": "https://ok.example/2", "slug": "bulk-1"},  # taken by the first
        {"url": "https://ok.example/3", "utm_campaign": "c", "unknown": True},
        {"url": "https://ok.example/4"},
    ]
    response = client.post("/api/links/bulk", json={"links": items}, headers=writer)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, False, True]
    assert results[0]["link"]["slug"] == "bulk-1"
    assert results[1]["error"]["code"] == "validation_error"
    assert results[2]["error"]["code"] == "slug_taken"
    assert results[3]["error"]["code"] == "validation_error"
    assert count_links(client) == 2
    assert client.get("/bulk-1").headers["location"] == "https://ok.example/1"


def test_a_bulk_item_out_of_range_fails_alone(client: TestClient, writer: dict) -> None:
    items: list[dict[str, Any]] = [
        {"url": "https://ok.example/1", "slug": "in-range"},
        {"url": "https://ok.example/2", "expires_at": "0001-01-01T00:00:00+05:00"},
        {"url": "https://ok.example/3", "max_clicks": 2**63},
        {"url": "https://ok.example/4", "max_clicks": 2**31},
    ]
    response = client.post("/api/links/bulk", json={"links": items}, headers=writer)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, False]
    assert [r["error"]["details"][0]["loc"] for r in results[1:]] == [
        ["expires_at"],
        ["max_clicks"],
        ["max_clicks"],
    ]
    assert count_links(client) == 1
    assert client.get("/in-range").headers["location"] == "https://ok.example/1"


def test_bulk_of_many_items_keeps_each_result_in_its_place(
    client: TestClient, writer: dict
) -> None:
    """Items go in together, several hundred per statement; one taken slug sends its group
    back item by item, and only the item at fault fails."""
    create_link(client, writer, slug="taken")
    items: list[dict[str, Any]] = [
        {"url": f"https://ok.example/{n}", **({"slug": f"s{n}"} if n % 2 else {}), "tags": [f"t{n % 3}"]}
        for n in range(700)
    ]  # fmt: skip
    items[5] = {"url": "ftp://no.example/"}
    items[301] = {"url": "https://ok.example/dup", "slug": "s11"}  # the slug of item 11
    items[650] = {"url": "https://ok.example/taken", "slug": "taken"}
    response = client.post("/api/links/bulk", json={"links": items}, headers=writer)
    results = response.json()["results"]
    failed = {n: r["error"]["code"] for n, r in enumerate(results) if not r["ok"]}
    assert failed == {5: "validation_error", 301: "slug_taken", 650: "slug_taken"}
    created = [r["link"] for r in results if r["ok"]]
    assert len({link["slug"] for link in created}) == len(created) == 697
    assert count_links(client) == 698
    for n in (0, 11, 299, 302, 699):  # each result is the link made of its own item
        link = client.get(f"/api/links/{results[n]['link']['slug']}", headers=writer).json()
        assert (link["url"], link["tags"]) == (items[n]["url"], [f"t{n % 3}"])


def test_bulk_over_1000_items_is_refused(client: TestClient, writer: dict) -> None:
    items = [{"url": f"https://ok.example/{i}"} for i in range(1001)]
    response = client.post("/api/links/bulk", json={"links": items}, headers=writer)
    assert response.status_code == 422
    assert count_links(client) == 0


def test_list_pages_with_a_cursor_newest_first(client: TestClient, writer: dict) -> None:
    slugs = [create_link(client, writer, slug=f"page-{i}")["slug"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/links", params=params, headers=writer).json()
        seen += [x["slug"] for x in page["links"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == slugs[::-1]
    response = client.get("/api/links", params={"cursor": "!!"}, headers=writer)
    assert response.status_code == 400


@pytest.mark.parametrize("sort", ["created", "clicks"])
@pytest.mark.parametrize("position", ["9" * 30 + ":1", "3000000000:1", "1:3000000000"])
def test_a_cursor_out_of_range_is_a_400(
    client: TestClient, writer: dict, sort: str, position: str
) -> None:
    create_link(client, writer)
    cursor = base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")
    response = client.get("/api/links", params={"sort": sort, "cursor": cursor}, headers=writer)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_cursor"


def test_list_filters(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="a1", title="Summer Sale", tags=["ig"], utm_campaign="summer")
    create_link(client, writer, slug="a2", url="https://blog.example/summer_100%", tags=["fb"])
    create_link(client, writer, slug="a3", tags=["ig", "fb"], utm_campaign="winter")
    client.delete("/api/links/a3", headers=writer)

    def slugs(**params: Any) -> list[str]:
        response = client.get("/api/links", params=params, headers=writer)
        assert response.status_code == 200, response.text
        return sorted(x["slug"] for x in response.json()["links"])

    assert slugs() == ["a1", "a2"]
    assert slugs(q="summer") == ["a1", "a2"]
    assert slugs(q="100%") == ["a2"]
    assert slugs(q="_") == ["a2"]  # LIKE wildcards are taken literally
    assert slugs(tag="ig") == ["a1"]
    assert slugs(tag="fb", archived=True) == ["a3"]
    assert slugs(utm_campaign="summer") == ["a1"]
    assert slugs(archived=True) == ["a3"]


def test_patch_changes_only_what_it_sends(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="p", title="Old", tags=["x"], utm_source="ig", max_clicks=5)
    response = client.patch(
        "/api/links/p",
        json={"title": "New", "tags": ["y", "z"], "max_clicks": None},
        headers=writer,
    )
    assert response.status_code == 200, response.text
    link = response.json()
    assert (link["title"], link["tags"], link["max_clicks"]) == ("New", ["y", "z"], None)
    assert link["utm_source"] == "ig" and link["url"] == "https://shop.example.com/"


@pytest.mark.parametrize(
    "body",
    [{"expires_at": "9999-12-31T23:59:59-05:00"}, {"max_clicks": 2**31}, {"max_clicks": 2**63}],
)
def test_patch_out_of_range_is_422_and_changes_nothing(
    client: TestClient, writer: dict, body: dict
) -> None:
    link = create_link(client, writer, slug="kept", max_clicks=5)
    response = client.patch("/api/links/kept", json=body, headers=writer)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert client.get("/api/links/kept", headers=writer).json() == link


def test_patch_that_breaks_a_rule_changes_nothing(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="w", starts_at="2030-01-02T00:00:00Z")
    for body in (
        {"expires_at": "2030-01-01T00:00:00Z"},
        {"url": "ftp://x.example/"},
        {"url": f"{BASE_URL}/w"},
        {"slug": "renamed"},
        {"clicks": 99},
        {"title": "a\x00b"},
        {"url": None},
        {"forward_query": None},
        {"redirect_code": None},
        {"archived": None},
    ):
        response = client.patch("/api/links/w", json=body, headers=writer)
        assert response.status_code == 422, (body, response.text)
    link = client.get("/api/links/w", headers=writer).json()
    assert link["expires_at"] is None and link["url"] == "https://shop.example.com/"


def test_delete_archives_the_link(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="gone")
    assert client.get("/gone").status_code == 302
    assert client.delete("/api/links/gone", headers=writer).status_code == 204
    assert client.get("/gone").status_code == 404
    assert client.get("/api/links/gone", headers=writer).json()["archived"] is True
    restored = client.patch("/api/links/gone", json={"archived": False}, headers=writer)
    assert restored.json()["archived"] is False
    assert client.get("/gone").status_code == 302


def test_another_workspace_sees_nothing_of_a_link(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="mine")
    other = make_key(client, "links:read", "links:write", workspace="client-b")
    assert client.get("/api/links/mine", headers=other).status_code == 404
    assert client.patch("/api/links/mine", json={"title": "x"}, headers=other).status_code == 404
    assert client.delete("/api/links/mine", headers=other).status_code == 404
    assert client.get("/api/links", headers=other).json()["links"] == []
    admin = make_key(client, "admin", workspace="client-b")
    assert client.get("/api/links/mine", headers=admin).status_code == 200


def test_a_write_only_key_changes_a_link_without_seeing_it(
    client: TestClient, writer: dict
) -> None:
    link = create_link(client, writer, slug="p", title="Secret plan", utm_campaign="q3")
    write_only = make_key(client, "links:write")
    for body in ({}, {"title": "Renamed"}):
        response = client.patch("/api/links/p", json=body, headers=write_only)
        assert response.status_code == 200, body
        assert response.json() == {"slug": "p", "short_url": f"{BASE_URL}/p"}, body
    changed = client.get("/api/links/p", headers=writer).json()
    assert (changed["title"], changed["utm_campaign"]) == ("Renamed", "q3")
    # A key that reads links is still answered with the link, as changed.
    response = client.patch("/api/links/p", json={}, headers=writer)
    assert response.status_code == 200
    assert response.json() == changed != link


def test_a_write_only_key_is_told_only_where_its_new_links_are(
    client: TestClient, writer: dict
) -> None:
    write_only = make_key(client, "links:write")
    body = {"url": "https://shop.example.com/", "utm_source": "ig", "title": "Launch"}
    created = client.post("/api/links", json={**body, "slug": "one"}, headers=write_only)
    assert created.status_code == 201
    assert created.json() == {"slug": "one", "short_url": f"{BASE_URL}/one"}
    bulk = client.post(
        "/api/links/bulk", json={"links": [body, {"url": "ftp://x.example/"}]}, headers=write_only
    ).json()["results"]
    assert bulk[0]["ok"] and set(bulk[0]["link"]) == {"slug", "short_url"}
    assert not bulk[1]["ok"] and bulk[1]["error"]["code"] == "validation_error"
    csv_file = {"file": ("links.csv", "url,slug,title\nhttps://shop.example.com/,two,T\n")}
    imported = client.post("/api/links/import", files=csv_file, headers=write_only).json()
    assert imported["imported"] == 1
    assert imported["links"] == [{"slug": "two", "short_url": f"{BASE_URL}/two"}]
    # The links were made in full, and work.
    made = {x["slug"]: x for x in client.get("/api/links", headers=writer).json()["links"]}
    assert set(made) == {"one", bulk[0]["link"]["slug"], "two"}
    assert made["one"]["destination"] == "https://shop.example.com/?utm_source=ig"
    assert made["two"]["title"] == "T"
    assert client.get("/one").headers["location"] == made["one"]["destination"]


def test_listing_shows_and_sorts_by_click_counts(client: TestClient, writer: dict) -> None:
    links = [create_link(client, writer, slug=f"s{i}") for i in range(4)]
    when = datetime(2026, 3, 10, tzinfo=UTC)
    preview = "facebookexternalhit/1.1"
    seed_clicks(client, [
        *[raw_click(links[0], when, ip=f"203.0.113.{i}") for i in range(2)],
        *[raw_click(links[1], when, ip="203.0.113.9") for _ in range(5)],  # one visitor
        *[raw_click(links[2], when, ua=preview) for _ in range(3)],
        raw_click(links[3], when, ip="203.0.113.1"), raw_click(links[3], when, ip="203.0.113.2"),
    ])  # fmt: skip

    def order(sort: str) -> list[tuple]:
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 3} | ({"cursor": cursor} if cursor else {})
            page = client.get("/api/links", params=params, headers=writer).json()
            seen += [
                (x["slug"], x["clicks"], x["unique_visitors"], x["bot_clicks"])
                for x in page["links"]
            ]
            if not (cursor := page["next_cursor"]):
                return seen

    assert order("clicks") == [("s1", 5, 1, 0), ("s3", 2, 2, 0), ("s0", 2, 2, 0), ("s2", 0, 0, 3)]
    assert [slug for slug, *_ in order("unique_visitors")] == ["s3", "s0", "s1", "s2"]
    assert [slug for slug, *_ in order("bot_clicks")][0] == "s2"
    assert client.get("/api/links", params={"sort": "title"}, headers=writer).status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/links", {"q": "a\x00"}),
        ("/api/links", {"tag": "\x00"}),
        ("/api/links", {"utm_campaign": "\x00"}),
        ("/api/links/a%00b", {}),
        ("/api/links/a%00b/qr", {}),
    ],
)
def test_nul_in_a_parameter_is_refused_with_422(
    client: TestClient, writer: dict, path: str, params: dict
) -> None:
    create_link(client, writer, slug="a", title="kept")
    response = client.get(path, params=params, headers=writer)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert client.delete("/api/links/a%00b", headers=writer).status_code == 422
    assert client.get("/api/links/a", headers=writer).json()["title"] == "kept"


def test_a_refusal_names_its_first_problem_as_a_person_reads_it(
    client: TestClient, writer: dict
) -> None:
    response = client.post("/api/links", json={"url": "shop.example.com/sale"}, headers=writer)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == "url: only http and https URLs are accepted — add https://?"
    assert not any(d["msg"].startswith("Value error") for d in error["details"])
    two = client.post(
        "/api/links", json={"url": "ftp://shop.example/", "redirect_code": 303}, headers=writer
    ).json()["error"]
    assert two["message"].endswith("(and 1 more: see details)")
    url = [d["msg"] for d in two["details"] if d["loc"] == ["body", "url"]]
    assert url == ["only http and https URLs are accepted"]  # a scheme, just not one we take


def test_a_date_time_without_a_zone_is_read_as_utc(client: TestClient, writer: dict) -> None:
    body = {"url": "https://shop.example/", "slug": "xmas", "starts_at": "2026-12-24T18:00"}
    link = create_link(client, writer, **body)
    assert link["starts_at"].startswith("2026-12-24T18:00:00")
    assert link["starts_at"].endswith(("Z", "+00:00"))
    schema = client.get("/openapi.json").json()["components"]["schemas"]["LinkCreate"]
    assert "read as UTC" in str(schema["properties"]["starts_at"])
