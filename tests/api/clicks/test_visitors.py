import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from starlette.testclient import TestClient

from app.clicks.visitors import Salts
from app.core.tables import Link, VisitorSalt
from app.secret_key import SecretKey
from tests.support.app import create_link, run_in_transaction, state_of
from tests.support.clicks import click_writer, raw_click

DAY = date(2026, 3, 10)


def test_salts_rotate_daily_and_go_two_days_later(client: TestClient) -> None:
    state = state_of(client)
    assert client.portal is not None

    def salt_of(day: date, salts: Salts | None = None) -> bytes:
        return client.portal.call((salts or Salts(state.secret_key)).of, state.sessionmaker, day)  # type: ignore[union-attr]

    first = salt_of(DAY)
    assert salt_of(DAY) == first  # another process (its own Salts) gets the same salt
    assert salt_of(DAY + timedelta(days=1)) != first
    salt_of(DAY + timedelta(days=3))
    kept = run_in_transaction(
        client, lambda s: s.scalars(select(VisitorSalt.day).order_by(VisitorSalt.day))
    )
    assert list(kept) == [DAY + timedelta(days=1), DAY + timedelta(days=3)]


def test_visitor_ids_are_keyed_with_the_instance_secret(client: TestClient) -> None:
    """Two instances with the same database rows (the same daily salt) but different
    secrets give different visitor ids: a copy of the database cannot recompute them."""
    state = state_of(client)
    assert client.portal is not None

    def salt_with(secret: str | None) -> bytes:
        key = SecretKey(state.sessionmaker, secret)
        return client.portal.call(Salts(key).of, state.sessionmaker, DAY)  # type: ignore[union-attr]

    generated = salt_with(None)
    stored = run_in_transaction(client, lambda s: s.scalar(select(VisitorSalt.salt)))
    assert generated != stored  # the salt in the table is not the key used
    assert (
        salt_with(client.portal.call(state.secret_key.get)) == generated
    )  # unset: the generated, stored secret
    assert salt_with("another-secret") not in (generated, stored)


def test_writers_flushing_at_once_count_each_visitor_once(client: TestClient, writer: dict) -> None:
    """Two flushes of the same visitors' clicks at the same moment (two writer processes,
    say), each in its own transaction: every visitor is still new only once a day."""
    link = create_link(client, writer, slug="twice")
    workspace = run_in_transaction(client, lambda s: s.scalar(select(Link.workspace_id)))
    noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
    visitors = [f"198.51.100.{n}" for n in range(5)]
    flushes = [
        [
            dataclasses.replace(
                raw_click(link, noon + timedelta(minutes=m), ip=ip), workspace_id=workspace
            )
            for ip in visitors
        ]
        for m in (1, 2)
    ]
    writer_of_clicks = click_writer(client)

    async def flush_both() -> None:
        await writer_of_clicks.salts.of(
            writer_of_clicks.sessionmaker, noon.date()
        )  # both start even
        await asyncio.gather(*(writer_of_clicks.write(batch) for batch in flushes))

    assert client.portal is not None
    client.portal.call(flush_both)
    day = {"from": "2026-03-10", "to": "2026-03-10"}
    stats = client.get("/api/stats/summary", params=day, headers=writer).json()
    assert (stats["clicks"], stats["unique_visitors"]) == (10, 5)
    counted = client.get("/api/links/twice", headers=writer).json()
    assert (counted["clicks"], counted["unique_visitors"]) == (10, 5)
