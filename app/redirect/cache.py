"""The in-process link cache: what the redirect needs of a link, read from the database
only on a miss. Changes made through this process are forgotten at once; changes made by
other processes are seen within `TAUTAN_LINK_CACHE_TTL_S`."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import raiseload

from app.links.models import Link
from app.links.service import destination

UNKNOWN_TTL_S = 5.0  # unknown slugs are remembered briefly, so probing them stays cheap
MAX_ENTRIES = 100_000


@dataclass(slots=True)
class Target:
    link_id: int
    workspace_id: int
    code: int
    location: str  # destination with UTMs, without its #fragment
    fragment: str  # "" or "#..."
    forward_query: bool
    starts_at: datetime | None
    expires_at: datetime | None
    max_clicks: int | None
    clicks: int
    fallback_url: str | None
    preview_page: bytes | None  # for link-preview fetchers, when the link has og_* fields

    @classmethod
    def of(cls, link: Link) -> "Target":
        to = destination(link)
        location, hash_, fragment = to.partition("#")
        return cls(
            link.id,
            link.workspace_id,
            link.redirect_code,
            location,
            hash_ + fragment,
            link.forward_query,
            link.starts_at,
            link.expires_at,
            link.max_clicks,
            link.clicks,
            link.fallback_url,
            preview_page(link, to),
        )

    def is_live(self, now: datetime) -> bool:
        if self.starts_at and now < self.starts_at:
            return False
        if self.expires_at and now >= self.expires_at:
            return False
        return not (self.max_clicks is not None and self.clicks >= self.max_clicks)


def preview_page(link: Link, to: str) -> bytes | None:
    """A page with the link's Open Graph and Twitter Card tags, which sends a person who
    opens it on to `to`; None when the link sets none of them."""
    if not (link.og_title or link.og_description or link.og_image):
        return None
    tags = []
    for name, value in (("title", link.og_title), ("description", link.og_description),
                        ("image", link.og_image)):  # fmt: skip
        if value:
            tags.append(f'<meta property="og:{name}" content="{escape(value)}">')
            tags.append(f'<meta name="twitter:{name}" content="{escape(value)}">')
    card = "summary_large_image" if link.og_image else "summary"
    title = escape(link.og_title or link.title or to)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
        f'{"".join(tags)}<meta name="twitter:card" content="{card}">'
        f'<meta http-equiv="refresh" content="0; url={escape(to)}"></head>'
        f'<body><a href="{escape(to)}">{title}</a></body></html>'
    ).encode()


class LinkCache:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessionmaker = sessionmaker
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Target | None]] = {}
        self._loading: dict[str, asyncio.Future[Target | None]] = {}
        self._slug_of: dict[int, str] = {}  # link id -> slug, for count_clicks

    async def get(self, slug: str) -> Target | None:
        entry = self._entries.get(slug)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        # One database read per slug however many requests miss at once.
        pending = self._loading.get(slug)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[slug] = future
        try:
            target = await self._load(slug)
            future.set_result(target)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it, no warning otherwise
            raise
        finally:
            current = self._loading.get(slug) is future
            if current:
                del self._loading[slug]
        if current:  # else forget() ran meanwhile and what was read may be stale
            self._store(slug, target)
        return target

    async def _load(self, slug: str) -> Target | None:
        async with self._sessionmaker() as session:
            link = await session.scalar(
                select(Link)
                .where(Link.slug == slug, Link.archived_at.is_(None))
                .options(raiseload(Link.tag_rows))
            )
            return Target.of(link) if link else None

    def _store(self, slug: str, target: Target | None) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            oldest = next(iter(self._entries))  # dicts keep insertion order
            old_target = self._entries.pop(oldest)[1]
            if old_target is not None:
                self._slug_of.pop(old_target.link_id, None)
        if target is not None:
            self._slug_of[target.link_id] = slug
        ttl = self._ttl_s if target is not None else min(self._ttl_s, UNKNOWN_TTL_S)
        self._entries[slug] = (time.monotonic() + ttl, target)

    def count_clicks(self, human_clicks: Counter[int]) -> None:
        """Add clicks the writer has just committed, so max_clicks bites without a reload."""
        for link_id, count in human_clicks.items():
            entry = self._entries.get(self._slug_of.get(link_id, ""))
            if entry is not None and entry[1] is not None:
                entry[1].clicks += count

    def forget(self, slug: str) -> None:
        self._entries.pop(slug, None)
        self._loading.pop(slug, None)
