"""The in-process link cache: what the redirect needs of a link, read from the database
only on a miss. Changes made through this process are forgotten at once; changes made by
other processes are seen within `TAUTAN_LINK_CACHE_TTL_S`. The one exception is a link's
`max_clicks`, counted in the database itself (`take_slot`) so that every process keeps to it."""

import asyncio
import logging
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import raiseload

from app.core.database import SQLITE_BUSY_TIMEOUT_S, on_commit
from app.core.slugs import SLUG_PATTERN
from app.core.tables import UTM_FIELDS, Link
from app.core.urls import merge_utm
from app.redirect.targeting import Targeting

log = logging.getLogger(__name__)
# Links kept: every link a process serves often, many times over (a Target is well under a
# kilobyte, its preview page aside). And at most MAX_LINK_BYTES of them: a link may carry a
# 4 KB destination, a 4 KB fallback and a preview page of several, so the count alone would
# allow a gigabyte or more.
MAX_LINKS = 100_000
MAX_LINK_BYTES = 64 * 1024 * 1024
TARGET_OVERHEAD = 400  # bytes of a Target and its Entry besides their strings (CPython 3.11)
# Unknown slugs kept, for UNKNOWN_TTL_S each: a flood of up to 2,000 distinct slugs a second
# reads each of them once; past that they push out one another, never a link (a few MB).
MAX_UNKNOWN = 10_000
UNKNOWN_TTL_S = 5.0  # unknown slugs are remembered briefly, so probing them stays cheap
# Misses are read in batches of up to BATCH slugs, READERS batches at a time: a flood takes
# at most READERS pooled connections, and leaves the others to the API and the click writer.
BATCH = 128
READERS = 4
SLUG = re.compile(SLUG_PATTERN)  # what a slug can be: any other path is unknown, unread
# Slots taken at once. Takers of one link queue on its row anyway (and on SQLite on the one
# write lock): more at once would only hold more pooled connections while they wait, and
# leave none for reading the links of other redirects.
SLOT_TAKERS = 4
LINKS = Link.__table__
READ = (
    select(Link)
    .where(
        Link.domain == bindparam("domain"),
        Link.slug.in_(bindparam("slugs", expanding=True)),
        Link.archived_at.is_(None),
    )
    .options(raiseload(Link.tag_rows))
)


def link_key(domain: str, slug: str) -> str:
    """What the cache knows a link by: its slug on the base host, `domain/slug` on a
    branded domain (a slug has no `/`)."""
    return f"{domain}/{slug}" if domain else slug


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
    targeting: Targeting | None  # when the link has rules or variants
    password_hash: str | None  # when visitors must give a password

    @property
    def weight(self) -> int:
        """About the bytes it holds, for the cache's bound."""
        return (
            TARGET_OVERHEAD
            + len(self.location)
            + len(self.fragment)
            + len(self.fallback_url or "")
            + len(self.preview_page or b"")
            + (self.targeting.weight if self.targeting else 0)
            + len(self.password_hash or "")
        )

    @classmethod
    def of(cls, link: Link) -> "Target":
        utm = {name: getattr(link, name) for name in UTM_FIELDS}
        to = merge_utm(link.url, utm)
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
            Targeting.of(link.rules, link.variants, lambda url: merge_utm(url, utm)),
            link.password_hash,
        )

    def is_live(self, now: datetime) -> bool:
        if self.starts_at and now < self.starts_at:
            return False
        if self.expires_at and now >= self.expires_at:
            return False
        return not self.exhausted


def preview_page(link: Link, to: str) -> bytes | None:
    """A page with the link's Open Graph and Twitter Card tags, which sends a person who
    opens it on to `to` (unless the link has a max_clicks or a password: then the
    destination is given only with a slot, or the password); None when the link sets none
    of them."""
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
    onward = "" if link.max_clicks is not None or link.password_hash else escape(to)
    refresh = f'<meta http-equiv="refresh" content="0; url={onward}">' if onward else ""
    body = f'<a href="{onward}">{title}</a>' if onward else title
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
        f'{"".join(tags)}<meta name="twitter:card" content="{card}">{refresh}</head>'
        f"<body>{body}</body></html>"
    ).encode()


