import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from starlette.testclient import TestClient

from app import migrate
from app.config import Settings
from app.core.tables import Click, Link, RollupDay, RollupHour, Workspace
from app.main import create_app
from app.stats.service import DIMENSIONS
from tests.support.app import create_link, make_key, run_in_transaction
from tests.support.clicks import raw_click, seed_clicks, with_writer

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
PREVIEW = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
DAY = datetime(2026, 3, 10, tzinfo=UTC)
RANGE = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def reader(client: TestClient) -> dict[str, str]:
    return make_key(client, "stats:read")


@pytest.fixture
def seeded(client: TestClient, writer: dict) -> dict[str, dict]:
    """Two links; humans and a bot, over three days in March 2026."""
    a = create_link(
        client, writer, slug="a", tags=["ig"], utm_campaign="spring", utm_source="instagram"
    )
    b = create_link(
        client, writer, slug="b", tags=["fb"], utm_campaign="spring", utm_source="facebook"
    )
    seed_clicks(client, [
        raw_click(a, DAY + timedelta(hours=9), ua=IPHONE, referer="https://l.instagram.com/"),
        raw_click(a, DAY + timedelta(hours=9, minutes=5), ua=IPHONE, referer="https://l.instagram.com/"),
        raw_click(a, DAY + timedelta(hours=22), ip="198.51.100.1", referer="https://t.co/x"),
        raw_click(a, DAY + timedelta(days=1, hours=3), ua=IPHONE),  # same person, next day
        raw_click(a, DAY + timedelta(hours=10), ua=PREVIEW),
        raw_click(b, DAY + timedelta(days=2, hours=12), ip="198.51.100.2", language="id-ID"),
        raw_click(b, DAY + timedelta(days=2, hours=12, minutes=30), ip="198.51.100.3", trigger="qr"),
    ])  # fmt: skip
    return {"a": a, "b": b}


