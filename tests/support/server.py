"""Real processes for the system tests: `tautan serve` on a free port, and a PostgreSQL
server of a test's own that it may stop and start."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from app.core.tables import Click
from tests.support.databases import count_rows

TAUTAN = str(Path(sys.executable).parent / "tautan")  # the installed command
KEY = "tk_serve_test_key_0123456789"  # the admin key of every server started here
# An iPhone, an Android phone, a desktop, and a link-preview fetcher.
UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
]


async def stored_clicks(url: str) -> int:
    """How many clicks the database at `url` holds."""
    return await count_rows(url, Click)


@contextmanager
def serving(
    database_url: str,
    tmp_path: Path,
    *options: str,
    base_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """A real `tautan serve` on a free port, with KEY as its admin key (and `env` added to
    its environment); stopped on exit. Its TAUTAN_BASE_URL is its own address unless
    `base_url` is given."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "TAUTAN_DATABASE_URL": database_url,
        "TAUTAN_ADMIN_KEY": KEY,
        "TAUTAN_BASE_URL": base_url or base,
        "TAUTAN_SPOOL_DIR": str(tmp_path / "spool"),
        **(env or {}),
    }
    process = subprocess.Popen(
        [TAUTAN, "serve", "--port", str(port), *options],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:  # stopped as an operator would: its writers stop too
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()  # type: ignore[union-attr]


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL server of the test's own, which the test may stop and start."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(directory, "postgres")
        self._pg("initdb", "-D", f"{directory}/data", "-A", "trust", "-U", "postgres")

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            "pg_ctl",
            "-D",
            f"{self.directory}/data",
            "-o",
            options,
            "-l",
            f"{self.directory}/log",
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", f"{self.directory}/data", "-m", "fast", "-w", "stop")
