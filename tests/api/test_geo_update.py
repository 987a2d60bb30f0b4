"""`tautan geo update` and `geo info` as a user runs them (in this process, through
Typer's runner), downloading from a real HTTP server on 127.0.0.1 that serves .mmdb files
written here."""

import gzip
import io
import os
import re
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import maxminddb
import pytest
from starlette.testclient import TestClient

from app import geo_update
from app.clicks.enrich.geo import GeoLookup
from app.config import Settings
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link, make_key
from tests.support.cli import command
from tests.support.clicks import clicks_of, with_writer
from tests.support.geo import JAKARTA, JAKARTA_V4, MUNICH, write_mmdb
from tests.support.server import free_port

KEY = "gl2-test-license-key-7f3a9c"
IN_JAKARTA = "36.66.1.2"  # ID in the old database, DE in the new one


class Mirror:
    """A download server: `files` maps a path to the bytes served there; paths under
    /maxmind/ answer 401 unless `license_key` is KEY, as MaxMind does."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                key = parse_qs(url.query).get("license_key")
                if url.path.startswith("/maxmind/") and key != [KEY]:
                    return self.send(401, b"Invalid license key\n")
                body = mirror.files.get(url.path)
                self.send(404, b"Not Found\n") if body is None else self.send(200, body)

            def send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def serve(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.base + path


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    mirror = Mirror()
    # A short poll: shutdown() waits for it (0.5 s by default).
    thread = threading.Thread(target=mirror.server.serve_forever, args=(0.05,))
    thread.start()
    yield mirror
    mirror.server.shutdown()
    mirror.server.server_close()
    thread.join()


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """The database in use: 36.64.0.0/12 is Jakarta."""
    directory = tmp_path / "geo"
    directory.mkdir()
    return write_mmdb(directory / "GeoLite2-City.mmdb", "GeoLite2-City", {JAKARTA_V4: JAKARTA})


@pytest.fixture
def fresh(tmp_path: Path) -> bytes:
    """The next release: 36.64.0.0/12 has moved to Munich."""
    path = write_mmdb(tmp_path / "fresh.mmdb", "GeoLite2-City", {JAKARTA_V4: MUNICH})
    return path.read_bytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def maxmind_tar(database: bytes) -> bytes:
    """The shape of MaxMind's GeoLite2-City tar.gz: one dated directory."""
    return tar_gz({
        "GeoLite2-City_20261124/COPYRIGHT.txt": b"Database and Contents Copyright (c) MaxMind\n",
        "GeoLite2-City_20261124/GeoLite2-City.mmdb": database,
        "GeoLite2-City_20261124/LICENSE.txt": b"GeoLite2 End User License Agreement\n",
    })  # fmt: skip


