"""The data lifecycle: old raw clicks purged (rollups and counters kept), monthly
partitions on PostgreSQL, and a link erased with everything recorded about it."""

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from app import migrate
from app.clicks import retention
from app.clicks.rollups import ROLLUP_DIMENSIONS
from app.config import Settings
from app.core.tables import Click, Link, LinkTag, RollupDay, RollupHour
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link, make_key, run_in_transaction, state_of
from tests.support.cli import tautan
from tests.support.clicks import click_writer, raw_click, seed_clicks, with_writer
from tests.support.databases import empty_database

DAYS = 30
NOW = datetime.now(UTC)
OLD = (NOW - timedelta(days=DAYS + 15)).replace(hour=10, minute=0, second=0, microsecond=0)
RECENT = (NOW - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
PREVIEW = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"


def _seed_old_and_recent(client: TestClient, link: dict[str, Any]) -> None:
    """Four old clicks (two visitors and a preview fetch among them), two recent ones."""
    seed_clicks(
        client,
        [
            raw_click(link, OLD + timedelta(minutes=20), ip="203.0.113.1"),
            raw_click(link, OLD + timedelta(minutes=25), ip="203.0.113.1"),
            raw_click(link, OLD + timedelta(hours=3, minutes=10), ip="198.51.100.7"),
            raw_click(link, OLD + timedelta(hours=4), ua=PREVIEW),
            raw_click(link, RECENT, ip="203.0.113.1"),
            raw_click(link, RECENT + timedelta(hours=1), ip="198.51.100.7"),
        ],
    )


def _click_times(client: TestClient) -> list[datetime]:
    return list(
        run_in_transaction(client, lambda s: s.scalars(select(Click.ts).order_by(Click.id))).all()
    )


def _maintain(client: TestClient, days: int | None) -> retention.Purged:
    """One retention pass, run as the app runs it, on the app's own engine."""
    state = state_of(client)
    assert client.portal is not None
    return client.portal.call(retention.maintain, state.engine, days)


def _kpis(client: TestClient, headers: dict[str, str], **params: str) -> tuple[Any, Any]:
    """Summary totals and daily timeseries from the first old day to today, whole days."""
    span = {"from": OLD.date().isoformat(), "to": NOW.date().isoformat(), **params}
    summary = client.get("/api/stats/summary", params=span, headers=headers).json()
    totals = {k: summary[k] for k in ("clicks", "unique_visitors", "bot_clicks", "links")}
    series = client.get(
        "/api/stats/timeseries", params={**span, "interval": "day"}, headers=headers
    ).json()
    return totals, series["buckets"]


def _first_and_last_click(client: TestClient, headers: dict[str, str]) -> tuple[Any, Any]:
    """Of the first old day."""
    day = {"from": OLD.date().isoformat(), "to": OLD.date().isoformat()}
    summary = client.get("/api/stats/summary", params=day, headers=headers).json()
    return tuple(datetime.fromisoformat(summary[k]) for k in ("first_click", "last_click"))


def test_purge_removes_old_clicks_and_keeps_the_kpis(client: TestClient, writer: dict) -> None:
    link = create_link(client, writer, slug="old")
    _seed_old_and_recent(client, link)
    totals, days = _kpis(client, writer)
    assert totals == {"clicks": 5, "unique_visitors": 4, "bot_clicks": 1, "links": 1}
    counters = client.get("/api/links/old", headers=writer).json()
    assert _first_and_last_click(client, writer) == (
        OLD + timedelta(minutes=20),
        OLD + timedelta(hours=3, minutes=10),
    )

    done = _maintain(client, DAYS)

    assert done.clicks == 4
    assert done.cutoff == datetime.combine(
        NOW.date() - timedelta(days=DAYS), datetime.min.time(), UTC
    )
    assert _click_times(client) == [RECENT, RECENT + timedelta(hours=1)]
    # Whole-day KPIs come from the rollups: the purged days still count.
    assert _kpis(client, writer) == (totals, days)
    after = client.get("/api/links/old", headers=writer).json()
    assert {k: after[k] for k in ("clicks", "unique_visitors", "bot_clicks")} == {
        k: counters[k] for k in ("clicks", "unique_visitors", "bot_clicks")
    }
    # The first and last click of a purged day: their hours are all that is left.
    assert _first_and_last_click(client, writer) == (OLD, OLD + timedelta(hours=3))
    # A filter on a click attribute reads raw clicks: it covers the retention window only.
    filtered, _ = _kpis(client, writer, device="desktop")
    assert filtered["clicks"] == 2
    # Nothing left to purge: a second pass removes nothing.
    assert _maintain(client, DAYS).clicks == 0
    assert len(_click_times(client)) == 2


def test_without_a_retention_nothing_is_purged(client: TestClient, writer: dict) -> None:
    link = create_link(client, writer)
    _seed_old_and_recent(client, link)
    done = _maintain(client, None)
    assert done.clicks == 0 and done.cutoff is None
    assert len(_click_times(client)) == 6


def test_the_periodic_task_purges_in_a_live_app(settings: Settings) -> None:
    with with_writer(TestClient(create_app(settings), base_url=BASE_URL, client=PEER)) as keeping:
        writer = make_key(keeping, "links:read", "links:write", "stats:read")
        _seed_old_and_recent(keeping, create_link(keeping, writer, slug="live"))
        assert len(_click_times(keeping)) == 6  # no retention set: everything stays

    retaining = settings.model_copy(update={"retention_days": DAYS})
    with with_writer(TestClient(create_app(retaining), base_url=BASE_URL, client=PEER)) as live:
        state = state_of(live)
        deadline = time.monotonic() + 30
        while state.retention.passes == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.retention.passes >= 1, "the retention task did not run within 30 s"
        assert _click_times(live) == [RECENT, RECENT + timedelta(hours=1)]
        assert live.get("/api/links/live", headers=writer).json()["clicks"] == 5


def _clicks_count(client: TestClient) -> int:
    return run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(Click)))


