"""Clicks for tests: the click writer on the app's event loop, and clicks written through it."""

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.clickhouse.client import connect
from app.clicks.raw import RawClick
from app.clicks.writer import ClickWriter
from app.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.tables import Click, Link
from app.secret_key import SecretKey
from tests.support.app import DESKTOP_UA, run_in_transaction, state_of
from tests.support.databases import run


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
        clickhouse = connect(settings.clickhouse_url) if settings.clickhouse_url else None
        writer = ClickWriter.for_settings(
            settings, sessionmaker, SecretKey(sessionmaker, settings.secret_key), clickhouse
        )
        writer.stop(drain_s=60)  # stops once the log is written to its end
        await writer.run()
        await engine.dispose()
        if clickhouse:
            await clickhouse.close()

    run(drain())


def click_writer(client: TestClient) -> ClickWriter:
    """The click writer of the `client` fixture's app (made on first use)."""
    if (writer := getattr(client, "click_writer", None)) is None:
        state = state_of(client)
        settings = state.settings
        writer = ClickWriter.for_settings(
            settings, state.sessionmaker, state.secret_key, state.clickhouse
        )
        client.click_writer = writer  # type: ignore[attr-defined]
    return writer


def raw_click(
    link: dict[str, Any],
    when: datetime,
    *,
    ua: str = DESKTOP_UA,
    referer: str = "",
    ip: str = "203.0.113.5",
    language: str = "",
    trigger: str = "link",
    route: str = "",
) -> RawClick:
    """A click on `link` (as the API returned it) received at `when`, from `ip` (its own
    digest too: one visitor per address); its workspace is filled in by `seed_clicks`."""
    return RawClick(
        link["id"], 0, when.timestamp(), ip, ip, ua, referer, language, trigger, route=route
    )


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


def clicks_of(client: TestClient, want: int, timeout: float = 10) -> list[Click]:
    """The click rows once the writer has written `want` of them (it batches)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(
            run_in_transaction(client, lambda s: s.scalars(select(Click).order_by(Click.id))).all()
        )
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def link_clicks(client: TestClient, slug: str) -> int:
    """The link's `clicks` counter."""
    return run_in_transaction(
        client, lambda s: s.scalar(select(Link.clicks).where(Link.slug == slug))
    )


def count_clicks(client: TestClient) -> int:
    """How many click rows the database holds."""
    return run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(Click)))


def wait_for_clicks(client: TestClient, want: int, timeout: float = 30) -> int:
    """The number of click rows once it reaches `want` (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = count_clicks(client)
        except Exception:  # the database may still be coming back
            got = -1
        if got >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


# Chrome's reduced User-Agent: Android 10 and model "K" whatever the phone (its client
# hints say which it is).
REDUCED_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