def get(client: TestClient, headers: dict, path: str, **params: Any) -> Any:
    response = client.get(f"/api/stats/{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_summary(client: TestClient, reader: dict, seeded: dict) -> None:
    summary = get(client, reader, "summary", **RANGE)
    assert summary | {"first_click": None, "last_click": None} == {
        "clicks": 6, "unique_visitors": 5, "bot_clicks": 1, "links": 2,
        "first_click": None, "last_click": None,
    }  # fmt: skip
    assert summary["first_click"].startswith("2026-03-10T09:00:00")
    assert summary["last_click"].startswith("2026-03-12T12:30:00")
    with_bots = get(client, reader, "summary", include_bots="true", **RANGE)
    assert (with_bots["clicks"], with_bots["unique_visitors"], with_bots["bot_clicks"]) == (7, 6, 1)
    assert get(client, reader, "summary", link="b", **RANGE)["clicks"] == 2
    assert get(client, reader, "summary", link=["a", "b"], **RANGE)["clicks"] == 6
    assert get(client, reader, "summary", tag="fb", **RANGE)["clicks"] == 2
    assert get(client, reader, "summary", tag="-fb", **RANGE)["clicks"] == 4
    assert get(client, reader, "summary", utm_source="instagram,facebook", **RANGE)["clicks"] == 6
    assert get(client, reader, "summary", device="-desktop", **RANGE)["clicks"] == 3
    assert get(client, reader, "summary", device="mobile", **RANGE)["unique_visitors"] == 2
    assert (
        get(client, reader, "summary", **{"from": "2026-03-11", "to": "2026-03-11"})["clicks"] == 1
    )
    empty = get(client, reader, "summary", **{"from": "2025-01-01", "to": "2025-01-31"})
    assert (empty["clicks"], empty["links"], empty["first_click"]) == (0, 0, None)


def test_timeseries_is_zero_filled_in_the_zone(
    client: TestClient, reader: dict, seeded: dict
) -> None:
    series = get(
        client,
        reader,
        "timeseries",
        interval="day",
        tz="Asia/Jakarta",
        **{"from": "2026-03-09", "to": "2026-03-13"},
    )
    assert (series["interval"], series["tz"]) == ("day", "Asia/Jakarta")
    assert [b["start"] for b in series["buckets"]][:2] == [
        "2026-03-09T00:00:00+07:00",
        "2026-03-10T00:00:00+07:00",
    ]
    # 22:00 UTC on the 10th is the 11th in Jakarta
    assert [b["clicks"] for b in series["buckets"]] == [0, 2, 2, 2, 0]
    assert [b["unique_visitors"] for b in series["buckets"]] == [0, 1, 2, 2, 0]
    hourly = get(
        client, reader, "timeseries", interval="hour", **{"from": "2026-03-10", "to": "2026-03-10"}
    )
    assert len(hourly["buckets"]) == 24 and hourly["buckets"][9]["clicks"] == 2


def test_time_series_in_a_half_hour_zone(client: TestClient, reader: dict, seeded: dict) -> None:
    series = get(
        client,
        reader,
        "timeseries",
        interval="hour",
        tz="Asia/Kolkata",
        **{"from": "2026-03-12", "to": "2026-03-12"},
    )
    clicks = {b["start"][11:16]: b["clicks"] for b in series["buckets"] if b["clicks"]}
    assert clicks == {"17:00": 1, "18:00": 1}  # 12:00 and 12:30 UTC


def test_breakdowns(client: TestClient, reader: dict, seeded: dict) -> None:
    def rows(dimension: str, **params: Any) -> list[tuple]:
        body = get(client, reader, f"breakdown/{dimension}", **RANGE, **params)
        assert body["dimension"] == dimension
        return [(r["value"], r["clicks"], r["unique_visitors"]) for r in body["rows"]]

    assert rows("link") == [("a", 4, 3), ("b", 2, 2)]
    assert rows("utm_campaign") == [("spring", 6, 5)]
    assert rows("referrer_source") == [("direct", 3, 3), ("instagram", 2, 1), ("x", 1, 1)]
    assert rows("device_type") == [("desktop", 3, 3), ("mobile", 3, 2)]
    assert rows("language") == [("(unknown)", 5, 4), ("id", 1, 1)]
    assert rows("trigger") == [("link", 5, 4), ("qr", 1, 1)]
    assert rows("country") == [("(unknown)", 6, 5)]  # no geo database configured
    assert rows("weekday") == [("Tuesday", 3, 2), ("Thursday", 2, 2), ("Wednesday", 1, 1)]
    assert rows("hour_of_day", tz="Asia/Jakarta")[0] == ("16", 2, 1)
    # People are no bot and ordinary browsers in no app: "(none)", not "(unknown)".
    assert rows("bot_name", include_bots="true") == [
        ("(none)", 6, 5),
        ("facebookexternalhit", 1, 1),
    ]
    assert rows("in_app") == [("(none)", 6, 5)]
    assert rows("referrer_source", limit=1) == [("direct", 3, 3), ("(other)", 3, 2)]
    shares = get(client, reader, "breakdown/link", **RANGE)["rows"]
    assert [r["share"] for r in shares] == [0.6667, 0.3333]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"include_bots": "true"},
        {"tz": "Asia/Kolkata"},  # not whole hours: raw clicks answer
        {"device": "mobile"},  # a click filter: raw clicks answer
        {"from": "2026-03-10T09:03:00", "to": "2026-03-12T12:10:00"},  # not on whole hours
        {"from": "2026-03-10T21:00:00", "to": "2026-03-12T04:59:59"},  # days and edges mixed
        {"link": "a", "tz": "America/New_York"},
    ],
)
def test_every_answer_adds_up(client: TestClient, reader: dict, seeded: dict, params: dict) -> None:
    params = {**RANGE, **params}
    total = get(client, reader, "summary", **params)
    series = get(client, reader, "timeseries", **params)["buckets"]
    assert sum(b["clicks"] for b in series) == total["clicks"]
    assert sum(b["unique_visitors"] for b in series) == total["unique_visitors"]
    for dimension in DIMENSIONS:
        rows = get(client, reader, f"breakdown/{dimension}", limit=1000, **params)["rows"]
        assert sum(r["clicks"] for r in rows) == total["clicks"], dimension
        assert sum(r["unique_visitors"] for r in rows) == total["unique_visitors"], dimension
    exported = client.get("/api/stats/clicks.csv", params=params, headers=reader)
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == total["clicks"]


