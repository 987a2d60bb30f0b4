"""Clicks for tests: the click writer on the app's event loop, and clicks written through it."""

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from starlette.testclient import TestClient

from app.clicks.raw import RawClick
from app.clicks.writer import ClickWriter
from app.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.tables import Link
from app.secret_key import SecretKey
from tests.support.app import run_in_transaction, state_of
from tests.support.databases import run

T = TypeVar("T")


@contextlib.contextmanager
def with_writer(client: TestClient) -> Iterator[TestClient]:
    """`client` entered, with its click writer running on the app's event loop."""
    with client:
        writer = click_writer(client)
        assert client.portal is not None
        running = client.portal.start_task_soon(writer.run)
        try:
            yield client
        finally:  # also after a failure, or the client would wait for the writer for ever
            client.portal.call(writer.stop)
            running.result(timeout=30)


def write_log(settings: Settings) -> None:
    """Write what the click log holds (its sealed segments) to the database, here, as a
    writer process would."""

    async def drain() -> None:
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        writer = ClickWriter.for_settings(
            settings, sessionmaker, SecretKey(sessionmaker, settings.secret_key)
        )
        writer.stop(drain_s=60)  # stops once the log is written to its end
        await writer.run()
        await engine.dispose()

    run(drain())


def click_writer(client: TestClient) -> ClickWriter:
    """The click writer of the `client` fixture's app (made on first use)."""
    if (writer := getattr(client, "click_writer", None)) is None:
        state = state_of(client)
        settings = state.settings
        writer = ClickWriter.for_settings(settings, state.sessionmaker, state.secret_key)
        client.click_writer = writer  # type: ignore[attr-defined]
    return writer


DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def raw_click(
    link: dict[str, Any],
    when: datetime,
    *,
    ua: str = DESKTOP_UA,
    referer: str = "",
    ip: str = "203.0.113.5",
    language: str = "",
    trigger: str = "link",
) -> RawClick:
    """A click on `link` (as the API returned it) received at `when`, from `ip` (its own
    digest too: one visitor per address); its workspace is filled in by `seed_clicks`."""
    return RawClick(link["id"], 0, when.timestamp(), ip, ip, ua, referer, language, trigger)


def seed_clicks(client: TestClient, clicks: list[RawClick]) -> None:
    """Write clicks through the click writer (enrichment, rollups, counters)."""
    link_ids = {c.link_id for c in clicks}
    owners = run_in_transaction(
        client, lambda s: s.execute(select(Link.id, Link.workspace_id).where(Link.id.in_(link_ids)))
    )
    workspace_of = dict(owners.all())
    clicks = [dataclasses.replace(c, workspace_id=workspace_of[c.link_id]) for c in clicks]
    assert client.portal is not None
    client.portal.call(click_writer(client).write, clicks)