def test_purge_command(
    client: TestClient, writer: dict, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAUTAN_RETENTION_DAYS", raising=False)
    _seed_old_and_recent(client, create_link(client, writer))

    refused = tautan(database_url, "purge")
    assert refused.returncode == 2
    assert "--days" in refused.stdout and "TAUTAN_RETENTION_DAYS" in refused.stdout
    assert _clicks_count(client) == 6  # it removed nothing

    purged = tautan(database_url, "purge", "--days", str(DAYS))
    assert purged.returncode == 0, purged.stderr
    cutoff = NOW.date() - timedelta(days=DAYS)
    assert f"removed 4 clicks before {cutoff:%Y-%m-%d} 00:00 UTC" in purged.stdout
    assert _clicks_count(client) == 2

    monkeypatch.setenv("TAUTAN_RETENTION_DAYS", "1")  # the default when --days is absent
    again = tautan(database_url, "purge")
    assert again.returncode == 0, again.stderr
    assert "removed 2 clicks" in again.stdout
    assert _clicks_count(client) == 0


# --- PostgreSQL: monthly partitions ---------------------------------------------------


def _month(moment: datetime | date) -> str:
    return f"clicks_{moment:%Y_%m}"


def _partitions(client: TestClient) -> list[str]:
    query = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'clicks'::regclass ORDER BY c.relname"
    )
    return list(run_in_transaction(client, lambda s: s.scalars(query)).all())


def _homes(client: TestClient) -> dict[int, str]:
    """Where each click row lives: click id → partition name."""
    query = text("SELECT id, tableoid::regclass::text FROM clicks")
    return dict(run_in_transaction(client, lambda s: s.execute(query)).all())


@contextlib.contextmanager
def app_on_new_database(backend: str, tmp_path: Path, name: str) -> Iterator[TestClient]:
    """The app on a migrated database of its own, whose partitions no other test touches."""
    url = empty_database(backend, tmp_path, name)
    migrate.upgrade(url)
    settings = Settings(database_url=url, base_url=BASE_URL, spool_dir=str(tmp_path / "spool"))
    with with_writer(TestClient(create_app(settings), base_url=BASE_URL, client=PEER)) as client:
        yield client


