"""PostgreSQL stopped and started under a running app: no click is lost, cached links
are served and capped ones are never served uncounted."""

import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from app import migrate
from app.clicks.log import segment_paths
from app.config import Settings
from app.main import create_app
from tests.support.app import (
    BASE_URL,
    DESKTOP_UA,
    PEER,
    check_capped_links_without_database,
    concurrently,
    create_link,
    make_key,
    statuses,
)
from tests.support.clicks import count_clicks, wait_for_clicks, with_writer
from tests.support.server import ThrowawayPostgres


def test_postgres_outage_loses_no_click(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    settings = settings_on(throwaway_postgres, tmp_path, flush_interval_ms=20, link_cache_ttl_s=0.2)
    with app_with_writer(settings) as client:
        admin = make_key(client, "admin")
        create_link(client, admin, slug="up")
        create_link(client, admin, slug="unread")  # never followed: not in the cache
        served = 0
        for _ in range(20):
            served += client.get("/up", headers={"User-Agent": DESKTOP_UA}).status_code == 302
        assert wait_for_clicks(client, served) == served

        throwaway_postgres.stop()
        for _ in range(50):  # the link is cached: redirects go on, past the cache's TTL too
            served += client.get("/up", headers={"User-Agent": DESKTOP_UA}).status_code == 302
            time.sleep(0.01)
        assert served == 70
        unread = client.get("/unread")  # nothing to go on: try again later
        assert (unread.status_code, unread.headers["retry-after"]) == (503, "5")
        time.sleep(0.5)
        assert client.get("/readyz").status_code == 503
        assert client.get("/readyz").json()["queue_depth"] > 0

        throwaway_postgres.start()
        assert wait_for_clicks(client, served) == served
        time.sleep(0.5)  # nothing is written twice
        assert count_clicks(client) == served
        assert segment_paths(Path(settings.spool_dir)) == []


def test_capped_links_are_not_served_uncounted_while_postgres_is_down(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    with app_with_writer(settings_on(throwaway_postgres, tmp_path)) as client:
        check_capped_links_without_database(
            client, make_key(client, "admin"), throwaway_postgres.stop, throwaway_postgres.start
        )


def test_an_outage_serves_cached_links_of_a_batch_and_refuses_the_others(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    """Links missed together while the database is down: the ones read before are served as
    they were read, the others get 503 (a guard of the outage behaviour for batched reads)."""
    with app_with_writer(settings_on(throwaway_postgres, tmp_path, link_cache_ttl_s=0.1)) as client:
        admin = make_key(client, "admin")
        for slug in ("up", "also-up", "unread"):
            create_link(client, admin, slug=slug)
        assert statuses(concurrently(client, ["/up", "/also-up", "/gone"], "HEAD")) == {
            302: 2,
            404: 1,
        }
        throwaway_postgres.stop()
        time.sleep(0.2)  # past the TTL: each of them is read again, in one batch
        try:
            answers = concurrently(client, ["/up", "/unread", "/also-up", "/gone", "/up"], "HEAD")
            assert [a.status_code for a in answers] == [302, 503, 302, 404, 302]
        finally:
            throwaway_postgres.start()
        assert client.head("/unread").status_code == 302


def settings_on(server: ThrowawayPostgres, tmp_path: Path, **changes: Any) -> Settings:
    """Settings of an app on the throwaway server's database, migrated."""
    migrate.upgrade(server.url)
    return Settings(
        database_url=server.url, base_url=BASE_URL, spool_dir=str(tmp_path / "spool"), **changes
    )


def app_with_writer(settings: Settings) -> AbstractContextManager[TestClient]:
    return with_writer(
        TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)
    )
