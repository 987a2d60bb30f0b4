"""`tautan reenrich`: stored clicks get the device fields today's parsers give, and the
rollups and link counters follow, on both databases."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.clicks.enrich.enricher import device_fields
from app.clicks.reenrich import reenrich
from app.clicks.user_agents import key_of
from app.core.tables import Click, UserAgent
from tests.support.app import create_link, run_in_transaction, state_of
from tests.support.cli import tautan
from tests.support.clicks import click_writer, raw_click, seed_clicks

SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def stats(client: TestClient, headers: dict[str, str], path: str, **params: str) -> dict:
    response = client.get(
        f"/api/stats/{path}", params={"from": "2026-01-01", **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_reenrich_updates_clicks_rollups_and_counters(
    client: TestClient, writer: dict[str, str], database_url: str
) -> None:
    link = create_link(client, writer, slug="re")
    enricher = click_writer(client).enricher
    # What an older parser said: the Samsung as a phone of no known model, the iPhone as a bot.
    old_samsung = {**device_fields(SAMSUNG), "device_brand": None, "device_model": "SM-S918B"}
    old_iphone = {
        **device_fields(IPHONE),
        "is_bot": True,
        "bot_name": "crawler",
        "device_type": "bot",
    }
    enricher._devices[key_of(SAMSUNG, "")] = old_samsung
    enricher._devices[key_of(IPHONE, "")] = old_iphone
    now = datetime.now(UTC)
    seed_clicks(
        client,
        [
            raw_click(link, now - timedelta(days=d), ua=SAMSUNG, ip=f"203.0.113.{d}")
            for d in range(3)
        ]
        + [raw_click(link, now - timedelta(days=1), ua=IPHONE, ip="198.51.100.7")],
    )
    before = stats(client, writer, "breakdown/device_brand")
    assert {row["value"]: row["clicks"] for row in before["rows"]} == {"(unknown)": 3}
    assert client.get("/api/links/re", headers=writer).json()["bot_clicks"] == 1

    # Reruns from a day on touch that day and later only.
    since = (now - timedelta(days=1)).date()
    done = client.portal.call(reenrich, state_of(client).engine, since)
    assert (done.user_agents, done.changed, done.clicks) == (2, 2, 3)

    rows = run_in_transaction(
        client,
        lambda s: s.execute(select(Click.ts, Click.device_model, Click.is_bot).order_by(Click.ts)),
    )
    models = [(model, is_bot) for _ts, model, is_bot in rows]
    assert models[0] == ("SM-S918B", False)  # two days ago: before --since, as it was
    assert sorted(models[1:], key=str) == sorted(
        [("Galaxy S23 Ultra", False), ("Galaxy S23 Ultra", False), ("iPhone", False)], key=str
    )
    brands = {
        row["value"]: row["clicks"]
        for row in stats(client, writer, "breakdown/device_brand")["rows"]
    }
    assert brands == {"Samsung": 2, "(unknown)": 1, "Apple": 1}
    link_now = client.get("/api/links/re", headers=writer).json()
    assert (link_now["clicks"], link_now["bot_clicks"]) == (4, 0)
    summary = stats(client, writer, "summary")
    assert (summary["clicks"], summary["bot_clicks"]) == (4, 0)
    series = stats(client, writer, "timeseries", interval="day")
    assert sum(bucket["clicks"] for bucket in series["buckets"]) == 4

    # A second run finds nothing left to change; the command line says so.
    again = tautan(database_url, "reenrich", "--since", since.isoformat())
    assert again.returncode == 0, again.stderr
    assert "2 user agents looked at, 0 changed" in again.stdout
    assert (
        run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(UserAgent)))
        == 2
    )


def test_each_distinct_user_agent_and_hints_is_stored_once(
    client: TestClient, writer: dict[str, str]
) -> None:
    link = create_link(client, writer, slug="once")
    now = datetime.now(UTC)
    clicks = [raw_click(link, now, ua=SAMSUNG, ip=f"203.0.113.{n}") for n in range(5)]
    clicks[0].client_hints = 'sec-ch-ua-model: "SM-S918B"'
    seed_clicks(client, clicks)
    seed_clicks(client, clicks[1:2])  # a later batch: known, by the process and the table
    stored = run_in_transaction(
        client, lambda s: s.execute(select(UserAgent.user_agent, UserAgent.client_hints))
    )
    assert sorted(stored) == [(SAMSUNG, ""), (SAMSUNG, 'sec-ch-ua-model: "SM-S918B"')]
    ids = list(run_in_transaction(client, lambda s: s.scalars(select(Click.user_agent_id))))
    assert None not in ids and len(set(ids)) == 2