def geo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`tautan geo ARGS` with TAUTAN_GEOIP_DB and the license key only when given in `env`."""
    unset: dict[str, str | None] = {"TAUTAN_GEOIP_DB": None, "TAUTAN_GEOIP_LICENSE_KEY": None}
    return command("geo", *args, env=unset | env)


def country(path: Path, ip: str = IN_JAKARTA) -> str | None:
    lookup = GeoLookup(str(path))
    try:
        return lookup.lookup(ip).country
    finally:
        lookup.close()


def assert_untouched(target: Path, before: bytes) -> None:
    assert target.read_bytes() == before
    assert os.listdir(target.parent) == [target.name]  # no temp file left behind


def test_dbip_gzip_is_downloaded_checked_and_swapped_in(
    mirror: Mirror, target: Path, fresh: bytes
) -> None:
    mode = target.stat().st_mode
    url = mirror.serve("/free/dbip-city-lite-2026-11.mmdb.gz", gz(fresh))

    result = geo("update", "--dbip", "--url", url, "--path", str(target))

    assert result.returncode == 0, result.stdout + result.stderr
    with maxminddb.open_database(str(target)) as reader:
        built = datetime.fromtimestamp(reader.metadata().build_epoch, UTC)
    # Off a terminal the progress bar stays quiet: one line says what happened.
    assert result.stdout.splitlines() == [f"{target} is now GeoLite2-City, built {built:%Y-%m-%d}"]
    assert country(target) == "DE"
    assert os.listdir(target.parent) == [target.name]
    assert target.stat().st_mode == mode  # still readable by the service's user


@pytest.mark.parametrize("in_environment", [False, True])
def test_maxmind_tar_gz_with_the_license_key(
    mirror: Mirror, target: Path, fresh: bytes, in_environment: bool
) -> None:
    url = mirror.serve("/maxmind/geoip_download", maxmind_tar(fresh))
    # From the environment the key stays out of `ps` and the shell's history.
    key = {"TAUTAN_GEOIP_LICENSE_KEY": KEY} if in_environment else {}
    flag = [] if in_environment else ["--license-key", KEY]

    result = geo(
        "update",
        *flag,
        "--url",
        f"{url}?edition_id=GeoLite2-City&suffix=tar.gz",
        TAUTAN_GEOIP_DB=str(target),  # the target when --path is not given
        **key,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert KEY not in result.stdout + result.stderr
    assert country(target) == "DE"
    assert os.listdir(target.parent) == [target.name]


def test_a_first_download_creates_the_file(mirror: Mirror, tmp_path: Path, fresh: bytes) -> None:
    url = mirror.serve("/dbip.mmdb", fresh)  # a mirror may serve the .mmdb itself
    target = tmp_path / "City.mmdb"

    result = geo("update", "--dbip", "--url", url, "--path", str(target))

    assert result.returncode == 0, result.stdout + result.stderr
    assert country(target) == "DE"
    assert target.stat().st_mode & 0o777 == 0o644

    elsewhere = geo("update", "--dbip", "--url", url, "--path", str(tmp_path / "no" / "City.mmdb"))
    assert elsewhere.returncode == 1
    assert f"directory {tmp_path / 'no'} does not exist" in elsewhere.stdout


def test_a_wrong_license_key_is_refused_and_never_shown(
    mirror: Mirror, target: Path, fresh: bytes
) -> None:
    before = target.read_bytes()
    url = mirror.serve("/maxmind/geoip_download", maxmind_tar(fresh))

    result = geo("update", "--license-key", "not-my-key-42", "--url", url, "--path", str(target))

    assert result.returncode == 1
    assert "HTTP 401" in result.stdout and "check the license key" in result.stdout
    assert "not-my-key-42" not in result.stdout + result.stderr
    assert_untouched(target, before)


def asn_database(tmp_path: Path) -> bytes:
    return write_mmdb(tmp_path / "asn.mmdb", "GeoLite2-ASN", {JAKARTA_V4: {"x": 1}}).read_bytes()


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (lambda fresh, tmp: gz(b"<html>Service Unavailable</html>"), "not a MaxMind DB file"),
        (lambda fresh, tmp: b"<html>a captive portal</html>", "not a MaxMind DB file"),
        (lambda fresh, tmp: gz(fresh)[: len(gz(fresh)) // 2], "truncated or corrupt archive"),
        (
            lambda fresh, tmp: maxmind_tar(fresh)[: len(maxmind_tar(fresh)) // 2],
            "truncated or corrupt archive",
        ),
        (lambda fresh, tmp: gz(fresh[: len(fresh) // 2]), "not a MaxMind DB file"),
        (lambda fresh, tmp: gz(asn_database(tmp)), "Tautan needs a City or Country one"),
        (lambda fresh, tmp: tar_gz({"../GeoLite2-City.mmdb": fresh}), "unsafe path"),
        (lambda fresh, tmp: tar_gz({"/etc/GeoLite2-City.mmdb": fresh}), "unsafe path"),
        (lambda fresh, tmp: tar_gz({"a.mmdb": fresh, "b.mmdb": fresh}), "2 .mmdb files"),
        (lambda fresh, tmp: tar_gz({"README.txt": b"hello"}), "0 .mmdb files"),
    ],
    ids=[
        "gzipped-html",
        "plain-html",
        "truncated-gzip",
        "truncated-tar",
        "mmdb-without-metadata",
        "asn-database",
        "tar-parent-path",
        "tar-absolute-path",
        "tar-two-databases",
        "tar-no-database",
    ],
)
def test_a_bad_download_is_refused_and_changes_nothing(
    mirror: Mirror,
    target: Path,
    fresh: bytes,
    tmp_path: Path,
    payload: Callable[[bytes, Path], bytes],
    error: str,
) -> None:
    """In-process, to spare a command start per case; the command's side of a failure is
    tested with a 404, a 401 and a server that is down."""
    before = target.read_bytes()
    url = mirror.serve("/db.mmdb.gz", payload(fresh, tmp_path))

    with pytest.raises(geo_update.GeoUpdateError, match=re.escape(error)):
        geo_update.update(target, [url])

    assert_untouched(target, before)
    assert not (tmp_path / "GeoLite2-City.mmdb").exists()  # nothing unpacked outside it


def test_a_file_missing_on_the_server_is_a_clear_error(mirror: Mirror, target: Path) -> None:
    before = target.read_bytes()
    url = mirror.base + "/dbip-city-lite-2026-11.mmdb.gz"

    result = geo("update", "--dbip", "--url", url, "--path", str(target))

    assert result.returncode == 1
    assert result.stdout == f"error: not found (HTTP 404): {url}; {target} is unchanged\n"
    assert_untouched(target, before)


def test_a_server_that_is_down_is_a_clear_error(target: Path) -> None:
    before = target.read_bytes()
    url = f"http://127.0.0.1:{free_port()}/db.mmdb.gz"

    result = geo("update", "--dbip", "--url", url, "--path", str(target))

    assert result.returncode == 1
    assert f"downloading {url} failed" in result.stdout
    assert_untouched(target, before)


def test_dbip_is_this_month_or_else_last_month(mirror: Mirror, target: Path, fresh: bytes) -> None:
    assert geo_update.dbip_urls(date(2026, 1, 1)) == [
        "https://download.db-ip.com/free/dbip-city-lite-2026-01.mmdb.gz",
        "https://download.db-ip.com/free/dbip-city-lite-2025-12.mmdb.gz",
    ]
    this_month = mirror.base + "/dbip-city-lite-2026-01.mmdb.gz"
    last_month = mirror.base + "/dbip-city-lite-2025-12.mmdb.gz"
    with pytest.raises(geo_update.GeoUpdateError, match=f"{this_month} nor {last_month}"):
        geo_update.update(target, [this_month, last_month])

    mirror.serve("/dbip-city-lite-2025-12.mmdb.gz", gz(fresh))
    info = geo_update.update(target, [this_month, last_month])

    assert (info.path, info.database_type) == (target, "GeoLite2-City")
    assert country(target) == "DE"


def test_a_database_path_is_required(mirror: Mirror) -> None:
    for args in (["update", "--dbip", "--url", mirror.base + "/x"], ["info"]):
        result = geo(*args)
        assert result.returncode == 1
        assert "pass --path, or set TAUTAN_GEOIP_DB" in result.stdout


@pytest.mark.parametrize("sources", [[], ["--dbip", "--license-key", KEY]])
def test_exactly_one_source(target: Path, sources: list[str]) -> None:
    before = target.read_bytes()
    result = geo("update", *sources, "--path", str(target))
    assert result.returncode == 2
    assert "exactly one of --dbip and --license-key" in result.stderr
    assert KEY not in result.stdout + result.stderr
    assert_untouched(target, before)


def test_info_describes_the_database(target: Path) -> None:
    with maxminddb.open_database(str(target)) as reader:
        built = datetime.fromtimestamp(reader.metadata().build_epoch, UTC)

    result = geo("info", TAUTAN_GEOIP_DB=str(target))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"path        {target}",
        "type        GeoLite2-City",
        f"built       {built:%Y-%m-%d %H:%M} UTC",
        "ip version  6",
        f"size        0.0 MB ({target.stat().st_size:,} bytes)",
    ]


def test_info_on_a_file_that_is_no_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database")
    result = geo("info", "--path", str(junk))
    assert result.returncode == 1
    assert f"{junk}: not a MaxMind DB file" in result.stdout

    missing = geo("info", "--path", str(tmp_path / "missing.mmdb"))
    assert missing.returncode == 1
    assert "missing.mmdb: no such file" in missing.stdout


@pytest.fixture
def geo_client(settings: Settings, target: Path) -> Iterator[TestClient]:
    with with_writer(
        TestClient(
            create_app(settings.model_copy(update={"geoip_db": str(target)})),
            base_url=BASE_URL,
            follow_redirects=False,
            client=PEER,
        )
    ) as client:
        yield client


def test_a_running_app_picks_up_the_new_database(
    geo_client: TestClient, mirror: Mirror, target: Path, fresh: bytes
) -> None:
    create_link(geo_client, make_key(geo_client, "links:write"), slug="geo")
    visitor = {"X-Forwarded-For": IN_JAKARTA}
    assert geo_client.get("/geo", headers=visitor).status_code == 302
    assert [c.country for c in clicks_of(geo_client, 1)] == ["ID"]

    url = mirror.serve("/dbip.mmdb.gz", gz(fresh))
    updated = geo("update", "--dbip", "--url", url, "--path", str(target))
    assert updated.returncode == 0, updated.stdout + updated.stderr

    # The same visitor again: the writer's memo of that address was dropped with the old file.
    geo_client.get("/geo", headers=visitor)
    assert [c.country for c in clicks_of(geo_client, 2)] == ["ID", "DE"]
