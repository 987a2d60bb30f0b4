"""ClickHouse as the click store (TAUTAN_CLICKHOUSE_URL): the stats give the SQL store's
answers for the same clicks, a batch is stored once however often it is sent, and a batch
that did not reach ClickHouse is inserted by a later round."""

import asyncio
import csv
import dataclasses
import fcntl
import io
import os
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, event, func, select, update
from starlette.testclient import TestClient

from app.clickhouse import embedded
from app.clickhouse.client import ClickHouseError, Server
from app.clicks.raw import RawClick
from app.clicks.store.clickhouse import ID_BITS, ClickHouseStore
from app.clicks.store.sql import CLICK_COLUMNS
from app.config import Settings
from app.core.tables import ClickHouseBatch, Link, VisitorDay
from app.main import create_app
from app.stats.service import DIMENSIONS
from tests.support.app import BASE_URL, PEER, create_link, make_key, run_in_transaction, state_of
from tests.support.clickhouse import fresh_clickhouse, query
from tests.support.clicks import click_writer, raw_click, seed_clicks, with_writer
from tests.support.geo import JAKARTA, JAKARTA_V4, MUNICH, write_mmdb
from tests.support.server import UAS

START = datetime(2026, 3, 25, tzinfo=UTC)  # spans Europe's change to summer time
# A phone of each kind, a desktop and a preview fetcher, and Instagram's in-app browser.
AGENTS = [
    *UAS,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.0.42.95",
]
REFERERS = ["", "https://l.instagram.com/", "https://t.co/x", "https://www.google.com/"]
ADDRESSES = ["36.64.0.7", "36.64.1.9", "81.10.0.3", "203.0.113.5", "203.0.113.6"]
QUERIES: list[dict[str, Any]] = [
    {},
    {"tz": "Asia/Kolkata"},
    {"from": "2026-03-26T10:30:00", "to": "2026-04-02T05:15:00"},
    {"country": "ID", "tz": "Europe/Berlin"},
    {"device": "-desktop", "include_bots": "true"},
    {"link": "go.brand.test/sale", "utm_campaign": "spring"},
    # Links named: their sums and the hours of their first and last clicks come from one
    # read of the hourly view, whose first and last rows are bots' (added to the clicks).
    {"link": ["sale", "menu"]},
    {"link": ["sale", "menu"], "include_bots": "true"},
    {"tag": "-even", "domain": "127.0.0.1"},
]


def seeded_answers(client: TestClient, clicks: list[RawClick]) -> dict[str, Any]:
    """Every stats answer for QUERIES, after writing `clicks` through the app's writer."""
    seed_clicks(client, clicks)
    reader = make_key(client, "stats:read")
    answers: dict[str, Any] = {}
    for asked in QUERIES:
        params = {"from": "2026-03-24", "to": "2026-04-05"} | asked

        def get(path: str, params: dict = params, **extra: object) -> Any:
            response = client.get(f"/api/stats/{path}", params={**params, **extra}, headers=reader)
            assert response.status_code == 200, response.text
            return response.json() if path != "clicks.csv" else response.text

        key = str(sorted(params.items()))
        answers[key + " summary"] = get("summary")
        for interval in ("hour", "day", "week"):
            answers[f"{key} {interval}"] = get("timeseries", interval=interval)
        for dimension in DIMENSIONS:
            answers[f"{key} {dimension}"] = get(f"breakdown/{dimension}", limit=5)
        rows = list(csv.DictReader(io.StringIO(get("clicks.csv"))))
        assert len(rows) == answers[key + " summary"]["clicks"]
        # Ids differ, and so do visitor ids: a day's salt is made anew once the one of the
        # first run is deleted (two days on, here while the first run wrote later days).
        answers[key + " csv"] = sorted(str({**row, "id": 0, "visitor_id": 0}) for row in rows)
    return answers