def test_rollups_and_raw_clicks_agree(client: TestClient, reader: dict, seeded: dict) -> None:
    aligned = {"from": "2026-03-10T00:00:00Z", "to": "2026-03-12T23:59:59.999999Z"}
    shifted = {"from": "2026-03-10T00:00:00.000001Z", "to": "2026-03-12T23:59:59.999998Z"}
    for path in ("summary", "timeseries", "breakdown/referrer_source", "breakdown/link"):
        assert get(client, reader, path, **aligned) == get(client, reader, path, **shifted), path


def test_another_workspace_sees_none_of_these_clicks(client: TestClient, seeded: dict) -> None:
    stranger = make_key(client, "stats:read", workspace="client-b")
    assert get(client, stranger, "summary", **RANGE)["clicks"] == 0
    assert client.get("/api/stats/summary", params={"link": "a"}, headers=stranger).json() == (
        unknown_links("a")
    )
    assert get(client, stranger, "breakdown/link", **RANGE)["rows"] == []
    export = client.get("/api/stats/clicks.csv", params=RANGE, headers=stranger)
    assert export.text.strip().count("\n") == 0  # the header only
    assert (
        get(client, make_key(client, "admin", workspace="client-b"), "summary", **RANGE)["clicks"]
        == 6
    )


def unknown_links(*slugs: str) -> dict:
    """The 404 body for these unknown slugs."""
    names = ", ".join(f"'{slug}'" for slug in slugs)
    message = f"link{'s' if len(slugs) > 1 else ''} {names} not found"
    details = {"field": "link", "unknown": list(slugs)}
    return {"error": {"code": "not_found", "message": message, "details": details}}


STATS_PATHS = ("summary", "timeseries", "breakdown/country", "breakdown/link", "clicks.csv")


@pytest.mark.parametrize("path", STATS_PATHS)
def test_a_link_not_in_the_keys_scope_is_404_not_zeros(
    client: TestClient, reader: dict, seeded: dict, path: str
) -> None:
    def ask(headers: dict, link: str | list[str], **params: Any) -> Any:
        return client.get(
            f"/api/stats/{path}", params={**RANGE, "link": link, **params}, headers=headers
        )

    missing = ask(reader, "nope")
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"] == "application/json"
    assert missing.json() == unknown_links("nope")
    # Any unknown one of several is named; the known ones are not.
    assert ask(reader, ["a", "nope", "b", "gone"]).json() == unknown_links("nope", "gone")
    assert ask(reader, ["a", "nope", "nope"]).json() == unknown_links("nope")
    assert ask(reader, "A").status_code == 404  # slugs are case-sensitive
    assert ask(reader, "nope", tz="Mars/Olympus").status_code == 422  # bad input first

    # A link of another workspace is as unknown as a missing one: nothing leaks.
    stranger = make_key(client, "stats:read", workspace="client-b")
    create_link(client, make_key(client, "links:write", workspace="client-b"), slug="theirs")
    assert ask(stranger, "a").json() == unknown_links("a")
    assert ask(stranger, ["theirs", "a"]).json() == unknown_links("a")
    assert ask(stranger, "theirs").status_code == 200
    assert ask(reader, "theirs").json() == unknown_links("theirs")
    # An admin key, of any workspace, sees every workspace's links.
    admin = make_key(client, "admin", workspace="client-b")
    assert ask(admin, ["a", "theirs"]).status_code == 200
    assert ask(admin, ["a", "nope"]).json() == unknown_links("nope")

    # An archived link keeps its clicks and stats: it is no unknown link.
    writer = make_key(client, "links:write")
    assert client.delete("/api/links/b", headers=writer).status_code == 204
    assert ask(reader, "b").status_code == 200
    if path == "summary":
        assert ask(reader, "b").json()["clicks"] == 2
    # Purged, it is gone.
    purged = client.delete("/api/links/b", params={"purge": "true"}, headers=writer)
    assert purged.status_code == 204
    assert ask(reader, "b").json() == unknown_links("b")


