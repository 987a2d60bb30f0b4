from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from tests.conftest import BASE_URL, create_link, raw_click, seed_clicks, tautan


def test_links_create_prints_a_working_short_url(client: TestClient, database_url: str) -> None:
    result = tautan(
        database_url,
        "links",
        "create",
        "https://shop.example/p",
        "--slug",
        "cli",
        "--utm-source",
        "newsletter",
        "--tag",
        "mail",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{BASE_URL}/cli"
    assert client.get("/cli").headers["location"] == "https://shop.example/p?utm_source=newsletter"
    refused = tautan(database_url, "links", "create", "javascript:alert(1)")
    assert refused.returncode == 1 and "http and https" in refused.stdout
    taken = tautan(database_url, "links", "create", "https://shop.example/", "--slug", "cli")
    assert taken.returncode == 1 and "taken" in taken.stdout


def test_stats_prints_a_summary(client: TestClient, writer: dict, database_url: str) -> None:
    link = create_link(client, writer, slug="st")
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    seed_clicks(
        client,
        [raw_click(link, day, ip=f"203.0.113.{i}") for i in range(3)]
        + [raw_click(link, day + timedelta(days=1), ua="Twitterbot/1.0")],
    )
    result = tautan(database_url, "stats", "st", "--from", "2026-03-09", "--to", "2026-03-12")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "clicks 3" in out and "unique visitors 3" in out and "fetches 1" in out
    assert "2026-03-10" in out and "desktop" in out and "direct" in out
    assert tautan(database_url, "stats", "nope").returncode == 1
