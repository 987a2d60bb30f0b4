"""Branded domains: registered per workspace, links on them, the redirect by Host and slug,
the TLS proxies' check, stats by domain, and what one workspace cannot do with another's."""

import io
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from tests.support.app import create_link, make_key
from tests.support.cli import tautan
from tests.support.clicks import clicks_of, raw_click, seed_clicks

SHOP = "https://shop.example.com/"
BRAND = "go.tokoku.test"


@pytest.fixture
def owner(client: TestClient) -> dict[str, str]:
    """A key of the workspace `toko`."""
    return make_key(client, "links:read", "links:write", "stats:read", "owner", workspace="toko")


@pytest.fixture
def other(client: TestClient) -> dict[str, str]:
    """A key of another workspace, `kopi`."""
    return make_key(client, "links:read", "links:write", "stats:read", "owner", workspace="kopi")


def add_domain(client: TestClient, headers: dict[str, str], host: str = BRAND, **body: str) -> dict:
    response = client.post("/api/domains", json={"host": host, **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def visit(client: TestClient, path: str, host: str) -> tuple[int, str | None]:
    response = client.get(path, headers={"Host": host})
    return response.status_code, response.headers.get("location")


def test_a_host_is_stored_as_browsers_send_it_and_registered_once(
    client: TestClient, owner: dict, other: dict
) -> None:
    assert add_domain(client, owner, "GO.TokoKu.Test.")["host"] == BRAND
    assert add_domain(client, owner, "bücher.test")["host"] == "xn--bcher-kva.test"
    for headers in (owner, other):  # whoever asks, and however it is spelt
        taken = client.post("/api/domains", json={"host": "Go.Tokoku.test"}, headers=headers)
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    base = client.post("/api/domains", json={"host": "tautan.test"}, headers=owner)
    assert base.status_code == 409
    for bad in ("https://x.test", "x.test:8080", "x.test/path", "203.0.113.5", "localhost", ""):
        response = client.post("/api/domains", json={"host": bad}, headers=owner)
        assert response.status_code == 422, bad
    listed = client.get("/api/domains", headers=owner).json()["domains"]
    assert [d["host"] for d in listed] == [BRAND, "xn--bcher-kva.test"]
    assert client.get("/api/domains", headers=other).json()["domains"] == []


def test_links_live_on_their_domain_with_a_slug_of_its_own(client: TestClient, owner: dict) -> None:
    add_domain(
        client,
        owner,
        root_url="https://tokoku.example/",
        not_found_url="https://tokoku.example/404",
    )
    on_brand = create_link(client, owner, url="https://a.example/one", slug="promo", domain=BRAND)
    on_base = create_link(client, owner, url="https://b.example/two", slug="promo")
    assert (on_brand["domain"], on_brand["short_url"]) == (BRAND, f"http://{BRAND}/promo")
    assert (on_base["domain"], on_base["short_url"]) == ("tautan.test", "http://tautan.test/promo")
    again = client.post(
        "/api/links", json={"url": SHOP, "slug": "promo", "domain": BRAND}, headers=owner
    )
    assert again.status_code == 409

    assert visit(client, "/promo", BRAND) == (302, "https://a.example/one")
    assert visit(client, "/promo", "GO.TOKOKU.TEST:443") == (302, "https://a.example/one")
    assert visit(client, "/promo", "tautan.test") == (302, "https://b.example/two")
    assert visit(client, "/", BRAND) == (302, "https://tokoku.example/")
    assert visit(client, "/nope", BRAND) == (302, "https://tokoku.example/404")
    status, _ = visit(client, "/promo", "unregistered.test")
    assert status == 404
    page = client.get("/promo", headers={"Host": "evil<script>.test"})
    assert page.status_code == 404 and "evil" not in page.text  # a Host is never echoed

    # Addressed with ?domain=, read, changed and archived there; never moved.
    got = client.get("/api/links/promo", params={"domain": BRAND}, headers=owner).json()
    assert got["url"] == "https://a.example/one"
    assert client.get("/api/links/promo", headers=owner).json()["url"] == "https://b.example/two"
    moved = client.patch("/api/links/promo", params={"domain": BRAND},
                         json={"domain": "tautan.test"}, headers=owner)  # fmt: skip
    assert moved.status_code == 422 and moved.json()["error"]["code"] == "domain_fixed"
    same = client.patch("/api/links/promo", params={"domain": BRAND},
                        json={"domain": BRAND.upper(), "title": "t"}, headers=owner)  # fmt: skip
    assert same.status_code == 200 and same.json()["title"] == "t"
    listed = client.get("/api/links", params={"domain": BRAND}, headers=owner).json()["links"]
    assert [link["short_url"] for link in listed] == [f"http://{BRAND}/promo"]
    bad = client.get("/api/links", params={"domain": "not a host"}, headers=owner)
    assert bad.status_code == 422
    qr = client.get("/api/links/promo/qr", params={"domain": BRAND, "format": "png"}, headers=owner)
    image = Image.open(io.BytesIO(qr.content))
    assert [code.text for code in zxingcpp.read_barcodes(image)] == [f"http://{BRAND}/promo?qr=1"]
    archived = client.delete("/api/links/promo", params={"domain": BRAND}, headers=owner)
    assert archived.status_code == 204
    assert visit(client, "/promo", BRAND) == (302, "https://tokoku.example/404")
    assert visit(client, "/promo", "tautan.test") == (302, "https://b.example/two")


def test_a_workspace_cannot_use_see_or_take_anothers_domain(
    client: TestClient, owner: dict, other: dict
) -> None:
    add_domain(client, owner)
    used = client.post("/api/links", json={"url": SHOP, "domain": BRAND}, headers=other)
    assert used.status_code == 422 and used.json()["error"]["code"] == "unknown_domain"
    unknown = client.post("/api/links", json={"url": SHOP, "domain": "never.test"}, headers=other)
    assert (
        unknown.json()["error"]["message"].replace("never.test", BRAND)
        == used.json()["error"]["message"]
    )
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, f"/api/domains/{BRAND}", headers=other,
                                  **({"json": {}} if method == "PATCH" else {}))  # fmt: skip
        assert response.status_code == 404, method
    assert client.get(f"/api/domains/{BRAND}", headers=owner).status_code == 200
    assert client.get("/api/links", params={"domain": BRAND}, headers=other).json()["links"] == []


def test_the_tls_proxy_check_answers_for_registered_hosts_only(
    client: TestClient, owner: dict
) -> None:
    add_domain(client, owner)
    # As Caddy asks: GET {ask}?domain=HOST, no key; any 2xx allows a certificate.
    for asked, status in ((BRAND, 200), ("GO.tokoku.test.", 200), ("tautan.test", 404),
                          ("other.test", 404), ("x/y", 404), ("", 404)):  # fmt: skip
        assert client.get("/api/domains/check", params={"domain": asked}).status_code == status


def test_no_link_or_domain_may_lead_to_this_service(
    client: TestClient, owner: dict, other: dict
) -> None:
    add_domain(client, owner)
    for body in ({"url": f"https://{BRAND}/x"}, {"url": SHOP, "fallback_url": f"http://{BRAND.upper()}/"},
                 {"url": "http://tautan.test/x"}):  # fmt: skip
        for headers in (owner, other):  # another workspace's domain loops too
            response = client.post("/api/links", json=body, headers=headers)
            assert (
                response.status_code == 422 and response.json()["error"]["code"] == "redirect_loop"
            )
    looping = client.post("/api/domains", json={"host": "b.test", "root_url": f"https://{BRAND}/"},
                          headers=other)  # fmt: skip
    assert looping.status_code == 422
    assert client.get("/api/domains/b.test", headers=other).status_code == 404


def test_a_domain_with_active_links_is_removed_only_once_they_are_archived(
    client: TestClient, owner: dict
) -> None:
    add_domain(client, owner)
    create_link(client, owner, url=SHOP, slug="a", domain=BRAND)
    refused = client.delete(f"/api/domains/{BRAND}", headers=owner)
    assert refused.status_code == 409
    assert f"PATCH /api/links/SLUG?domain={BRAND}" in refused.json()["error"]["message"]
    assert client.get(f"/api/domains/{BRAND}", headers=owner).json()["links"] == 1
    client.patch("/api/links/a", params={"domain": BRAND}, json={"archived": True}, headers=owner)
    assert client.delete(f"/api/domains/{BRAND}", headers=owner).status_code == 204
    assert client.get("/api/domains/check", params={"domain": BRAND}).status_code == 404
    assert visit(client, "/a", BRAND)[0] == 404


def test_stats_break_clicks_down_by_domain_and_filter_by_it(
    client: TestClient, owner: dict
) -> None:
    add_domain(client, owner)
    brand = create_link(client, owner, url=SHOP, slug="b", domain=BRAND)
    base = create_link(client, owner, url=SHOP, slug="b")
    now = datetime.now(UTC).replace(microsecond=0)
    seed_clicks(client, [raw_click(brand, now - timedelta(minutes=n)) for n in range(3)]
                + [raw_click(base, now - timedelta(minutes=n)) for n in range(2)])  # fmt: skip
    rows = client.get("/api/stats/breakdown/domain", headers=owner).json()["rows"]
    assert {(r["value"], r["clicks"]) for r in rows} == {(BRAND, 3), ("tautan.test", 2)}
    only = client.get("/api/stats/summary", params={"domain": BRAND.upper()}, headers=owner).json()
    assert only["clicks"] == 3
    base_only = client.get("/api/stats/summary", params={"domain": "tautan.test"}, headers=owner)
    assert base_only.json()["clicks"] == 2
    others = client.get("/api/stats/summary", params={"domain": f"-{BRAND}"}, headers=owner)
    assert others.json()["clicks"] == 2
    # The same slug on two domains is two links, to the stats too.
    by_link = client.get("/api/stats/breakdown/link", headers=owner).json()["rows"]
    assert {(r["value"], r["clicks"]) for r in by_link} == {(f"{BRAND}/b", 3), ("b", 2)}
    for name, clicks in ((f"{BRAND}/b", 3), (f"{BRAND.upper()}/b", 3), ("b", 2)):
        one = client.get("/api/stats/summary", params={"link": name}, headers=owner).json()
        assert one["clicks"] == clicks, name
    missing = client.get("/api/stats/summary", params={"link": "kopi.test/b"}, headers=owner)
    assert missing.status_code == 404
    csv_links = client.get("/api/stats/clicks.csv", headers=owner).text
    assert csv_links.count(f",{BRAND}/b,") == 3


def test_a_redirect_on_a_domain_is_a_click_of_its_link(client: TestClient, owner: dict) -> None:
    add_domain(client, owner)
    link = create_link(client, owner, url=SHOP, slug="c", domain=BRAND)
    assert visit(client, "/c", BRAND)[0] == 302
    [click] = clicks_of(client, 1)
    assert click.link_id == link["id"]


def test_the_command_line_adds_lists_and_removes_domains(database_url: str) -> None:
    added = tautan(database_url, "domains", "add", "GO.Tokoku.test", "--workspace", "toko",
                   "--root-url", "https://tokoku.example/")  # fmt: skip
    assert added.returncode == 0 and BRAND in added.stdout
    again = tautan(database_url, "domains", "add", BRAND)
    assert again.returncode == 1 and "registered already" in again.stdout
    bad = tautan(database_url, "domains", "add", "https://x.test")
    assert bad.returncode == 1 and "domain name alone" in bad.stdout
    made = tautan(database_url, "links", "create", SHOP, "--slug", "p", "--domain", BRAND,
                  "--workspace", "toko")  # fmt: skip
    assert made.stdout.strip() == f"http://{BRAND}/p"
    listed = tautan(database_url, "domains", "list")
    assert BRAND in listed.stdout and "toko" in listed.stdout
    stats = tautan(database_url, "stats", f"{BRAND}/p")
    assert stats.returncode == 0 and "clicks 0" in stats.stdout
    assert tautan(database_url, "stats", "p").returncode == 1  # not on the base host
    refused = tautan(database_url, "domains", "remove", BRAND)
    assert refused.returncode == 1 and "archive" in refused.stdout
    assert BRAND in tautan(database_url, "domains", "list").stdout


def test_import_and_export_carry_the_domain(client: TestClient, owner: dict) -> None:
    add_domain(client, owner)
    rows = (f"url,slug,domain\n{SHOP}1,spring,{BRAND}\n{SHOP}2,spring,\n"
            f"{SHOP}3,spring,{BRAND.upper()}\n{SHOP}4,x,kopi.test\n")  # fmt: skip
    files = {"file": ("links.csv", rows, "text/csv")}
    report = client.post("/api/links/import", files=files, headers=owner).json()
    assert [link["short_url"] for link in report["links"]] == [
        f"http://{BRAND}/spring",
        "http://tautan.test/spring",
    ]
    assert [(e["line"], e["error"]["code"]) for e in report["errors"]] == [
        (4, "slug_taken"),
        (5, "unknown_domain"),
    ]
    exported = client.get("/api/links/export.csv", headers=owner).text.splitlines()
    header = exported[0].split(",")
    domains = sorted(line.split(",")[header.index("domain")] for line in exported[1:])
    assert domains == [BRAND, "tautan.test"]