def test_stats_need_the_stats_scope(client: TestClient, seeded: dict) -> None:
    links_only = make_key(client, "links:read", "links:write")
    for path in ("summary", "timeseries", "breakdown/country", "clicks.csv"):
        assert client.get(f"/api/stats/{path}", headers=links_only).status_code == 403
        assert client.get(f"/api/stats/{path}").status_code == 401


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("timeseries", {"tz": "Mars/Olympus"}),
        ("timeseries", {"interval": "fortnight"}),
        ("summary", {"from": "not-a-date"}),
        ("summary", {"from": "2026-03-02", "to": "2026-03-01"}),
        ("breakdown/shoe_size", {}),
        ("breakdown/country", {"limit": 0}),
        ("timeseries", {"from": "2000-01-01", "to": "2026-01-01", "interval": "hour"}),
        ("summary", {"include_bots": "maybe"}),
        # Dates past what a time zone or a day's step can hold were 500s.
        ("summary", {"from": "9999-12-30", "to": "9999-12-31"}),
        ("summary", {"from": "0001-01-01", "tz": "Asia/Kolkata"}),
        ("summary", {"to": "9999-12-31T23:59:59.999999"}),
        ("timeseries", {"from": "9999-01-01", "to": "9999-12-30", "interval": "month"}),
        ("breakdown/link", {"from": "1969-12-31"}),
    ],
)
def test_bad_parameters_are_422(client: TestClient, reader: dict, path: str, params: dict) -> None:
    response = client.get(f"/api/stats/{path}", params=params, headers=reader)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"]


def test_csv_export(client: TestClient, writer: dict, reader: dict) -> None:
    link = create_link(client, writer, slug="csv")
    seed_clicks(client, [
        raw_click(link, DAY, referer='https://ex.example/?q="quoted",comma'),
        raw_click(link, DAY + timedelta(minutes=1), referer="=HYPERLINK(\"http://evil\")"),
        raw_click(link, DAY + timedelta(minutes=2), ua=PREVIEW),
    ])  # fmt: skip
    response = client.get("/api/stats/clicks.csv", params=RANGE, headers=reader)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2 and rows[0]["link"] == "csv"
    assert rows[0]["referrer_url"] == 'https://ex.example/?q="quoted",comma'
    assert rows[0]["ip"] == "203.0.113.0" and rows[0]["ts"] == "2026-03-10T00:00:00+00:00"
    assert rows[1]["referrer_url"].startswith("'=")  # a formula never reaches a spreadsheet
    with_bots = client.get(
        "/api/stats/clicks.csv", params={**RANGE, "include_bots": "true"}, headers=reader
    )
    assert len(list(csv.DictReader(io.StringIO(with_bots.text)))) == 3


def test_clicks_csv_writes_booleans_as_true_and_false(
    client: TestClient, reader: dict, seeded: dict
) -> None:
    response = client.get(
        "/api/stats/clicks.csv",
        params={**RANGE, "link": "a", "include_bots": "true"},
        headers=reader,
    )
    rows = sorted(csv.DictReader(io.StringIO(response.text)), key=lambda r: r["ts"])
    # 09:00 new, 09:05 the same person again, 10:00 the preview fetcher, 22:00 someone new,
    # the next day the first person again (new on a new UTC day).
    assert [(r["ts"][11:16], r["new_visitor"], r["is_bot"]) for r in rows] == [
        ("09:00", "true", "false"),
        ("09:05", "false", "false"),
        ("10:00", "true", "true"),
        ("22:00", "true", "false"),
        ("03:00", "true", "false"),
    ]


def test_stats_read_from_the_read_replica(settings: Settings, tmp_path: Path, seeded: dict) -> None:
    # A "replica" that has not caught up: an empty database. Stats must come from it.
    replica = f"sqlite+aiosqlite:///{tmp_path}/replica.db"
    migrate.upgrade(replica)
    with with_writer(
        TestClient(create_app(settings.model_copy(update={"read_database_url": replica})))
    ) as other:
        admin = make_key(other, "admin")
        assert get(other, admin, "summary", **RANGE)["clicks"] == 0
        assert other.get("/api/links/a", headers=admin).status_code == 200  # the primary


