"""The hosts the redirect answers for: the base host (TAUTAN_BASE_URL's) and every
registered branded domain. A request's Host header is only ever a key here: nothing of it
is echoed into a page or a Location."""

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import on_commit
from app.core.tables import Domain
from app.core.urls import is_loopback

log = logging.getLogger(__name__)
MAX_REMEMBERED = 1024  # Host headers remembered as they came (a flood of others is re-read)


@dataclass(frozen=True, slots=True)
class Site:
    domain: str  # as links store it: "" for the base host
    root_url: bytes | None = None  # where `GET /` goes
    not_found_url: bytes | None = None  # where a slug the domain lacks goes


BASE = Site("")


def host_key(header: bytes) -> str:
    """A Host header as domains are stored: lower case, no port, no trailing dot."""
    host = header.decode("latin-1").lower()
    if not host.startswith("["):  # an IPv6 address keeps its colons
        host = host.partition(":")[0]
    return host.rstrip(".")


class Sites:
    """Every domain, read whole (a few rows) at first use, again once `ttl_s` old, and at
    once after a change committed through this process. Should the database not answer,
    the domains last read are served."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], base_host: str, ttl_s: float
    ) -> None:
        self._sessionmaker = sessionmaker
        self._base_host = base_host
        self._ttl_s = ttl_s
        self._domains: dict[str, Site] = {}
        self._by_header: dict[bytes | None, Site | None] = {}
        self._fresh_until = 0.0  # monotonic
        self._reading: asyncio.Task[None] | None = None

    async def of(self, header: bytes | None) -> Site | None:
        """The site a request's Host header names; None for a host Tautan does not serve."""
        if time.monotonic() >= self._fresh_until:
            await self._read()
        try:
            return self._by_header[header]
        except KeyError:
            pass
        site = self._site(header)
        if len(self._by_header) >= MAX_REMEMBERED:
            self._by_header.clear()
        self._by_header[header] = site
        return site

    def _site(self, header: bytes | None) -> Site | None:
        # Until a branded domain is registered, every host is the base host: a proxy that
        # does not pass the visitor's Host on (nginx's default) keeps working. From then
        # on the Host header decides (docs/domains.md). HTTP/1.0 sends none: the base host
        # is all it can mean.
        if header is None or not self._domains:
            return BASE
        host = host_key(header)
        if host == self._base_host or (is_loopback(host) and is_loopback(self._base_host)):
            return BASE
        return self._domains.get(host)

    async def _read(self) -> None:
        """Read the domains, one read at a time however many requests wait for it."""
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_domains())
        reading = self._reading
        try:
            await asyncio.shield(reading)
        finally:
            if self._reading is reading and reading.done():
                self._reading = None

    async def _read_domains(self) -> None:
        try:
            async with self._sessionmaker() as session:
                rows = await session.execute(
                    select(Domain.host, Domain.root_url, Domain.not_found_url)
                )
                domains = {
                    host: Site(host, _ascii(root_url), _ascii(not_found_url))
                    for host, root_url, not_found_url in rows
                }
        except Exception as exc:
            # Try again in a second; meanwhile the domains last read answer.
            log.warning("reading the branded domains failed: %r", exc)
            self._fresh_until = time.monotonic() + 1
            return
        self._domains, self._by_header = domains, {}
        self._fresh_until = time.monotonic() + self._ttl_s

    def watch(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read the domains again once a session of `sessionmaker` has changed one."""
        on_commit(sessionmaker, Domain, lambda domain: domain.host, self._forget)

    def _forget(self, _host: str) -> None:
        self._fresh_until = 0.0


def _ascii(url: str | None) -> bytes | None:
    return url.encode() if url else None  # URLs are stored as ASCII (core/urls.check_url)