def test_clickhouse_gives_the_sql_stores_answers(
    settings: Settings, clickhouse_url: str, tmp_path: Path
) -> None:
    geo = write_mmdb(
        tmp_path / "city.mmdb", "GeoIP2-City", {JAKARTA_V4: JAKARTA, "81.10.0.0/16": MUNICH}
    )
    settings = settings.model_copy(update={"geoip_db": str(geo)})
    rng = random.Random(7)
    with with_writer(TestClient(create_app(settings), base_url=BASE_URL, client=PEER)) as sql:
        admin = make_key(sql, "admin")
        assert (
            sql.post("/api/domains", json={"host": "go.brand.test"}, headers=admin).status_code
            == 201
        )
        links = [
            create_link(sql, admin, slug="sale", utm_campaign="spring", tags=["even"]),
            create_link(sql, admin, slug="menu", utm_campaign="autumn"),
            create_link(sql, admin, slug="sale", domain="go.brand.test", utm_campaign="spring"),
        ]
        clicks = [
            raw_click(rng.choice(links), START + timedelta(minutes=rng.randrange(11 * 24 * 60)),
                      ua=rng.choice(AGENTS), referer=rng.choice(REFERERS),
                      ip=rng.choice(ADDRESSES), language=rng.choice(["id-ID", "de", ""]),
                      trigger=rng.choice(["link", "link", "qr"]),
                      route=rng.choice(["", "", "ios", "variant-b"]))
            for _ in range(400)
        ]  # fmt: skip
        # The first and the last click of all are a preview fetcher's: counted with bots only.
        clicks += [raw_click(links[0], START - timedelta(hours=2), ua=UAS[3]),
                   raw_click(links[1], START + timedelta(days=11, hours=1), ua=UAS[3])]  # fmt: skip
        in_sql = seeded_answers(sql, clicks)
    assert (
        in_sql[str(sorted({"from": "2026-03-24", "to": "2026-04-05"}.items())) + " summary"][
            "clicks"
        ]
        > 300
    )
    in_clickhouse_settings = settings.model_copy(update={"clickhouse_url": clickhouse_url})
    app = create_app(in_clickhouse_settings)
    with with_writer(TestClient(app, base_url=BASE_URL, client=PEER)) as clickhouse:
        # The same links, and the visitors' first clicks of a day to be marked anew.
        run_in_transaction(clickhouse, lambda s: s.execute(delete(VisitorDay)))
        in_clickhouse = seeded_answers(clickhouse, clicks)
        assert query(clickhouse, "SELECT count() FROM clicks") == [[len(clicks)]]
    assert in_clickhouse.keys() == in_sql.keys()
    for key in in_sql:
        assert in_clickhouse[key] == in_sql[key], key


@pytest.fixture
def clickhouse_client(settings: Settings, clickhouse_url: str) -> Any:
    app = create_app(settings.model_copy(update={"clickhouse_url": clickhouse_url}))
    with with_writer(TestClient(app, base_url=BASE_URL, client=PEER)) as client:
        yield client


def totals(client: TestClient) -> list[list[int]]:
    """Clicks, and what each view counted of them."""
    return [
        query(client, "SELECT count() FROM clicks")[0],
        query(client, "SELECT sum(clicks) FROM rollup_hours")[0],
        query(client, "SELECT sum(clicks) FROM rollup_days WHERE dimension = 'device_type'")[0],
    ]


def test_a_batch_sent_twice_is_stored_once(clickhouse_client: TestClient) -> None:
    client = clickhouse_client
    link = create_link(client, make_key(client, "admin"), url="https://shop.test/")
    store = click_writer(client).clickhouse
    assert store is not None
    clicks = [raw_click(link, START + timedelta(minutes=n), ip=f"203.0.113.{n}") for n in range(5)]
    seed_clicks(client, clicks)
    assert totals(client) == [[5], [5], [5]]

    # The same body and token again (a writer killed between ClickHouse's insert and the
    # deletion of the kept batch; then a second writer inserts what it left).
    rows = _rows(client, clicks)
    kept = run_in_transaction(client, lambda s: store.keep(s, rows))
    batch = run_in_transaction(
        client, lambda s: s.execute(select(ClickHouseBatch.body, ClickHouseBatch.token)
                                    .where(ClickHouseBatch.id == kept.id))
    ).one()  # fmt: skip
    assert client.portal is not None
    for _ in range(2):
        client.portal.call(
            store.clickhouse.insert, "clicks", batch.body, batch.token, "ArrowStream"
        )
    assert totals(client) == [[10], [10], [10]]  # once: the batch's own 5, not 10 more
    client.portal.call(store.insert, state_of(client).sessionmaker, kept)
    assert totals(client) == [[10], [10], [10]]
    assert run_in_transaction(client, _kept_batches) == 0