@pytest.mark.parametrize("name", ["link", "tag", "utm_source", "country", "device", "tz", "from"])
@pytest.mark.parametrize("endpoint", ["summary", "breakdown/country", "clicks.csv"])
def test_nul_in_a_filter_is_refused_with_422(
    client: TestClient, reader: dict, endpoint: str, name: str
) -> None:
    response = client.get(f"/api/stats/{endpoint}", params={name: "ID\x00"}, headers=reader)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_a_compact_date_is_the_whole_day(client: TestClient, reader: dict, seeded: dict) -> None:
    assert get(client, reader, "summary", **{"from": "20260310", "to": "20260310"})["clicks"] == 3


def test_all_time_from_1970_in_any_zone(client: TestClient, reader: dict, seeded: dict) -> None:
    for zone in ("Europe/Berlin", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        span = {"from": "1970-01-01", "to": "2026-12-31", "tz": zone}
        assert get(client, reader, "summary", **span)["clicks"] == 6, zone


def test_hour_of_day_where_daylight_saving_moves_the_clock_half_an_hour(
    client: TestClient, writer: dict, reader: dict
) -> None:
    """Lord Howe Island is UTC+11 in summer and +10:30 in winter: the rollups' UTC hours
    are not its local hours then, even though both ends of the range fall in summer."""
    link = create_link(client, writer, slug="howe")
    seed_clicks(client, [raw_click(link, datetime(2026, 6, 1, 0, 45, tzinfo=UTC))])
    span = {"from": "2025-12-01", "to": "2026-12-31", "tz": "Australia/Lord_Howe"}
    rows = get(client, reader, "breakdown/hour_of_day", **span)["rows"]
    assert [(r["value"], r["clicks"]) for r in rows] == [("11", 1)]  # 11:15 local


def test_hourly_series_over_the_repeated_hour_comes_from_the_rollups(
    client: TestClient, writer: dict, reader: dict
) -> None:
    """A range ending in the repeated hour of a fall-back night is on whole hours: the
    rollups answer it, so it keeps its numbers once raw clicks are purged."""
    link = create_link(client, writer, slug="fall")
    seed_clicks(client, [raw_click(link, datetime(2026, 10, 24, 12, tzinfo=UTC))])
    run_in_transaction(client, lambda s: s.execute(delete(Click)))  # as a retention purge leaves it
    span = {"from": "2026-10-24", "to": "2026-10-25", "tz": "Europe/Berlin", "interval": "hour"}
    series = get(client, reader, "timeseries", **span)["buckets"]
    assert len(series) == 49  # the night of 25 October has 25 hours
    assert sum(b["clicks"] for b in series) == get(client, reader, "summary", **span)["clicks"] == 1


def test_a_link_breakdown_over_more_links_than_one_statement_takes(
    client: TestClient, reader: dict
) -> None:
    """asyncpg takes at most 32,767 parameters in a statement."""
    count = 33_000
    hour = DAY.replace(hour=9)

    async def seed(session: Any) -> None:
        workspace = await session.scalar(select(Workspace.id))
        links = [
            {"workspace_id": workspace, "slug": f"m{i}", "url": "https://shop.example/",
             "redirect_code": 302, "forward_query": True}
            for i in range(count)
        ]  # fmt: skip
        await session.execute(insert(Link), links)
        ids = (await session.scalars(select(Link.id))).all()
        # Both rollups, as the writer keeps them: a click's hour, and its day's value of
        # each dimension (whole days are counted from these).
        await session.execute(
            insert(RollupHour),
            [{"link_id": i, "hour": hour, "is_bot": False, "workspace_id": workspace,
              "clicks": 1, "visitors": 1} for i in ids],
        )  # fmt: skip
        await session.execute(
            insert(RollupDay),
            [{"link_id": i, "dimension": "device_type", "day": hour.date(), "is_bot": False,
              "value": "mobile", "workspace_id": workspace, "clicks": 1, "visitors": 1}
             for i in ids],
        )  # fmt: skip

    run_in_transaction(client, seed)
    rows = get(client, reader, "breakdown/link", limit=3, **RANGE)["rows"]
    assert len(rows) == 4 and sum(r["clicks"] for r in rows) == count
