"""Country, region and city of an IP address, from a MaxMind-format (.mmdb) database.

Records are read with maxminddb's C reader as plain dicts: geoip2's model objects, built
around the same dicts, cost four times the lookup itself, once per new address a writer
sees. The fields are those geoip2 names (`country.iso_code`, `subdivisions.most_specific`
…), in English."""

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import maxminddb

from app.core.client_ip import Address, on_a_map, parse_ip

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Geo:
    country: str | None = None  # ISO 3166-1 alpha-2
    region: str | None = None  # the most specific subdivision, English name
    city: str | None = None
    latitude: float | None = None  # rounded to 2 decimals (~1 km): enough for a map
    longitude: float | None = None
    timezone: str | None = None


NO_GEO = Geo()


class GeoLookup:
    """Lookups against one database file; `path=None` means no database, so no geography.

    Call `lookup` and `reload_if_changed` from one thread: a reload closes the reader that a
    lookup in another thread might still be using (that lookup would then answer NO_GEO).
    """

    def __init__(self, path: str | None, *, missing_ok: bool = False) -> None:
        """`missing_ok`: a missing file means no geography for now, and `reload_if_changed`
        opens it once it is there (the default database, fetched in the background);
        otherwise a missing file is refused (a path someone set, and mistyped)."""
        self.path = path
        self._reader: maxminddb.Reader | None = None
        self._is_city = False
        self._file_id: tuple[int, int, int] | None = None
        # Per instance: a reload clears it, and it goes away with its GeoLookup.
        self._lookup = lru_cache(maxsize=65536)(self._lookup_uncached)
        self._country = lru_cache(maxsize=65536)(self._country_uncached)
        if path is not None:
            try:
                self._file_id = _file_id(path)
            except FileNotFoundError:
                if missing_ok:
                    return
                raise FileNotFoundError(
                    f"GeoIP database {path!r} not found: point TAUTAN_GEOIP_DB at a City or "
                    "Country .mmdb file, or leave it unset for the default database."
                ) from None
            self._reader, self._is_city = _open(path)

    def lookup(self, ip: str) -> Geo:
        """The place of an address written as text (memoised)."""
        return self._lookup(ip) if self._reader is not None else NO_GEO

    def country(self, ip: str) -> str | None:
        """The country of an address written as text, alone (memoised): a third of the work
        of `lookup` for a new address, for the redirect, whose rules ask no more."""
        return self._country(ip) if self._reader is not None else None

    def reload_if_changed(self) -> bool:
        """Reopen the database if its file was replaced (say by an atomic `os.replace`), or
        open it if it has appeared since (with `missing_ok`)."""
        if self.path is None:
            return False
        try:
            file_id = _file_id(self.path)
        except OSError:
            return False  # mid-swap, or removed: keep answering from the old file
        if file_id == self._file_id:
            return False
        # Remembered even if the new file is bad, so it is not retried on every call.
        self._file_id = file_id
        try:
            reader, is_city = _open(self.path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
            logger.warning("Kept the previous GeoIP database: %s", error)
            return False
        old, self._reader, self._is_city = self._reader, reader, is_city
        self._lookup.cache_clear()
        self._country.cache_clear()
        if old is not None:
            old.close()
        return True

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._lookup.cache_clear()
        self._country.cache_clear()

    def _country_uncached(self, ip: str) -> str | None:
        address = parse_ip(ip)
        record = self._record(address) if address is not None else None
        return _country_code(record) if record else None

    def _lookup_uncached(self, ip: str) -> Geo:
        address = parse_ip(ip)
        return NO_GEO if address is None else self.lookup_address(address)

    def lookup_address(self, address: Address) -> Geo:
        """The place of an address already parsed, not memoised (for a caller that keeps
        its own memo, as the click enricher does)."""
        record = self._record(address)
        if record is None:
            return NO_GEO
        country = _country_code(record)
        if not self._is_city:
            return Geo(country=country) if country else NO_GEO
        location = record.get("location") or {}
        return Geo(
            country=country,
            region=_name((record.get("subdivisions") or [None])[-1]),  # most specific last
            city=_name(record.get("city")),
            latitude=_round(location.get("latitude")),
            longitude=_round(location.get("longitude")),
            timezone=location.get("time_zone"),
        )

    def _record(self, address: Address) -> dict[str, Any] | None:
        """The database's record of an address on the map, if it has one."""
        if self._reader is None or not on_a_map(address):
            return None
        try:
            record = self._reader.get(address)
        except (ValueError, maxminddb.InvalidDatabaseError):
            # A reader closed by a reload in another thread, or a corrupt file: a click
            # without geography beats a writer that stops.
            return None
        return record if isinstance(record, dict) else None


def _country_code(record: dict[str, Any]) -> str | None:
    """The ISO code of a record's country: `country.iso_code` as MaxMind and DB-IP write it,
    or else `country_code`, as the ip-location-db mirror of DB-IP Lite does."""
    code = (record.get("country") or {}).get("iso_code") or record.get("country_code")
    return code if isinstance(code, str) else None


def _name(place: dict[str, Any] | None) -> str | None:
    """A place's English name."""
    return ((place or {}).get("names") or {}).get("en")


def _open(path: str) -> tuple[maxminddb.Reader, bool]:
    reader = maxminddb.open_database(path)
    database_type = reader.metadata().database_type
    # Any case: MaxMind's GeoLite2-City, DB-IP's DBIP-Country-Lite, ip-location-db's
    # "country ipvAll".
    if "city" in database_type.lower():
        return reader, True
    if "country" in database_type.lower():
        return reader, False
    reader.close()
    raise ValueError(
        f"GeoIP database {path!r} is of type {database_type!r}: "
        "use a City or Country database (e.g. GeoLite2-City.mmdb)."
    )


def _file_id(path: str) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
