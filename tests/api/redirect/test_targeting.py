"""Targeting in the redirect: rules by device, OS, country and language (real User-Agents, a
real .mmdb), A/B variants sticky per visitor, password links; each click records its
route, which the `route` breakdown counts."""

import base64
import csv
import hashlib
import io
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.redirect.targeting import Targeting, sticky_key
from tests.support.app import BASE_URL, DESKTOP_UA, PEER, create_link, make_key
from tests.support.clicks import clicks_of, link_clicks, with_writer
from tests.support.geo import JAKARTA, JAKARTA_V4, MUNICH, write_mmdb

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
GALAXY = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
INSTAGRAM_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; 23021RAAEG Build/TKQ1.221114.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.210 Mobile Safari/537.36 Instagram "
    "312.1.0.34.111 Android (33/13; 440dpi; 1080x2400; Xiaomi; 23021RAAEG; tapas; qcom; in_ID)"
)
FACEBOOK_PREVIEW = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
JAKARTA_IP, MUNICH_IP = "36.64.10.20", "46.114.1.2"
RULES = [
    {"name": "ipad", "if": {"device": ["tablet"]}, "url": "https://apps.apple.com/app/pad"},
    {"name": "ios", "if": {"os": ["ios"]}, "url": "https://apps.apple.com/app/x"},
    {"name": "android-id", "if": {"os": ["Android"], "country": ["ID"]},
     "url": "https://play.google.com/store/apps/x?hl=id#top"},
    {"name": "indonesian", "if": {"language": ["id"]}, "url": "https://shop.example/id"},
]  # fmt: skip


@pytest.fixture
def geo_settings(settings: Settings, tmp_path: Path) -> Settings:
    mmdb = write_mmdb(
        tmp_path / "city.mmdb", "GeoLite2-City", {JAKARTA_V4: JAKARTA, "46.114.0.0/16": MUNICH}
    )
    return settings.model_copy(update={"geoip_db": str(mmdb), "password_rate_limit": "3/minute"})


@pytest.fixture
def geo_client(geo_settings: Settings) -> Iterator[TestClient]:
    app = create_app(geo_settings)
    test_client = TestClient(app, base_url=BASE_URL, follow_redirects=False, client=PEER)
    with with_writer(test_client) as client:
        yield client


@pytest.fixture
def writer(geo_client: TestClient) -> dict[str, str]:
    """A key of geo_client's app (the suite's `writer` would start another app, whose
    click writer would take a share of the same click log)."""
    return make_key(geo_client, "links:read", "links:write", "stats:read")


def visit(client: TestClient, slug: str, ua: str, ip: str, language: str = "en") -> str:
    headers = {"User-Agent": ua, "X-Forwarded-For": ip, "Accept-Language": language}
    response = client.get(f"/{slug}", headers=headers)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def test_the_first_matching_rule_sends_the_visitor(geo_client: TestClient, writer: dict) -> None:
    create_link(
        geo_client, writer, slug="app", url="https://shop.example/", utm_campaign="launch",
        rules=RULES,
    )  # fmt: skip
    cases = [
        # An iPad runs iOS too: the tablet rule comes first.
        (IPAD, MUNICH_IP, "en", "https://apps.apple.com/app/pad?utm_campaign=launch", "ipad"),
        (IPHONE, JAKARTA_IP, "id", "https://apps.apple.com/app/x?utm_campaign=launch", "ios"),
        (GALAXY, JAKARTA_IP, "en",
         "https://play.google.com/store/apps/x?hl=id&utm_campaign=launch#top", "android-id"),
        (INSTAGRAM_ANDROID, JAKARTA_IP, "en",
         "https://play.google.com/store/apps/x?hl=id&utm_campaign=launch#top", "android-id"),
        # Android elsewhere: no OS-and-country match; the language rule then.
        (GALAXY, MUNICH_IP, "id-ID,id;q=0.9", "https://shop.example/id?utm_campaign=launch",
         "indonesian"),
        (DESKTOP_UA, JAKARTA_IP, "id", "https://shop.example/id?utm_campaign=launch", "indonesian"),
        # No rule matches: the link's own url.
        (GALAXY, MUNICH_IP, "de-DE", "https://shop.example/?utm_campaign=launch", None),
        (DESKTOP_UA, JAKARTA_IP, "en-US", "https://shop.example/?utm_campaign=launch", None),
    ]  # fmt: skip
    for ua, ip, language, location, _ in cases:
        assert visit(geo_client, "app", ua, ip, language) == location, (ua, ip, language)
    # Forwarded query parameters land on the rule's URL too.
    query = geo_client.get("/app?ref=bio", headers={"User-Agent": IPHONE})
    assert query.headers["location"] == "https://apps.apple.com/app/x?utm_campaign=launch&ref=bio"
    clicks = clicks_of(geo_client, len(cases) + 1)
    assert [click.route for click in clicks] == [route for *_, route in cases] + ["ios"]
    breakdown = geo_client.get("/api/stats/breakdown/route", headers=writer).json()["rows"]
    assert {row["value"]: row["clicks"] for row in breakdown} == {
        "android-id": 2, "indonesian": 2, "(none)": 2, "ios": 2, "ipad": 1
    }  # fmt: skip


