"""The in-process link cache: what the redirect needs of a link, read from the database
only on a miss. Changes made through this process are forgotten at once; changes made by
other processes are seen within `TAUTAN_LINK_CACHE_TTL_S`. The one exception is a link's
`max_clicks`, counted in the database itself (`take_slot`) so that every process keeps to it."""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import raiseload

from app.db import SQLITE_BUSY_TIMEOUT_S, after_commit
from app.links.models import Link
from app.links.service import destination

log = logging.getLogger(__name__)
UNKNOWN_TTL_S = 5.0  # unknown slugs are remembered briefly, so probing them stays cheap
# Slots taken at once. Takers of one link queue on its row anyway (and on SQLite on the one
# write lock): more at once would only hold more pooled connections while they wait, and
# leave none for reading the links of other redirects.
SLOT_TAKERS = 4
MAX_ENTRIES = 100_000
LINKS = Link.__table__
# One slot of a capped link's max_clicks, taken only while one is left. The condition is
# evaluated in the database, which serialises concurrent takers on the row, so no process
# can overshoot, and a max_clicks changed by any process applies at once. A link whose cap
# was removed meanwhile always has a slot. A served click is not an edit: updated_at stays.
TAKE_SLOT = (
    update(LINKS)
    .where(
        LINKS.c.id == bindparam("link_id"),
        or_(LINKS.c.max_clicks.is_(None), LINKS.c.served_clicks < LINKS.c.max_clicks),
    )
    .values(served_clicks=LINKS.c.served_clicks + 1, updated_at=LINKS.c.updated_at)
    .returning(LINKS.c.served_clicks, LINKS.c.max_clicks)
)


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
    exhausted: bool  # every max_clicks slot taken, as far as this process knows
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
            link.max_clicks is not None and link.served_clicks >= link.max_clicks,
            link.fallback_url,
            preview_page(link, to),
        )

    def is_live(self, now: datetime) -> bool:
        if self.starts_at and now < self.starts_at:
            return False
        if self.expires_at and now >= self.expires_at:
            return False
        return not self.exhausted


def preview_page(link: Link, to: str) -> bytes | None:
    """A page with the link's Open Graph and Twitter Card tags, which sends a person who
    opens it on to `to` (unless the link has a max_clicks: then the destination is given
    only with a slot); None when the link sets none of them."""
    if not (link.og_title or link.og_description or link.og_image):
        return None
    tags = []
    for name, value in (("title", link.og_title), ("description", link.og_description),
                        ("image", link.og_image)):  # fmt: skip
        if value:
            tags.append(f'<meta property="og:{name}" content="{escape(value)}">')
            tags.append(f'<meta name="twitter:{name}" content="{escape(value)}">')
    card = "summary_large_image" if link.og_image else "summary"
    title = escape(link.og_title or link.title or link.slug)
    onward = "" if link.max_clicks is not None else escape(to)
    refresh = f'<meta http-equiv="refresh" content="0; url={onward}">' if onward else ""
    body = f'<a href="{onward}">{title}</a>' if onward else title
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
        f'{"".join(tags)}<meta name="twitter:card" content="{card}">{refresh}</head>'
        f"<body>{body}</body></html>"
    ).encode()


class LinkCache:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessionmaker = sessionmaker
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Target | None]] = {}
        self._loading: dict[str, asyncio.Future[Target | None]] = {}
        self._slot_takers = asyncio.Semaphore(SLOT_TAKERS)

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
            target = await self._load_or_keep(slug, entry)
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

    async def _load_or_keep(
        self, slug: str, expired: tuple[float, Target | None] | None
    ) -> Target | None:
        """The link as read now; while the database cannot answer, as last read (kept for
        another TTL: cached links keep being served during an outage, DESIGN §1)."""
        try:
            return await self._load(slug)
        except Exception as exc:
            if expired is None:
                raise
            log.warning("link %r served as cached: the database did not answer (%r)", slug, exc)
            return expired[1]

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
            del self._entries[next(iter(self._entries))]  # the oldest: dicts keep insertion order
        ttl = self._ttl_s if target is not None else min(self._ttl_s, UNKNOWN_TTL_S)
        self._entries[slug] = (time.monotonic() + ttl, target)

    async def take_slot(self, target: Target) -> bool:
        """Count one click toward the capped link's max_clicks in the database: True when a
        slot was left, else False. Once none is left, the link is known exhausted until it
        is reloaded. Raises when the database cannot answer."""
        # Waiting for a turn is bounded as waiting for the lock is: past it, the click is
        # refused, as it would have been with a turn.
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_S):
            await self._slot_takers.acquire()
        try:
            async with self._sessionmaker.begin() as session:
                # A lone UPDATE: on SQLite this read-only session's deferred BEGIN takes the
                # write lock at the UPDATE itself, waiting for it as any writer does.
                taken = (await session.execute(TAKE_SLOT, {"link_id": target.link_id})).first()
        finally:
            self._slot_takers.release()
        if taken is None:
            target.exhausted = True
            return False
        served, max_clicks = taken
        target.exhausted = max_clicks is not None and served >= max_clicks
        return True

    def forget_after_commit(self, session: AsyncSession, slug: str) -> None:
        """Drop the slug once `session`'s change to it is committed (a created slug may be
        remembered as unknown; a changed one as it was)."""
        after_commit(session, lambda: self.forget(slug))

    def forget(self, slug: str) -> None:
        self._entries.pop(slug, None)
        self._loading.pop(slug, None)
