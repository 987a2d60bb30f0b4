"""Fixtures of the system tests: a real `tautan serve`, a PostgreSQL server of the
test's own that it stops and starts, a browser and the shop its links lead to."""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from tests.support.browser import SHOP_HOST, chromium
from tests.support.server import PG_BIN, ThrowawayPostgres, serving


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a system test: `pytest -m 'not system'` leaves them out."""
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    if not (PG_BIN / "initdb").exists() or os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and PostgreSQL 15 binaries in /usr/lib/postgresql/15/bin")
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    directory = Path(tempfile.mkdtemp(prefix="tautan-pg-"))
    server = ThrowawayPostgres(directory)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium for one test, reaching SHOP_HOST at 127.0.0.1."""
    with chromium(f"--host-resolver-rules=MAP {SHOP_HOST} 127.0.0.1") as browser:
        yield browser


class Landing(BaseHTTPRequestHandler):
    """The shop a short link leads to."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>Shop</title><h1>Landing page</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def landing() -> Iterator[str]:
    """The shop's origin. Links may not lead to any loopback name (that could be Tautan
    itself), so the shop is `shop.example`, which the browser resolves to 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Landing)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{SHOP_HOST}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tautan_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    with serving(database_url, tmp_path) as (_, base):
        yield base


@pytest.fixture
def sqlite_only(backend: str) -> None:
    """For tests whose subject is not the database (the browser's): run on SQLite alone,
    which keeps CI within its time."""
    if backend != "sqlite":
        pytest.skip("runs on SQLite only: its subject is not the database")