def test_a_batch_kept_as_json_rows_by_an_earlier_version_is_inserted(
    clickhouse_client: TestClient,
) -> None:
    """Batches were kept as JSON rows before they were Arrow streams: one left by a writer
    of that version (killed before its insert) still goes in, with its values."""
    client = clickhouse_client
    link = create_link(client, make_key(client, "admin"), url="https://shop.test/")
    store = click_writer(client).clickhouse
    assert store is not None and client.portal is not None
    clicks = [raw_click(link, START + timedelta(minutes=n), ip=f"203.0.113.{n}") for n in range(4)]
    rows = _rows(client, clicks)
    kept = run_in_transaction(client, lambda s: store.keep(s, rows))
    json_rows = b"\n".join(
        orjson.dumps({**{c: row[c] for c in CLICK_COLUMNS}, "id": n,
                      "ts": row["ts"].strftime("%Y-%m-%d %H:%M:%S.%f")})
        for n, row in enumerate(rows, kept.id << ID_BITS)
    )  # fmt: skip
    run_in_transaction(
        client,
        lambda s: s.execute(
            update(ClickHouseBatch).where(ClickHouseBatch.id == kept.id).values(body=json_rows)
        ),
    )
    later = ClickHouseStore(store.clickhouse, left_after=timedelta(0))  # a writer started anew
    assert client.portal.call(later.insert, state_of(client).sessionmaker) == 1
    assert totals(client) == [[4], [4], [4]]
    assert query(client, "SELECT device_type, count() FROM clicks GROUP BY device_type") == [
        [rows[0]["device_type"], 4]
    ]
    assert run_in_transaction(client, _kept_batches) == 0


@pytest.mark.parametrize(
    "referer", ["https://a.test/?q='x'&y=\\n", 'https://ü.test/é?\t"', "https://a.test/😀"]
)
def test_text_reaches_clickhouse_as_it_was(clickhouse_client: TestClient, referer: str) -> None:
    """A batch's text values arrive as they were sent: quotes, backslashes, tabs, letters
    and symbols beyond ASCII."""
    client = clickhouse_client
    link = create_link(client, make_key(client, "admin"), url="https://shop.test/")
    seed_clicks(client, [raw_click(link, START, referer=referer)])
    assert query(client, "SELECT referrer_url FROM clicks") == [[referer]]


def test_the_owner_of_a_chdb_folder_removes_insert_files_a_killed_process_left(
    tmp_path: Path,
) -> None:
    """A process killed between writing a batch's file and inserting it leaves the file: the
    next owner removes it, not one of the last minute (another process's, on its way)."""
    inserts = tmp_path / "chdb" / "inserts"
    inserts.mkdir(parents=True)
    left, fresh = inserts / "left.ArrowStream", inserts / "fresh.ArrowStream"
    left.write_bytes(b"x"), fresh.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(left, (an_hour_ago, an_hour_ago))
    fresh_clickhouse("chdb", tmp_path)  # takes the folder, migrates, lets go
    assert not left.exists() and fresh.exists()