def test_one_process_at_a_time_maintains_postgresql(client: TestClient, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serialises the batches")
    state = state_of(client)

    async def while_locked() -> retention.Purged:
        async with state.engine.connect() as other:
            await other.execute(select(func.pg_advisory_lock(retention.ADVISORY_LOCK)))
            try:
                return await retention.maintain(state.engine, DAYS)
            finally:
                await other.execute(select(func.pg_advisory_unlock(retention.ADVISORY_LOCK)))

    assert client.portal is not None
    assert client.portal.call(while_locked).busy
    assert not _maintain(client, DAYS).busy


# --- erasing one link -------------------------------------------------------------------


def _rows_of(client: TestClient, link_id: int) -> dict[str, int]:
    async def count(session: Any) -> dict[str, int]:
        tables = {"clicks": Click, "hours": RollupHour, "days": RollupDay, "tags": LinkTag}
        return {
            name: await session.scalar(
                select(func.count()).select_from(model).where(model.link_id == link_id)
            )
            for name, model in tables.items()
        }

    return run_in_transaction(client, count)


def test_purge_erases_a_link_and_all_it_recorded(client: TestClient, writer: dict) -> None:
    gone = create_link(client, writer, slug="gone", tags=["launch", "ig"])
    kept = create_link(client, writer, slug="kept", tags=["launch"])
    for link in (gone, kept):
        seed_clicks(client, [raw_click(link, RECENT), raw_click(link, NOW - timedelta(hours=1))])
    kept_before = _rows_of(client, kept["id"])
    days = 2 * len(ROLLUP_DIMENSIONS)  # a row per day and dimension
    assert _rows_of(client, gone["id"]) == {"clicks": 2, "hours": 2, "days": days, "tags": 2}

    stranger = make_key(client, "links:read", "links:write", workspace="client-b")
    refused = client.delete("/api/links/gone", params={"purge": "true"}, headers=stranger)
    assert refused.status_code == 404
    assert _rows_of(client, gone["id"])["clicks"] == 2
    assert client.head("/gone").status_code == 302  # now in the redirect cache (HEAD: no click)

    assert client.delete("/api/links/gone?purge=true", headers=writer).status_code == 204

    assert _rows_of(client, gone["id"]) == {"clicks": 0, "hours": 0, "days": 0, "tags": 0}
    assert run_in_transaction(client, lambda s: s.get(Link, gone["id"])) is None
    assert client.get("/gone").status_code == 404
    assert client.get("/api/links/gone", headers=writer).status_code == 404
    assert _rows_of(client, kept["id"]) == kept_before
    summary = client.get("/api/stats/summary", headers=writer).json()
    assert summary["clicks"] == 2 and summary["links"] == 1
    # Irreversible, and said so where API users read it.
    delete = client.get("/openapi.json").json()["paths"]["/api/links/{slug}"]["delete"]
    assert "irreversible" in delete["description"]


def test_delete_without_purge_still_archives(client: TestClient, writer: dict) -> None:
    link = create_link(client, writer, slug="arch")
    seed_clicks(client, [raw_click(link, RECENT)])
    assert client.delete("/api/links/arch", headers=writer).status_code == 204
    assert client.get("/api/links/arch", headers=writer).json()["archived"] is True
    assert _rows_of(client, link["id"])["clicks"] == 1


def test_a_queued_click_of_a_purged_link_does_not_block_the_writer(
    client: TestClient, writer: dict
) -> None:
    gone = create_link(client, writer, slug="gone")
    kept = create_link(client, writer, slug="kept")
    workspace = run_in_transaction(client, lambda s: s.scalar(select(Link.workspace_id)))
    state = state_of(client)
    assert client.delete("/api/links/gone?purge=true", headers=writer).status_code == 204

    # As if redirected just before the purge and still waiting in the click log.
    queued = [
        dataclasses.replace(raw_click(link, datetime.now(UTC)), workspace_id=workspace)
        for link in (gone, kept, kept)
    ]
    assert client.portal is not None
    for click in queued:
        client.portal.call(state.click_log.append, click)
    deadline = time.monotonic() + 10
    while _rows_of(client, kept["id"])["clicks"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows_of(client, kept["id"])["clicks"] == 2
    assert _rows_of(client, gone["id"])["clicks"] == 0
    assert click_writer(client).stats.clicks_rejected == 1
    assert client.get("/api/links/kept", headers=writer).json()["clicks"] == 2


def test_a_purged_link_id_is_never_given_to_a_new_link(client: TestClient, writer: dict) -> None:
    """Another process's cache may still send clicks of a purged link for a while (as may a
    click log): they must not land on a link made since."""
    gone = create_link(client, writer, slug="last")  # the highest id: SQLite would reuse it
    assert client.delete("/api/links/last?purge=true", headers=writer).status_code == 204
    fresh = create_link(client, writer, slug="fresh")
    assert fresh["id"] > gone["id"]

    workspace = run_in_transaction(client, lambda s: s.scalar(select(Link.workspace_id)))
    late = dataclasses.replace(raw_click(gone, datetime.now(UTC)), workspace_id=workspace)
    assert client.portal is not None
    client.portal.call(click_writer(client).write, [late])
    assert click_writer(client).stats.clicks_rejected == 1
    assert client.get("/api/links/fresh", headers=writer).json()["clicks"] == 0


def test_postgresql_drops_past_months_whole_and_empties_default(
    backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    with app_on_new_database(backend, tmp_path, "partitions") as client:
        writer = make_key(client, "links:read", "links:write", "stats:read")
        link = create_link(client, writer)
        long_ago = (NOW - timedelta(days=400)).replace(hour=9, minute=0, second=0, microsecond=0)
        far_ahead = NOW + timedelta(days=240)  # past the months made ahead: into DEFAULT
        seed_clicks(
            client,
            [
                raw_click(link, long_ago),
                raw_click(link, OLD),
                raw_click(link, RECENT),
                raw_click(link, far_ahead),
            ],
        )
        before = _homes(client)
        ids = sorted(before)
        # Only this month and the next few have partitions in a new database.
        assert [before[i] for i in ids] == [
            "clicks_default",
            "clicks_default",
            _month(RECENT),
            "clicks_default",
        ]
        day = {"from": long_ago.date().isoformat(), "to": long_ago.date().isoformat()}
        kpis = ("clicks", "unique_visitors", "bot_clicks", "links")

        def that_day() -> dict[str, int]:
            summary = client.get("/api/stats/summary", params=day, headers=writer).json()
            return {k: summary[k] for k in kpis}

        kept = that_day()
        assert kept["clicks"] == 1

        # As left by a pass stopped between detaching a month and dropping it.
        run_in_transaction(
            client, lambda s: s.execute(text("CREATE TABLE clicks_2020_01 (LIKE clicks)"))
        )

        done = _maintain(client, DAYS)

        # The month long ago was moved out of DEFAULT into its own partition, then dropped
        # whole (and so was OLD's, on days when its whole month is past the cutoff); the
        # far month got its partition, with its click moved in, id intact.
        expected = {_month(long_ago): 1, "clicks_2020_01": 0}
        old_month_end = (OLD.replace(day=28) + timedelta(days=4)).replace(day=1)
        if old_month_end <= retention.cutoff(DAYS):
            expected[_month(OLD)] = 1
        assert done.dropped == expected
        assert _month(far_ahead) in done.created
        partitions = _partitions(client)
        assert _month(long_ago) not in partitions
        assert _month(far_ahead) in partitions
        assert _month(NOW) in partitions and "clicks_default" in partitions
        after = _homes(client)
        assert after == {ids[2]: _month(RECENT), ids[3]: _month(far_ahead)}
        assert that_day() == kept  # from the rollups, which stay
        # A click arriving now still finds its partition; nothing is left in DEFAULT.
        seed_clicks(client, [raw_click(link, datetime.now(UTC))])
        assert "clicks_default" not in _homes(client).values()


def test_a_link_erased_while_its_clicks_move_out_of_default_keeps_none(
    backend: str, tmp_path: Path
) -> None:
    """A DELETE that started before a month's partition was attached must still reach the
    clicks moved into it: PostgreSQL plans it with the partitions it saw on arriving."""
    if backend != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    with app_on_new_database(backend, tmp_path, "erase_during_move") as client:
        writer = make_key(client, "links:read", "links:write")
        link = create_link(client, writer)
        month = (NOW + timedelta(days=240)).replace(day=1, hour=0, minute=0, second=0)
        seed_clicks(client, [raw_click(link, month + timedelta(days=2))])  # into DEFAULT
        state = state_of(client)

        async def erase_during_move() -> int:
            async with state.engine.connect() as mover:
                await mover.execute(select(func.pg_advisory_lock(retention.ADVISORY_LOCK)))
                await mover.commit()  # the app's own pass stays out of the way
                async with mover.begin():
                    await retention._make_partition(mover, _month(month), month)

                    async def erase() -> None:
                        async with state.sessionmaker() as session, session.begin():
                            await retention.erase_link(session, link["id"])

                    erasing = asyncio.create_task(erase())
                    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    for _ in range(500):  # until the erasure waits for the move
                        if await mover.scalar(waiting):
                            break
                        await asyncio.sleep(0.01)
                await erasing
            async with state.engine.connect() as reader:
                return await reader.scalar(select(func.count()).select_from(Click))

        assert client.portal is not None
        assert client.portal.call(erase_during_move) == 0
