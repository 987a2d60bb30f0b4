"""Fetching a fresh geo database (DB-IP Lite or MaxMind GeoLite2) and swapping it in.

The download goes to a hidden temporary file next to the target, is unpacked and opened as a
MaxMind DB, and only then takes the target's place in one `os.replace`: a running click
writer (GeoLookup.reload_if_changed) sees the old file or the new one, never half of one, and
a failed update leaves the old file as it was and nothing else behind."""

import contextlib
import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

import geoip2.database
import httpx
import maxminddb

DBIP_URL = "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz"
# The license key is sent as the `license_key` parameter, so it is in no URL we print.
MAXMIND_URL = (
    "https://download.maxmind.com/app/geoip_download?edition_id=GeoLite2-City&suffix=tar.gz"
)
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[int, int | None], None]  # bytes received so far, and the total if known


class GeoUpdateError(Exception):
    """An update or a look at a database that failed, said so that the operator can act."""


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    path: Path
    database_type: str  # e.g. GeoLite2-City, DBIP-City-Lite
    built_at: datetime  # UTC
    ip_version: int
    size: int  # bytes


def dbip_urls(today: date) -> list[str]:
    """This month's DB-IP Lite file, then last month's: a month's file appears some time
    after the month begins."""
    last_month = today.replace(day=1) - timedelta(days=1)
    return [DBIP_URL.format(month=f"{day:%Y-%m}") for day in (today, last_month)]


def describe(path: Path) -> DatabaseInfo:
    """What the database at `path` is; GeoUpdateError unless it is a City or Country
    MaxMind DB with a build date."""
    try:
        with geoip2.database.Reader(str(path)) as reader:
            metadata = reader.metadata()
    except FileNotFoundError:
        raise GeoUpdateError("no such file") from None
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoUpdateError(f"not a MaxMind DB file ({exc})") from None
    if "City" not in metadata.database_type and "Country" not in metadata.database_type:
        raise GeoUpdateError(
            f"a {metadata.database_type!r} database: Tautan needs a City or Country one"
        )
    if not metadata.build_epoch:
        raise GeoUpdateError("a MaxMind DB without a build date in its metadata")
    return DatabaseInfo(
        path=path,
        database_type=metadata.database_type,
        built_at=datetime.fromtimestamp(metadata.build_epoch, UTC),
        ip_version=metadata.ip_version,
        size=path.stat().st_size,
    )


def update(
    target: Path,
    urls: Sequence[str],
    *,
    license_key: str | None = None,
    progress: Progress | None = None,
) -> DatabaseInfo:
    """Download the first of `urls` that exists (a .mmdb, .mmdb.gz or a .tar.gz holding one
    .mmdb), check it, and put it at `target` in one atomic rename."""
    if target.is_dir():
        raise GeoUpdateError(f"{target} is a directory: give the path of the .mmdb file")
    if not target.parent.is_dir():
        raise GeoUpdateError(f"directory {target.parent} does not exist: create it first")
    try:
        with _scratch_file(target) as download, _scratch_file(target) as database:
            source = _download_first(urls, download, license_key, progress)
            _unpack(download, database, source)
            try:
                info = describe(database)
            except GeoUpdateError as exc:
                raise GeoUpdateError(f"{source} did not send a usable database: {exc}") from None
            _keep_mode(target, database)
            os.replace(database, target)
    except OSError as exc:
        raise GeoUpdateError(f"could not write next to {target}: {exc.strerror}") from None
    return replace(info, path=target)


@contextlib.contextmanager
def _scratch_file(target: Path) -> Iterator[Path]:
    """A hidden file in the target's directory (so that os.replace is a rename on one file
    system), removed on the way out unless it was renamed."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _download_first(
    urls: Sequence[str], into: Path, license_key: str | None, progress: Progress | None
) -> str:
    """Download the first of `urls` that is found; returns it (as it may be shown)."""
    missing = []
    for url in urls:
        with into.open("wb") as out:
            if _download(url, out, license_key, progress):
                return url
        missing.append(url)
    raise GeoUpdateError(f"not found (HTTP 404): {' nor '.join(missing)}")


def _download(url: str, out: BinaryIO, license_key: str | None, progress: Progress | None) -> bool:
    """Stream `url` into `out`; False when it is not found."""
    params = {"license_key": license_key} if license_key is not None else None
    try:
        with httpx.stream(
            "GET", url, params=params, follow_redirects=True, timeout=TIMEOUT
        ) as response:
            if response.status_code == 404:
                return False
            if response.status_code in (401, 403):
                hint = "check the license key" if license_key is not None else "access denied"
                raise GeoUpdateError(
                    f"{url} refused the download (HTTP {response.status_code}): {hint}"
                )
            if response.is_error:
                raise GeoUpdateError(f"{url} answered HTTP {response.status_code}")
            length = response.headers.get("content-length", "")
            total = int(length) if length.isdigit() else None
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                if progress is not None:
                    progress(response.num_bytes_downloaded, total)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        if license_key:
            reason = reason.replace(license_key, "***")
        raise GeoUpdateError(f"downloading {url} failed: {reason}") from None
    return True


def _unpack(download: Path, database: Path, source: str) -> None:
    """Write the .mmdb that `download` holds to `database`, flushed to disk."""
    try:
        with _packed_mmdb(download, source) as packed, database.open("wb") as out:
            shutil.copyfileobj(packed, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
    except (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError) as exc:
        raise GeoUpdateError(f"{source} sent a truncated or corrupt archive ({exc})") from None


@contextlib.contextmanager
def _packed_mmdb(download: Path, source: str) -> Iterator[IO[bytes]]:
    """The .mmdb in `download`: the file itself, gzipped, or the one .mmdb of a .tar.gz
    (as MaxMind packs it); told apart by content, not by name."""
    with download.open("rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    if not gzipped:
        with download.open("rb") as raw:
            yield raw
    elif _is_tar(download):
        with tarfile.open(download, "r:gz") as archive:
            member = archive.extractfile(_only_mmdb(archive, source))
            assert member is not None  # _only_mmdb returns a regular file
            yield member
    else:
        with gzip.open(download) as unzipped:
            yield unzipped


def _is_tar(download: Path) -> bool:
    with gzip.open(download) as unzipped:
        header = unzipped.read(512)
    return header[257:262] == b"ustar"  # the POSIX tar magic, also in GNU tar headers


def _only_mmdb(archive: tarfile.TarFile, source: str) -> tarfile.TarInfo:
    """The archive's one .mmdb file; refuses archives whose names climb out of their
    directory or whose .mmdb is a link."""
    members = archive.getmembers()  # reads the whole archive: a truncated one fails here
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise GeoUpdateError(f"{source} sent an archive with an unsafe path: {member.name!r}")
    found = [m for m in members if m.name.endswith(".mmdb")]
    if len(found) != 1:
        raise GeoUpdateError(f"{source} sent an archive with {len(found)} .mmdb files, not one")
    if not found[0].isfile():
        raise GeoUpdateError(f"{source} sent an archive whose {found[0].name} is not a file")
    return found[0]


def _keep_mode(target: Path, database: Path) -> None:
    """mkstemp makes files only their owner may read; the service may run as another user."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    database.chmod(mode)