@dataclass(slots=True)
class Entry:
    fresh_until: float  # time.monotonic() until which the link is served without a read
    target: Target
    used: bool = False  # since it was stored, or since its last second chance


# A slug waiting to be read: the future its requests wait on, and what an outage serves
# instead (the entry found expired; None when there was none).
Wanted = tuple[str, asyncio.Future[Target | None], tuple[Target | None] | None]


class LinkCache:
    """Links by key (`link_key`: the slug, with its branded domain if any), and unknown keys
    apart: a flood of slugs that lead nowhere (a scan, a typo spreading) can only push out
    other unknown slugs, never a link. Full, the links
    make room by use (CLOCK, "second chance"): the oldest link not used since it was stored
    or last spared goes, a link used meanwhile goes to the back, flag cleared. A hit only
    sets that flag: nothing moves on the redirect's path. Unknown slugs go least recently
    used first. Misses are read in batches: every slug missed meanwhile goes into the next
    read, so a flood of unknown slugs costs a query per batch, not a query (and a pooled
    connection) per slug."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ttl_s: float,
        *,
        max_links: int = MAX_LINKS,
        max_bytes: int = MAX_LINK_BYTES,
        max_unknown: int = MAX_UNKNOWN,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ttl_s = ttl_s
        self._unknown_ttl_s = min(ttl_s, UNKNOWN_TTL_S)
        self._max_links, self._max_bytes = max_links, max_bytes
        self._bytes = 0  # the weight of the links kept
        self._max_unknown = max_unknown
        # Oldest first. Entries past their TTL stay until pushed out: they are what an outage
        # serves (see _read_batch).
        self._links: OrderedDict[str, Entry] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # slug -> unknown until
        self._loading: dict[str, asyncio.Future[Target | None]] = {}
        self._wanted: deque[Wanted] = deque()
        self._readers = 0
        self._reader_tasks: set[asyncio.Task[None]] = set()
        self._slot_takers = asyncio.Semaphore(SLOT_TAKERS)
        # A read is one SELECT: on PostgreSQL it needs no BEGIN and ROLLBACK around it. That
        # saves two round trips of six; the pool's pre-ping takes three of the four left.
        bind = sessionmaker.kw.get("bind")
        postgresql = bind is not None and bind.dialect.name == "postgresql"
        self._read_options = {"isolation_level": "AUTOCOMMIT"} if postgresql else {}

    async def get(self, slug: str) -> Target | None:
        """The link of a `link_key`, None when there is none."""
        entry = self._links.get(slug)
        if entry is not None and entry.fresh_until > time.monotonic():
            entry.used = True
            return entry.target
        return await self._miss(slug, entry)

    async def _miss(self, slug: str, entry: Entry | None) -> Target | None:
        kept: tuple[Target | None] | None = None  # what an outage serves instead
        if entry is not None:
            kept = (entry.target,)
        else:
            unknown_until = self._unknown.get(slug)
            if unknown_until is not None:
                if unknown_until > time.monotonic():
                    self._unknown.move_to_end(slug)
                    return None
                kept = (None,)
            elif SLUG.fullmatch(slug.rpartition("/")[2]) is None:
                return None  # no link can have it: nothing to read, nothing to remember
        # One database read per slug however many requests miss at once.
        pending = self._loading.get(slug)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[slug] = pending
            self._wanted.append((slug, pending, kept))
            if self._readers < READERS:
                self._readers += 1
                task = asyncio.create_task(self._read_wanted())
                self._reader_tasks.add(task)
                task.add_done_callback(self._reader_tasks.discard)
        return await asyncio.shield(pending)

    async def _read_wanted(self) -> None:
        """Read the wanted slugs, a batch at a time, until none is left."""
        try:
            while self._wanted:
                count = min(len(self._wanted), BATCH)
                await self._read_batch([self._wanted.popleft() for _ in range(count)])
        finally:
            self._readers -= 1  # in the step that found nothing wanted: no slug is left behind

    async def _read_batch(self, batch: list[Wanted]) -> None:
        try:
            found = await self._read({slug for slug, _, _ in batch})
        except Exception as exc:
            self._keep_or_fail(batch, exc)
            return
        except BaseException:
            for slug, future, _ in batch:
                self._done(slug, future)
                future.cancel()
            raise
        for slug, future, _ in batch:
            self._answer(slug, future, found.get(slug))

    def _keep_or_fail(self, batch: list[Wanted], error: Exception) -> None:
        """While the database cannot answer, a slug is answered as it was last read (and kept
        for another TTL: cached links keep being served during an outage); one not
        cached gets the error."""
        kept_count = 0
        for slug, future, kept in batch:
            if kept is None:
                self._done(slug, future)
                future.set_exception(error)
                future.exception()  # mark retrieved: waiters (if any) get it, no warning else
            else:
                kept_count += 1
                self._answer(slug, future, kept[0])
        if kept_count:
            log.warning(
                "%d slugs served as cached: the database did not answer (%r)", kept_count, error
            )

    def _answer(
        self, slug: str, future: asyncio.Future[Target | None], target: Target | None
    ) -> None:
        if self._done(slug, future):  # else forget() ran meanwhile: what was read may be stale
            self._store(slug, target)
        future.set_result(target)

    def _done(self, slug: str, future: asyncio.Future[Target | None]) -> bool:
        """No longer loading `slug`; True unless forget() ran since `future` was made."""
        if self._loading.get(slug) is future:
            del self._loading[slug]
            return True
        return False

    async def _read(self, keys: set[str]) -> dict[str, Target]:
        """The links of `keys`: a query per domain among them (mostly one)."""
        by_domain: dict[str, list[str]] = {}
        for key in keys:
            domain, _, slug = key.rpartition("/")
            by_domain.setdefault(domain, []).append(slug)
        found = {}
        async with self._sessionmaker() as session:
            if self._read_options:
                await session.connection(execution_options=self._read_options)
            for domain, slugs in by_domain.items():
                links = await session.scalars(READ, {"domain": domain, "slugs": slugs})
                found.update((link_key(domain, link.slug), Target.of(link)) for link in links)
        return found

    def _store(self, slug: str, target: Target | None) -> None:
        if target is None:
            self._drop(slug)
            self._unknown[slug] = time.monotonic() + self._unknown_ttl_s
            self._unknown.move_to_end(slug)
            if len(self._unknown) > self._max_unknown:
                self._unknown.popitem(last=False)
        else:
            self._unknown.pop(slug, None)
            fresh_until = time.monotonic() + self._ttl_s
            entry = self._links.get(slug)
            if entry is not None:  # read again: it keeps its place, and counts as used
                self._bytes += target.weight - entry.target.weight
                entry.fresh_until, entry.target, entry.used = fresh_until, target, True
                return
            while self._links and (
                len(self._links) >= self._max_links or self._bytes + target.weight > self._max_bytes
            ):
                self._make_room()
            self._links[slug] = Entry(fresh_until, target)
            self._bytes += target.weight

    def _make_room(self) -> None:
        """Drop the oldest link not used since it was stored or last spared."""
        while True:
            slug, entry = self._links.popitem(last=False)
            if not entry.used:
                self._bytes -= entry.target.weight
                return
            entry.used = False  # a second chance, at the back
            self._links[slug] = entry

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

    def _drop(self, slug: str) -> None:
        if (entry := self._links.pop(slug, None)) is not None:
            self._bytes -= entry.target.weight

    def watch(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Forget each link a session of `sessionmaker` creates, changes or deletes, once
        that is committed (a created slug may be remembered as unknown; a changed one as it
        was)."""
        on_commit(sessionmaker, Link, lambda link: link_key(link.domain, link.slug), self.forget)

    def forget(self, slug: str) -> None:
        self._drop(slug)
        self._unknown.pop(slug, None)
        self._loading.pop(slug, None)