def test_an_owner_that_never_answers_is_said_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the chdb folder and takes statements on its socket, but never
    answers (stuck): the statement fails with that said, rather than waiting for ever."""
    monkeypatch.setattr(embedded, "ANSWER_TIMEOUT_S", 0.5)
    folder = tmp_path / "chdb"
    folder.mkdir()
    lock = os.open(folder / "owner.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as its owner holds it

    async def ask() -> None:
        taken: list[asyncio.StreamWriter] = []
        silent = await asyncio.start_unix_server(
            lambda _, writer: taken.append(writer), str(folder / "owner.sock")
        )
        try:
            await embedded.Embedded(str(folder)).query("SELECT 1")
        finally:
            for writer in taken:
                writer.close()
            silent.close()
            await silent.wait_closed()

    try:
        with pytest.raises(ClickHouseError, match="did not answer"):
            asyncio.run(asyncio.wait_for(ask(), 10))  # a TimeoutError, not a hang, if it waits
    finally:
        os.close(lock)


def _rows(client: TestClient, clicks: list[RawClick]) -> list[dict[str, Any]]:
    writer = click_writer(client)
    assert client.portal is not None
    rows = client.portal.call(writer._enrich, [_with_workspace(client, c) for c in clicks])
    for row in rows:
        row["new_visitor"] = False
    return rows


def _with_workspace(client: TestClient, click: RawClick) -> RawClick:
    workspace = run_in_transaction(
        client, lambda s: s.scalar(select(Link.workspace_id).where(Link.id == click.link_id))
    )
    return dataclasses.replace(click, workspace_id=workspace)


async def _kept_batches(session: Any) -> int:
    return await session.scalar(select(func.count()).select_from(ClickHouseBatch))


def test_a_batch_clickhouse_did_not_take_is_inserted_by_a_later_round(
    clickhouse_client: TestClient,
) -> None:
    client = clickhouse_client
    state = state_of(client)
    link = create_link(client, make_key(client, "admin"), url="https://shop.test/")
    writer = click_writer(client)
    assert writer.clickhouse is not None and client.portal is not None
    working = writer.clickhouse
    writer.clickhouse = ClickHouseStore(Server("http://127.0.0.1:9"))  # nothing listens there
    clicks = [raw_click(link, START + timedelta(minutes=n), ip=f"203.0.113.{n}") for n in range(3)]
    with pytest.raises(ClickHouseError):
        seed_clicks(client, clicks)
    # Committed in the SQL database: the link's counters, and the batch kept for ClickHouse.
    assert run_in_transaction(client, lambda s: s.scalar(select(Link.clicks))) == 3
    assert run_in_transaction(client, _kept_batches) == 1
    assert totals(client) == [[0], [0], [0]]
    # Another writer's round takes it once it is left long enough.
    later = ClickHouseStore(working.clickhouse, left_after=timedelta(0))
    assert client.portal.call(later.insert, state.sessionmaker) == 1
    assert totals(client) == [[3], [3], [3]]
    assert run_in_transaction(client, _kept_batches) == 0
    writer.clickhouse = working


def _only_clicks_of(client: TestClient, link: dict) -> None:
    """ClickHouse's clicks and views hold `link`'s clicks only (rollup_days' projection by
    link too: a link's breakdown reads it)."""
    projection = "mergeTreeProjection(currentDatabase(), rollup_days, by_link)"
    for table in ("clicks", "rollup_hours", "rollup_days", projection):
        assert query(client, f"SELECT DISTINCT link_id FROM {table}") == [[link["id"]]], table


def test_an_erased_link_leaves_clickhouse_and_its_late_clicks_are_dropped(
    clickhouse_client: TestClient,
) -> None:
    client = clickhouse_client
    admin = make_key(client, "admin")
    kept, erased = create_link(client, admin, slug="kept"), create_link(client, admin, slug="gone")
    when = START + timedelta(hours=1)
    seed_clicks(client, [raw_click(link, when) for link in (kept, erased, erased)])
    assert query(client, "SELECT link_id, count() FROM clicks GROUP BY link_id ORDER BY link_id") == [
        [kept["id"], 1], [erased["id"], 2],
    ]  # fmt: skip
    assert client.delete("/api/links/gone?purge=true", headers=admin).status_code == 204
    _only_clicks_of(client, kept)
    # A click of it still in the click log when it was erased: not stored, and counted.
    writer = click_writer(client)
    rejected = writer.stats.clicks_rejected
    click = _with_workspace(client, raw_click(kept, when))
    late = [click, dataclasses.replace(click, link_id=erased["id"])]
    assert client.portal is not None
    client.portal.call(writer.write, late)
    assert query(client, "SELECT link_id, count() FROM clicks GROUP BY link_id") == [
        [kept["id"], 2]
    ]
    assert writer.stats.clicks_rejected == rejected + 1
    summary = client.get(
        "/api/stats/summary", params={"from": "2026-03-25", "to": "2026-03-25"}, headers=admin
    )
    assert summary.json()["clicks"] == 2


def test_a_link_erased_while_its_clicks_wait_for_clickhouse_stays_erased(
    clickhouse_client: TestClient,
) -> None:
    client = clickhouse_client
    admin = make_key(client, "admin")
    kept, erased = create_link(client, admin, slug="kept"), create_link(client, admin, slug="gone")
    writer = click_writer(client)
    assert writer.clickhouse is not None and client.portal is not None
    working = writer.clickhouse
    writer.clickhouse = ClickHouseStore(Server("http://127.0.0.1:9"))  # nothing listens there
    clicks = [
        raw_click(link, START + timedelta(minutes=n)) for n, link in enumerate([kept, erased])
    ]
    with pytest.raises(ClickHouseError):
        seed_clicks(client, clicks)
    writer.clickhouse = working
    # Its clicks are committed in the SQL database, on their way to ClickHouse, when the
    # link is erased; they go in afterwards, and are erased there then.
    assert client.delete("/api/links/gone?purge=true", headers=admin).status_code == 204
    later = ClickHouseStore(working.clickhouse, left_after=timedelta(0))
    assert client.portal.call(later.insert, state_of(client).sessionmaker) == 1
    _only_clicks_of(client, kept)
    assert run_in_transaction(client, _kept_batches) == 0


def test_a_stats_request_naming_links_looks_them_up_once(clickhouse_client: TestClient) -> None:
    client = clickhouse_client
    admin = make_key(client, "admin")
    sale = create_link(client, admin, slug="sale", utm_campaign="spring")
    create_link(client, admin, slug="menu")
    seed_clicks(client, [raw_click(sale, START + timedelta(hours=1))])
    reader = make_key(client, "stats:read")
    day = {"from": "2026-03-25", "to": "2026-03-25"}
    lookups: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if re.search(r"\bFROM links\b", statement):
            lookups.append(statement)

    def clicks(**params: Any) -> int:
        lookups.clear()
        response = client.get("/api/stats/summary", params=day | params, headers=reader)
        assert response.status_code == 200, response.text
        return response.json()["clicks"]

    engine = state_of(client).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        # The check that the names exist finds their ids: ClickHouse's reads use them.
        assert clicks(link=["sale", "menu"]) == 1
        assert len(lookups) == 1
        # A filter besides the names: the links both keep are looked up with it.
        assert clicks(link=["sale", "menu"], utm_campaign="spring") == 1
        assert clicks(link=["sale", "menu"], utm_campaign="autumn") == 0
        assert len(lookups) == 2
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("value", ["ID') OR 1=1 --", "a\\tb\\\\", "x\ty", "'", "{links:String}"])
def test_filter_values_reach_clickhouse_as_values(
    clickhouse_client: TestClient, value: str
) -> None:
    client = clickhouse_client
    admin = make_key(client, "admin")
    seed_clicks(client, [raw_click(create_link(client, admin), START + timedelta(hours=1))])
    params = {"from": "2026-03-25", "to": "2026-03-25", "country": value, "device": value}
    response = client.get("/api/stats/breakdown/country", params=params, headers=admin)
    assert response.status_code == 200, response.text
    assert (
        response.json()["rows"] == []
    )  # no click has that country: nothing matched, nothing broke
    excluded = client.get(
        "/api/stats/summary",
        params={**params, "country": "-" + value, "device": None},
        headers=admin,
    )
    assert excluded.json()["clicks"] == 1
