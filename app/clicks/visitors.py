"""Visitor ids: a keyed hash of (IP, User-Agent) under a salt that changes every UTC day,
itself keyed with the instance secret. The same person counts once a day; after the salt
is deleted (two days on) nobody, us included, can tell from a visitor id who it was; with
TAUTAN_SECRET_KEY set (rather than generated and kept in the database), a copy of the
database alone never could."""

import hashlib
import secrets
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clicks.models import Click, VisitorSalt
from app.db import upsert_insert
from app.secret_key import SecretKey

KEEP_DAYS = 2
LOOKUP_SLICE = 5000  # visitor ids per query (asyncpg takes at most 32,767 parameters)
NEW_VISITORS_LOCK = 0x7461_7574_7669  # "tautvi": one click writer at a time marks new visitors


def visitor_id(salt: bytes, ip: str, user_agent: str) -> str:
    return hashlib.blake2b(f"{ip}\n{user_agent}".encode(), key=salt, digest_size=16).hexdigest()


class Salts:
    """The daily salts, shared by every process through the database, remembered here."""

    def __init__(self, secret: SecretKey) -> None:
        self._secret = secret
        self._known: dict[date, bytes] = {}

    async def of(self, sessionmaker: async_sessionmaker[AsyncSession], day: date) -> bytes:
        salt = self._known.get(day)
        if salt is None:
            key = hashlib.sha256((await self._secret.get()).encode()).digest()
            async with sessionmaker() as session, session.begin():
                stored = await self._fetch(session, day)
            salt = hashlib.blake2b(stored, key=key, digest_size=32).digest()
            self._known = {d: s for d, s in self._known.items() if d >= day - timedelta(KEEP_DAYS)}
            self._known[day] = salt
        return salt

    async def _fetch(self, session: AsyncSession, day: date) -> bytes:
        created = await session.execute(
            upsert_insert(session, VisitorSalt)
            .values(day=day, salt=secrets.token_bytes(32))
            .on_conflict_do_nothing(index_elements=["day"])
        )
        if created.rowcount:  # a new day: the salts of days past their keep are deleted
            await session.execute(
                delete(VisitorSalt).where(VisitorSalt.day < day - timedelta(KEEP_DAYS))
            )
        salt = await session.scalar(select(VisitorSalt.salt).where(VisitorSalt.day == day))
        assert salt is not None
        return salt


async def mark_new_visitors(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Set `new_visitor` on each click row: True for a visitor's first click on a link in
    its UTC day. Visitor ids of different days never collide (the salt differs), so
    looking the ids up is enough to find today's earlier clicks; the day bound only lets
    PostgreSQL skip the other months' partitions."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Under READ COMMITTED two writers would not see each other's uncommitted clicks
        # and would both count the visitor. Held until commit, so the next writer's lookup
        # sees these clicks. (SQLite's BEGIN IMMEDIATE already serialises the writers.)
        await session.execute(select(func.pg_advisory_xact_lock(NEW_VISITORS_LOCK)))
    ids = sorted({row["visitor_id"] for row in rows})
    first_day = min(row["ts"] for row in rows).replace(hour=0, minute=0, second=0, microsecond=0)
    seen = set()
    for start in range(0, len(ids), LOOKUP_SLICE):  # bound the bound parameters
        chunk = ids[start : start + LOOKUP_SLICE]
        query = (
            select(Click.link_id, Click.visitor_id)
            .where(Click.visitor_id.in_(chunk), Click.ts >= first_day)
            .distinct()
        )
        seen |= {(link_id, visitor) for link_id, visitor in await session.execute(query)}
    for row in rows:
        key = (row["link_id"], row["visitor_id"])
        row["new_visitor"] = key not in seen
        seen.add(key)