def test_links_without_rules_go_nowhere_else(geo_client: TestClient, writer: dict) -> None:
    create_link(geo_client, writer, slug="plain", url="https://shop.example/plain")
    assert visit(geo_client, "plain", IPHONE, JAKARTA_IP, "id") == "https://shop.example/plain"
    assert clicks_of(geo_client, 1)[0].route is None


def test_variants_split_visitors_and_keep_each_on_one(geo_client: TestClient, writer: dict) -> None:
    variants = [
        {"name": "a", "url": "https://a.example/", "weight": 50},
        {"name": "b", "url": "https://b.example/", "weight": 30},
    ]
    create_link(geo_client, writer, slug="ab", url="https://own.example/", variants=variants)
    seen: dict[str, str] = {}
    for visitor in range(150):
        ip = f"198.51.{visitor // 100}.{visitor % 100}"
        first = visit(geo_client, "ab", DESKTOP_UA, ip)
        # The same visitor stays with the same destination.
        assert visit(geo_client, "ab", DESKTOP_UA, ip) == first
        seen[ip] = first
    shares = Counter(seen.values())
    assert set(shares) == {"https://a.example/", "https://b.example/", "https://own.example/"}
    clicks_of(geo_client, 300)
    rows = geo_client.get("/api/stats/breakdown/route", headers=writer).json()["rows"]
    by_route = {row["value"]: row for row in rows}
    assert by_route["a"]["unique_visitors"] == shares["https://a.example/"]
    assert by_route["a"]["clicks"] == 2 * shares["https://a.example/"]
    assert by_route["(none)"]["unique_visitors"] == shares["https://own.example/"]
    assert sum(row["clicks"] for row in rows) == 300
    export = geo_client.get("/api/stats/clicks.csv", headers=writer).text
    assert Counter(row["route"] for row in csv.DictReader(io.StringIO(export))) == {
        "a": 2 * shares["https://a.example/"],
        "b": 2 * shares["https://b.example/"],
        "": 2 * shares["https://own.example/"],
    }


def test_variant_shares_hold_within_three_points_over_10000_visitors() -> None:
    """The split itself, over 10,000 visitors of a day (their keyed address digests)."""
    variants = [
        {"name": "a", "url": "https://a.example/", "weight": 50},
        {"name": "b", "url": "https://b.example/", "weight": 30},
        {"name": "c", "url": "https://c.example/", "weight": 15},
    ]
    targeting = Targeting.of(None, variants, lambda url: url)
    assert targeting is not None
    chosen: Counter[str | None] = Counter()
    for visitor in range(10_000):
        digest = hashlib.blake2b(f"visitor {visitor}".encode(), key=b"k" * 16).hexdigest()
        to = targeting.choose(None, sticky_key(7, digest, DESKTOP_UA))  # type: ignore[arg-type]
        chosen[to.route if to else None] += 1
    for route, weight in (("a", 50), ("b", 30), ("c", 15), (None, 5)):
        assert abs(chosen[route] / 100 - weight) <= 3, chosen


