"""For any click set and any filter, every view of the KPIs tells the same total:
time series == summary == each breakdown == CSV rows; and a breakdown row, taken as a filter
(as a click on it in the dashboard does), gives a view whose totals are that row's. With the
clicks in the SQL database and in ClickHouse (embedded, and the server of
TAUTAN_TEST_CLICKHOUSE_URL when set)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from starlette.testclient import TestClient

from app.config import Settings
from app.core.principal import Principal
from app.core.tables import Click, Link, RollupDay, RollupHour
from app.stats import service
from app.stats.repository import Scope
from app.stats.routes import stats_query
from app.stats.service import DIMENSIONS, FILTERS, NONE, OTHER, UNKNOWN
from tests.support.app import create_link, make_key, run_in_transaction, state_of
from tests.support.clickhouse import ENGINES, clear, fresh_clickhouse
from tests.support.clicks import raw_click, seed_clicks

START = datetime(2026, 3, 25, tzinfo=UTC)  # spans Europe's change to summer time
AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0",
]
REFERERS = [
    "",
    "https://l.instagram.com/",
    "https://t.co/x",
    "https://www.google.com/",
    "android-app://com.whatsapp/",
]

clicks = st.lists(
    st.tuples(
        st.integers(0, 2),  # link
        st.integers(0, 10 * 24 * 60 - 1),  # minute of the ten days
        st.integers(0, len(AGENTS) - 1),
        st.integers(0, len(REFERERS) - 1),
        st.integers(1, 6),  # client address
        st.booleans(),  # scanned from a QR code
        st.sampled_from(["", "ios", "variant-b"]),  # the rule or variant that sent it
    ),
    max_size=40,
)
filters = st.fixed_dictionaries(
    {},
    optional={
        "include_bots": st.sampled_from(["true", "false"]),
        "tz": st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles"]),
        "device": st.sampled_from(["mobile", "-desktop", "desktop,bot"]),
        "link": st.sampled_from(["c0", "c1"]),
        "tag": st.sampled_from(["even", "-even"]),
        "from": st.sampled_from(["2026-03-26", "2026-03-26T10:30:00"]),
        "to": st.sampled_from(["2026-03-31", "2026-04-02T05:15:00"]),
    },
)


@pytest.fixture(params=["sql", *ENGINES])
def settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    """The click store: the SQL database, or ClickHouse."""
    if request.param == "sql":
        return settings
    return settings.model_copy(update={"clickhouse_url": fresh_clickhouse(request.param, tmp_path)})


def _seed(client: TestClient, writer: dict, clicks: list[tuple]) -> None:
    """The three links c0, c1, c2 (made once), holding `clicks` and no other."""
    links = [
        create_link(client, writer, slug=f"c{i}", tags=["even"] if i % 2 == 0 else [])
        if (found := client.get(f"/api/links/c{i}", headers=writer)).status_code == 404
        else found.json()
        for i in range(3)
    ]
    run_in_transaction(client, _forget_clicks)
    if state_of(client).clickhouse:
        clear(client)
    seed_clicks(client, [
        raw_click(links[link], START + timedelta(minutes=minute), ua=AGENTS[agent],
                  referer=REFERERS[referer], ip=f"203.0.113.{ip}", trigger="qr" if qr else "link",
                  route=route)
        for link, minute, agent, referer, ip, qr, route in clicks
    ])  # fmt: skip


def _views(client: TestClient, reader: dict, params: dict) -> dict:
    """The summary, after checking that every other view adds up to it."""

    def get(path: str, **extra: object) -> dict:
        response = client.get(f"/api/stats/{path}", params={**params, **extra}, headers=reader)
        assert response.status_code == 200, response.text
        return response.json()

    summary = get("summary")
    for interval in ("hour", "day", "week"):
        buckets = get("timeseries", interval=interval)["buckets"]
        assert sum(b["clicks"] for b in buckets) == summary["clicks"], interval
        assert sum(b["unique_visitors"] for b in buckets) == summary["unique_visitors"], interval
    for dimension in DIMENSIONS:
        rows = get(f"breakdown/{dimension}", limit=3)["rows"]
        assert sum(r["clicks"] for r in rows) == summary["clicks"], dimension
        assert sum(r["unique_visitors"] for r in rows) == summary["unique_visitors"], dimension
    export = client.get("/api/stats/clicks.csv", params=params, headers=reader)
    assert len(list(csv.DictReader(io.StringIO(export.text)))) == summary["clicks"]
    return summary


@examples(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(clicks=clicks, params=filters)
def test_every_view_adds_up_to_the_summary(
    client: TestClient, writer: dict, clicks: list[tuple], params: dict
) -> None:
    _seed(client, writer, clicks)
    reader = make_key(client, "stats:read")
    _views(client, reader, {"from": "2026-03-24", "to": "2026-04-05"} | params)


@examples(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clicks=clicks.filter(bool),
    dimension=st.sampled_from(sorted(FILTERS)),
    tz=st.sampled_from(["UTC", "Asia/Kolkata"]),
)
def test_a_breakdown_row_taken_as_a_filter_gives_that_rows_totals(
    client: TestClient, writer: dict, clicks: list[tuple], dimension: str, tz: str
) -> None:
    """Every filter the dashboard sets by a click on a row: the filtered summary is the
    row, and the filtered view adds up as any other."""
    _seed(client, writer, clicks)
    reader = make_key(client, "stats:read")
    params = {"from": "2026-03-24", "to": "2026-04-05", "tz": tz}
    response = client.get(f"/api/stats/breakdown/{dimension}", params=params, headers=reader)
    rows = [r for r in response.json()["rows"] if r["value"] not in (UNKNOWN, OTHER, NONE)]
    for row in rows:
        summary = _views(client, reader, params | {FILTERS[dimension]: row["value"]})
        assert (summary["clicks"], summary["unique_visitors"]) == (
            row["clicks"], row["unique_visitors"]), (dimension, row)  # fmt: skip


@examples(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clicks=clicks.filter(bool),
    params=filters,
    dimension=st.sampled_from(["utm_source", "link", "device_type", "country", "in_app"]),
    limit=st.sampled_from([1, 3]),
)
def test_a_breakdown_for_every_campaign_at_once_is_each_campaigns_own(
    client: TestClient, writer: dict, clicks: list[tuple], params: dict, dimension: str, limit: int
) -> None:
    """How the campaigns list reads the top source and device of each campaign: in one go,
    as the breakdown filtered to that campaign gives them."""
    for i, campaign in enumerate(("spring", "spring", "autumn")):  # c0, c1, c2
        if client.get(f"/api/links/c{i}", headers=writer).status_code == 404:
            create_link(client, writer, slug=f"c{i}", tags=["even"] if i % 2 == 0 else [],
                        utm_campaign=campaign, utm_source=("ig", "tiktok")[i % 2])  # fmt: skip
    _seed(client, writer, clicks)
    params = {"from": "2026-03-24", "to": "2026-04-05"} | params
    asked = {"from_" if name == "from" else name: value for name, value in params.items()}
    asked["include_bots"] = asked.get("include_bots") == "true"
    asked["link"] = [asked["link"]] if "link" in asked else []
    query = stats_query(SimpleNamespace(short_host="tautan.test"), **asked)  # type: ignore[arg-type]
    workspace = run_in_transaction(client, lambda s: s.scalar(select(Link.workspace_id)))
    principal = Principal(key_id=0, workspace_id=workspace, scopes=frozenset({"stats:read"}))

    async def per_campaign(session: Any) -> dict:
        reads = service.reads_for(session, state_of(client).clickhouse)
        scope = Scope(principal, query)
        return await service.breakdowns_per(reads, scope, dimension, limit, per="utm_campaign")

    found = run_in_transaction(client, per_campaign)
    reader = make_key(client, "stats:read")
    for campaign in ("spring", "autumn"):
        response = client.get(
            f"/api/stats/breakdown/{dimension}",
            params={**params, "utm_campaign": campaign, "limit": limit},
            headers=reader,
        )
        assert found.get(campaign, []) == response.json()["rows"], campaign


async def _forget_clicks(session) -> None:  # type: ignore[no-untyped-def]
    for table in (Click, RollupHour, RollupDay):
        await session.execute(delete(table))
    await session.execute(update(Link).values(clicks=0, unique_visitors=0, bot_clicks=0))
