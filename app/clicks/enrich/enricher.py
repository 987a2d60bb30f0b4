"""Turning a raw click into a `clicks` row: who (visitor id), with what (device), from
where (referrer, geography). Pure and memoised; runs in the writer, never in the request."""

import time
from collections import OrderedDict
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from app.clicks.enrich import reference
from app.clicks.enrich.bots import bot_name
from app.clicks.enrich.geo import NO_GEO, GeoLookup
from app.clicks.enrich.known_bots import MAX_UA_LENGTH, known_bot
from app.clicks.enrich.language import primary_language
from app.clicks.enrich.referrer import classify_referrer
from app.clicks.enrich.useragent import UserAgentInfo, guess_user_agent, parse_user_agent
from app.clicks.raw import RawClick
from app.clicks.visitors import visitor_id
from app.config import Settings
from app.core.client_ip import parse_ip, stored_ip
from app.core.tables import Click

# A User-Agent never seen before costs a millisecond or two (ua-parser, the reference device
# database, the crawler lists), and far more when it is long random text; in-app browsers
# put app version, screen and model in theirs, so real traffic has many. Past this much of
# that work per click of a batch (0.1 s for a batch of 1,000), a new User-Agent gets a guess
# (`guess_user_agent`), counted in `tautan_device_fallbacks_total`: a flood of random
# User-Agents cannot slow the writer by more than this, and a few regexes per click,
# whatever TAUTAN_FLUSH_BATCH is.
DEVICE_BUDGET_S_PER_CLICK = 100e-6
# Worked out in full in every batch whatever they cost: a process's first User-Agents cost
# more (the reference compiles each regex at its first use), and a quiet hour's clicks
# should not be guessed because of that.
FULL_ANSWERS_PER_BATCH = 8
DEVICES_KEPT = 8192  # User-Agents (cut to MAX_UA_LENGTH) whose device fields are memoised

DEVICE_FIELDS = (
    "is_bot", "bot_name", "device_type", "os", "os_version", "browser", "browser_version",
    "device_brand", "device_model", "in_app",
)  # fmt: skip

MAX_LENGTH = {
    c.name: c.type.length for c in Click.__table__.columns if getattr(c.type, "length", None)
}


def _fitted(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every text cut to its column's length and rid of NUL characters, which
    PostgreSQL cannot store: headers are untrusted, and a value the database refuses would
    cost the click."""
    return {
        name: value.replace("\x00", "")[: MAX_LENGTH[name]] if isinstance(value, str) else value
        for name, value in fields.items()
    }


class Enricher:
    def __init__(self, settings: Settings) -> None:
        self.store_ip = settings.store_ip
        # TAUTAN_GEOIP_DB, or else the default database, which may not be fetched yet: it is
        # opened when it appears (reload_geo_if_changed).
        self.geo = GeoLookup(settings.geo_db_path(), missing_ok=not settings.geoip_db)
        # The same User-Agents, addresses and proxies come back again and again: what each
        # gives is worked out once.
        self.place = lru_cache(maxsize=8192)(self._place)
        # Referers are up to 2 KB: 4,096 of them, with their fields, ~12 MB at most.
        self.source = lru_cache(maxsize=4096)(_source)
        self._devices: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._budget_s = 0.0
        self._full_answers = 0
        self.device_fallbacks = 0

    @staticmethod
    def warm() -> None:
        """Load the device database and build its indexes (a second or so) now, before
        serving, rather than at the first click, which the event loop would wait for."""
        reference.warm()

    def start_batch(self, clicks: int) -> None:
        """A new batch of `clicks`: the time budget for new User-Agents starts again."""
        self._budget_s = DEVICE_BUDGET_S_PER_CLICK * clicks
        self._full_answers = 0

    def reload_geo_if_changed(self) -> None:
        """Pick up a geo database swapped in while running (`tautan geo update`), or the
        default one once its first fetch is done."""
        if self.geo.reload_if_changed():
            self.place.cache_clear()  # it holds places from the old database

    def device(self, user_agent: str, client_hints: str = "") -> dict[str, Any]:
        """The device and bot fields of a click, memoised by User-Agent and client hints
        (least recently used first out)."""
        key = (user_agent[:MAX_UA_LENGTH], client_hints)
        if (fields := self._devices.get(key)) is not None:
            self._devices.move_to_end(key)
            return fields
        if self._budget_s <= 0 and self._full_answers >= FULL_ANSWERS_PER_BATCH:
            # Not kept: the next batch may have the time to do better.
            self.device_fallbacks += 1
            return _device_fields(guess_user_agent(*key), known_bot(key[0]))
        started = time.perf_counter()
        fields = self._devices[key] = device_fields(*key)
        self._budget_s -= time.perf_counter() - started
        self._full_answers += 1
        if len(self._devices) > DEVICES_KEPT:
            self._devices.popitem(last=False)
        return fields

    def _place(self, ip: str) -> dict[str, Any]:
        """Where the address is, and what is stored of it."""
        address = parse_ip(ip)
        geo = self.geo.lookup_address(address) if address else NO_GEO
        return _fitted({
            "ip": stored_ip(address, self.store_ip),
            "country": geo.country,
            "region": geo.region,
            "city": geo.city,
            "latitude": geo.latitude,
            "longitude": geo.longitude,
            "timezone": geo.timezone,
        })  # fmt: skip

    def enrich(self, raw: RawClick, salt: bytes) -> dict[str, Any]:
        """The row to insert: a few memo lookups per click (device, place, source), since
        a writer does this tens of thousands of times a second."""
        device = self.device(raw.user_agent, raw.client_hints)
        return {
            "link_id": raw.link_id,
            "workspace_id": raw.workspace_id,
            "ts": datetime.fromtimestamp(raw.ts, UTC),
            "visitor_id": visitor_id(salt, raw.visitor_key, raw.user_agent),
            **device,
            **self.place(raw.ip),
            **self.source(raw.referer, device["in_app"], raw.accept_language),
            "trigger": raw.trigger,
            "route": raw.route[: MAX_LENGTH["route"]] or None,
        }


def _source(referer: str, in_app: str | None, accept_language: str) -> dict[str, Any]:
    """Where a click came from, and its language."""
    referrer = classify_referrer(referer, in_app)
    return _fitted({
        "referrer_url": referrer.url,
        "referrer_domain": referrer.domain,
        "referrer_source": referrer.source,
        "language": primary_language(accept_language),
    })  # fmt: skip


def device_fields(user_agent: str, client_hints: str = "") -> dict[str, Any]:
    """A click's device and bot fields (DEVICE_FIELDS), worked out in full."""
    return _device_fields(parse_user_agent(user_agent, client_hints), bot_name(user_agent))


def _device_fields(agent: UserAgentInfo, bot: str | None) -> dict[str, Any]:
    return _fitted({
        "is_bot": bot is not None,
        "bot_name": bot,
        "device_type": "bot" if bot else agent.device_type,
        "os": agent.os,
        "os_version": agent.os_version,
        "browser": agent.browser,
        "browser_version": agent.browser_version,
        "device_brand": None if bot else agent.device_brand,
        "device_model": None if bot else agent.device_model,
        "in_app": agent.in_app,
    })  # fmt: skip