def test_expiry_cap_and_fallback_come_before_rules(geo_client: TestClient, writer: dict) -> None:
    rules = [{"name": "ios", "if": {"os": ["iOS"]}, "url": "https://apps.apple.com/app/x"}]
    create_link(
        geo_client, writer, slug="over", url="https://shop.example/", rules=rules,
        expires_at="2020-01-01T00:00:00Z", fallback_url="https://shop.example/ended",
    )  # fmt: skip
    assert visit(geo_client, "over", IPHONE, JAKARTA_IP) == "https://shop.example/ended"
    create_link(
        geo_client, writer, slug="capped", url="https://shop.example/", rules=rules, max_clicks=1,
    )  # fmt: skip
    assert visit(geo_client, "capped", IPHONE, JAKARTA_IP) == "https://apps.apple.com/app/x"
    assert geo_client.get("/capped", headers={"User-Agent": IPHONE}).status_code == 410


def _password_link(client: TestClient, writer: dict, **extra: object) -> str:
    link = create_link(
        client, writer, url="https://private.example/deal", password="s3cret-pass",
        utm_source="vip", **extra,
    )  # fmt: skip
    return link["slug"]


def test_a_password_link_asks_first_and_counts_one_click(
    geo_client: TestClient, writer: dict
) -> None:
    slug = _password_link(geo_client, writer)
    asked = geo_client.get(f"/{slug}?ref=mail", headers={"User-Agent": DESKTOP_UA})
    assert asked.status_code == 401
    assert "private.example" not in asked.text and 'type="password"' in asked.text
    policy = asked.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    # The page's one style is allowed by its hash: no inline style is allowed otherwise.
    style = re.search(r"<style>(.*)</style>", asked.text)[1]  # type: ignore[index]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy and "'unsafe-inline'" not in policy
    assert geo_client.head(f"/{slug}").status_code == 401
    wrong = geo_client.post(f"/{slug}?ref=mail", data={"password": "guess"})
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    assert "private.example" not in wrong.text
    # The form asks Chromium for its model, but not critically: its post would come twice.
    assert "Sec-CH-UA-Model" in asked.headers["accept-ch"] and "critical-ch" not in asked.headers
    chromium = {"User-Agent": DESKTOP_UA, "Sec-CH-UA": '"Chromium";v="126"'}
    right = geo_client.post(f"/{slug}?ref=mail", data={"password": "s3cret-pass"}, headers=chromium)
    # 303: the browser goes on with a GET, not posting the password to the destination.
    assert right.status_code == 303
    assert right.headers["location"] == "https://private.example/deal?utm_source=vip&ref=mail"
    assert "critical-ch" not in right.headers
    # Counted, though without the model hint it asked for (a GET would wait for the repeat).
    clicks = clicks_of(geo_client, 1)
    assert len(clicks) == 1 and link_clicks(geo_client, slug) == 1


def test_password_attempts_are_limited_per_client_and_link(
    geo_client: TestClient, writer: dict
) -> None:
    slug, other = _password_link(geo_client, writer), _password_link(geo_client, writer)
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for _ in range(3):  # password_rate_limit: 3/minute
        assert (
            geo_client.post(f"/{slug}", data={"password": "x"}, headers=attacker).status_code == 401
        )
    # Past the limit even the right password waits.
    limited = geo_client.post(f"/{slug}", data={"password": "s3cret-pass"}, headers=attacker)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "private.example" not in limited.text
    # Another link, or another client, is not held up.
    assert (
        geo_client.post(f"/{other}", data={"password": "s3cret-pass"}, headers=attacker).status_code
        == 303
    )
    assert (
        geo_client.post(
            f"/{slug}", data={"password": "s3cret-pass"}, headers={"X-Forwarded-For": "203.0.113.7"}
        ).status_code
        == 303
    )


def test_a_password_links_preview_and_odd_posts_hold_no_destination(
    geo_client: TestClient, writer: dict
) -> None:
    slug = _password_link(geo_client, writer, og_title="A private deal")
    preview = geo_client.get(f"/{slug}", headers={"User-Agent": FACEBOOK_PREVIEW})
    assert preview.status_code == 200 and "A private deal" in preview.text
    assert "private.example" not in preview.text
    for body in ({"password": "s" * 5000}, {"other": "s3cret-pass"}, {}):
        refused = geo_client.post(f"/{slug}", data=body)
        assert refused.status_code == 401 and "private.example" not in refused.text
    create_link(geo_client, writer, slug="open", url="https://shop.example/")
    posted = geo_client.post("/open", data={"password": "x"})
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    # The preview fetch alone was recorded (as a bot's); no form post was.
    time.sleep(0.3)
    assert [click.bot_name for click in clicks_of(geo_client, 2, timeout=0)] == [
        "facebookexternalhit"
    ]
