"""Redirects become enriched click rows, through the real app and a real database."""

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.clicks.log import segment_paths
from app.config import Settings
from app.core.tables import Link
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link, make_key, run_in_transaction
from tests.support.clicks import (
    DESKTOP_UA,
    click_writer,
    clicks_of,
    link_clicks,
    raw_click,
    with_writer,
)

IPHONE_INSTAGRAM = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 Instagram 334.0.4.32.98 (iPhone15,2; iOS 17_5; en_US; en; scale=3.00; "
    "1179x2556; 612379432)"
)
SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
PREVIEW = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"


def test_each_redirect_becomes_an_enriched_click(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="c")
    client.get(
        "/c",
        headers={
            "User-Agent": IPHONE_INSTAGRAM,
            "Accept-Language": "id-ID,id;q=0.9",
            "X-Forwarded-For": "203.0.113.50",
        },
    )
    client.get(
        "/c?qr=1", headers={"User-Agent": SAMSUNG, "Referer": "https://l.facebook.com/l.php?u=x"}
    )
    client.get("/c", headers={"User-Agent": PREVIEW})
    first, second, third = clicks_of(client, 3)

    assert (first.device_type, first.os, first.device_brand) == ("mobile", "iOS", "Apple")
    assert (first.in_app, first.referrer_source, first.referrer_url) == (
        "instagram",
        "instagram",
        None,
    )
    assert (first.language, first.trigger, first.is_bot) == ("id", "link", False)
    assert first.ip == "203.0.113.0"  # from the trusted proxy's header, anonymized
    assert (second.device_brand, second.device_model, second.browser) == (
        "Samsung",
        "Galaxy S23 Ultra",
        "Chrome Mobile",
    )
    assert (second.referrer_domain, second.referrer_source, second.trigger) == (
        "facebook.com",
        "facebook",
        "qr",
    )
    assert (third.is_bot, third.bot_name, third.device_type) == (True, "facebookexternalhit", "bot")
    assert [c.id for c in (first, second, third)] == sorted(c.id for c in (first, second, third))
    assert link_clicks(client, "c") == 2  # humans only


def test_visitor_ids_are_stable_per_device_and_differ_between_devices(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="v")
    for ua in (DESKTOP_UA, DESKTOP_UA, SAMSUNG):
        client.get("/v", headers={"User-Agent": ua})
    one, again, other = clicks_of(client, 3)
    assert one.visitor_id == again.visitor_id != other.visitor_id
    assert len(one.visitor_id) == 32 and "127.0.0.1" not in one.visitor_id


def test_head_and_do_not_track_are_not_clicks(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="n")
    assert client.head("/n").status_code == 302
    assert client.get("/n?tautan_no_track=1").headers["location"] == "https://shop.example.com/"
    client.get("/n", headers={"User-Agent": DESKTOP_UA})
    rows = clicks_of(client, 1)
    time.sleep(0.2)  # several flush intervals: nothing else arrives
    assert len(clicks_of(client, 1)) == len(rows) == 1


def test_hostile_headers_are_stored_truncated(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="h")
    response = client.get(
        "/h",
        headers={
            "User-Agent": "Mozilla/5.0 " + "A" * 8000,
            "Referer": "https://x.example/" + "r" * 5000,
            "Accept-Language": "garbage;;;,",
            "X-Forwarded-For": "1.2.3.4, garbage, ::1",
        },
    )
    assert response.status_code == 302
    (row,) = clicks_of(client, 1)
    assert len(row.referrer_url or "") == 2048 and row.language is None


def test_max_clicks_counts_redirects_and_the_kpis_count_people(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="m", max_clicks=3, og_title="Drop")
    for _ in range(3):  # the preview page: no destination, no slot
        assert client.get("/m", headers={"User-Agent": PREVIEW}).status_code == 200
    googlebot = "Googlebot/2.1 (+http://www.google.com/bot.html)"
    assert client.get("/m", headers={"User-Agent": googlebot}).status_code == 302
    assert client.get("/m", headers={"User-Agent": DESKTOP_UA}).status_code == 302
    assert client.get("/m", headers={"User-Agent": SAMSUNG}).status_code == 302
    assert client.get("/m", headers={"User-Agent": DESKTOP_UA}).status_code == 410
    clicks_of(client, 6)
    link = client.get("/api/links/m", headers=writer).json()
    assert (link["clicks"], link["bot_clicks"]) == (2, 4)


