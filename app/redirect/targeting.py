"""Where a link with rules or variants sends a visitor, decided in the redirect.

Rules come first: the first whose every condition holds sends the visitor to its url.
Otherwise the variants split visitors by weight (per cent of them), each visitor staying
with one variant for a UTC day; those no variant takes go to the link's own url. A link
without rules or variants has no Targeting at all: its redirects do none of this.

What a rule asks of the visitor is worked out only when a rule asks it, and memoised:
the device type and OS of a User-Agent by ua-parser (tens of microseconds for a new one,
a dict lookup after), the country by the geo database, the language from the first tag
of Accept-Language. The writer later stores the same facts, the device type from the
reference device database, which may name a few devices more precisely than ua-parser.
"""

import logging
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.clicks.enrich.geo import GeoLookup
from app.clicks.enrich.language import primary_language

log = logging.getLogger(__name__)
GEO_RELOAD_CHECK_S = 60.0  # how often a swapped geo database (`tautan geo update`) is looked for
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Destination:
    route: str | None  # the rule's or variant's name, which the click records
    location: str  # the URL with the link's UTM parameters, without its #fragment
    fragment: str  # "" or "#..."

    @classmethod
    def of(cls, route: str | None, url: str) -> "Destination":
        location, hash_, fragment = url.partition("#")
        return cls(route, location, hash_ + fragment)


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's conditions, as sets of values to match (None: not asked)."""

    devices: frozenset[str] | None
    oses: frozenset[str] | None  # lower case: OS names match without regard to case
    countries: frozenset[str] | None
    languages: frozenset[str] | None
    to: Destination


UNKNOWN: Any = object()  # a fact not worked out yet


class Visitor:
    """What rules may ask of the visitor of one redirect, each worked out on first use."""

    __slots__ = ("_accept_language", "_address", "_country", "_device", "_places", "_user_agent")

    def __init__(
        self, user_agent: str, accept_language: str, address: str, places: "Places"
    ) -> None:
        self._user_agent, self._accept_language = user_agent, accept_language
        self._address, self._places = address, places
        self._device: tuple[str, str | None] = UNKNOWN
        self._country: str | None = UNKNOWN

    def device_and_os(self) -> tuple[str, str | None]:
        if self._device is UNKNOWN:
            # Imported here: its parsers take 20 MB, which a process serving no device or
            # OS rule should not hold.
            from app.clicks.enrich.useragent import device_and_os

            self._device = device_and_os(self._user_agent)
        return self._device

    def country(self) -> str | None:
        if self._country is UNKNOWN:
            self._country = self._places.country(self._address)
        return self._country

    def language(self) -> str | None:
        return primary_language(self._accept_language)

    def matches(self, rule: Rule) -> bool:
        if rule.devices is not None and self.device_and_os()[0] not in rule.devices:
            return False
        if rule.oses is not None and (self.device_and_os()[1] or "").lower() not in rule.oses:
            return False
        if rule.countries is not None and self.country() not in rule.countries:
            return False
        return rule.languages is None or self.language() in rule.languages


@dataclass(frozen=True, slots=True)
class Targeting:
    rules: tuple[Rule, ...]
    # Each variant with the bound of its share: a visitor whose bucket (0-99) is below a
    # variant's bound, and not below the one before, goes there.
    variants: tuple[tuple[int, Destination], ...]
    weight: int  # the bytes it holds, about, for the link cache's bound

    @classmethod
    def of(
        cls,
        rules: list[dict[str, Any]] | None,
        variants: list[dict[str, Any]] | None,
        with_utm: Callable[[str], str],
    ) -> "Targeting | None":
        """The targeting of a link's stored `rules` and `variants`, their URLs passed
        through `with_utm`; None when it has neither."""
        if not rules and not variants:
            return None
        built_rules = tuple(
            Rule(
                _set(rule["if"].get("device")),
                _set(os.lower() for os in rule["if"]["os"]) if "os" in rule["if"] else None,
                _set(rule["if"].get("country")),
                _set(rule["if"].get("language")),
                Destination.of(rule["name"], with_utm(rule["url"])),
            )
            for rule in rules or []
        )
        bound, built_variants = 0, []
        for variant in variants or []:
            bound += variant["weight"]
            built_variants.append(
                (bound, Destination.of(variant["name"], with_utm(variant["url"])))
            )
        size = sum(len(str(part)) for part in (rules, variants))
        return cls(built_rules, tuple(built_variants), size)

    def choose(self, visitor: Visitor, sticky_key: str) -> Destination | None:
        """Where the visitor goes; None for the link's own url. `sticky_key` tells
        visitors apart (the same for a visitor's clicks on this link today)."""
        for rule in self.rules:
            if visitor.matches(rule):
                return rule.to
        if self.variants:
            bucket = _bucket(sticky_key)
            for bound, to in self.variants:
                if bucket < bound:
                    return to
        return None


def sticky_key(link_id: int, visitor_key: str, user_agent: str) -> str:
    """A visitor's key for today's split of a link: their address's keyed digest (so
    nobody can pick a variant by choosing a key) and User-Agent, on this UTC day."""
    return f"{link_id}\n{int(time.time() // DAY_S)}\n{visitor_key}\n{user_agent}"


def _bucket(key: str) -> int:
    """0-99, evenly spread over keys: the key holds a keyed digest, random already, so a
    checksum spreads it as well as a cryptographic hash would, in a fifth of the time."""
    return zlib.crc32(key.encode()) % 100


def _set(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


class Places:
    """Countries of client addresses for rules, from the geo database at `path` (none
    without one); it is opened on first use, and a new file is picked up within a minute.
    `missing_ok`: the file may not be there yet (the default database, fetched in the
    background), and is opened once it is."""

    def __init__(self, path: str | None, *, missing_ok: bool = False) -> None:
        self._path = path
        self._missing_ok = missing_ok
        self._geo: GeoLookup | None = None
        self._checked_at = 0.0

    def country(self, address: str) -> str | None:
        if self._geo is None:
            try:
                self._geo = GeoLookup(self._path, missing_ok=self._missing_ok)
            except Exception as exc:  # a missing or broken file: the writer says so too
                log.error("country rules cannot match: %s", exc)
                self._geo = GeoLookup(None)
            self._checked_at = time.monotonic()
        elif time.monotonic() - self._checked_at > GEO_RELOAD_CHECK_S:
            self._checked_at = time.monotonic()
            self._geo.reload_if_changed()
        return self._geo.country(address)

    def close(self) -> None:
        if self._geo is not None:
            self._geo.close()