@pytest.fixture
def office_client(settings: Settings) -> Iterator[TestClient]:
    ignoring = settings.model_copy(update={"ignore_ips": [ip_network("198.51.100.0/24")]})
    with with_writer(
        TestClient(create_app(ignoring), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        yield client


def test_clicks_from_ignored_networks_are_not_recorded(office_client: TestClient) -> None:
    create_link(office_client, make_key(office_client, "links:write"), slug="o")
    office_client.get("/o", headers={"X-Forwarded-For": "198.51.100.20", "User-Agent": DESKTOP_UA})
    office_client.get("/o", headers={"X-Forwarded-For": "192.0.2.20", "User-Agent": DESKTOP_UA})
    rows = clicks_of(office_client, 1)
    time.sleep(0.2)
    assert [r.ip for r in clicks_of(office_client, 1)] == [r.ip for r in rows] == ["192.0.2.0"]


def test_preview_pages_are_counted_apart_from_redirects(client: TestClient, writer: dict) -> None:
    create_link(client, writer, slug="og", og_title="Spring sale")
    page = client.get("/og", headers={"User-Agent": PREVIEW})
    assert page.status_code == 200 and "Spring sale" in page.text
    assert client.get("/og", headers={"User-Agent": DESKTOP_UA}).status_code == 302
    metrics = client.get("/metrics").text
    assert "tautan_preview_pages_total 1.0" in metrics
    assert "tautan_redirects_total 1.0" in metrics


def test_values_the_database_refuses_do_not_hold_up_the_others(
    client: TestClient, writer: dict, backend: str
) -> None:
    link = create_link(client, writer, slug="ok")
    click = dataclasses.replace(
        raw_click(link, datetime.now(UTC)),
        workspace_id=run_in_transaction(client, lambda s: s.scalar(select(Link.workspace_id))),
    )
    log_writer = click_writer(client)
    good = {**log_writer.enricher.enrich(click, b"s" * 32), "user_agent_id": None}
    refused = [{**good, "device_type": None}]  # NOT NULL: a constraint violation
    if backend == "postgresql":  # SQLite does not enforce lengths
        refused.append({**good, "country": "XYZ"})  # too long: a data exception
    assert client.portal is not None
    client.portal.call(log_writer.write_rows, [*refused, good])
    assert len(clicks_of(client, 1)) == 1
    assert log_writer.stats.clicks_rejected == len(refused)
    assert link_clicks(client, "ok") == 1


def test_clicks_count_on_the_link_without_touching_its_updated_at(
    client: TestClient, writer: dict
) -> None:
    created = create_link(client, writer, slug="u", max_clicks=10)
    for _ in range(2):
        client.get("/u", headers={"User-Agent": DESKTOP_UA})
    clicks_of(client, 2)
    link = client.get("/api/links/u", headers=writer).json()
    assert link["clicks"] == 2
    assert link["updated_at"] == created["updated_at"]


@pytest.mark.parametrize("store_ip", ["none", "anonymized", "full"])
def test_the_click_log_keeps_the_address_only_as_the_store_may(
    settings: Settings, store_ip: str
) -> None:
    settings = settings.model_copy(update={"store_ip": store_ip})
    # No writer: what the redirect appended stays in the log, to be read here.
    with TestClient(create_app(settings), base_url=BASE_URL, client=PEER) as client:
        create_link(client, make_key(client, "links:write"), slug="ip")
        headers = {"X-Forwarded-For": "203.0.113.50", "User-Agent": DESKTOP_UA}
        assert client.get("/ip", headers=headers, follow_redirects=False).status_code == 302
    logged = b"".join(p.read_bytes() for p in segment_paths(Path(settings.spool_dir)))
    kept = b'"203.0.113.50"' if store_ip == "full" else b'"203.0.113.0"'  # /24 for geography
    assert logged.count(kept) == 1
    assert (b"203.0.113.50" in logged) == (store_ip == "full")
