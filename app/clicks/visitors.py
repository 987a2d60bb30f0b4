"""Visitor ids: a keyed hash of (IP, User-Agent) under a salt that changes every UTC day,
itself keyed with the instance secret. The same person counts once a day; after the salt
is deleted (two days on) nobody, us included, can tell from a visitor id who it was; with
TAUTAN_SECRET_KEY set (rather than generated and kept in the database), a copy of the
database alone never could."""

import hashlib
import secrets
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clicks.store.sql import store_for
from app.core.dialect import upsert_insert
from app.core.tables import VisitorDay, VisitorSalt
from app.secret_key import SecretKey

KEEP_DAYS = 2


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
        if created.rowcount:  # a new day: what is kept of days past their keep is deleted
            gone = day - timedelta(KEEP_DAYS)
            await session.execute(delete(VisitorSalt).where(VisitorSalt.day < gone))
            await session.execute(delete(VisitorDay).where(VisitorDay.day < gone))
        salt = await session.scalar(select(VisitorSalt.salt).where(VisitorSalt.day == day))
        assert salt is not None
        return salt


async def mark_new_visitors(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Set `new_visitor` on each click row: True for a visitor's first click on a link in
    its UTC day. The (link, day, visitor) keys of the batch are inserted where missing;
    those inserted are the new ones. Another writer inserting the same key meanwhile waits
    for this transaction (or this one for it), so a visitor counts once however many
    writers run."""
    first: dict[tuple[int, date, str], dict[str, Any]] = {}
    for row in rows:
        row["new_visitor"] = False
        first.setdefault((row["link_id"], row["ts"].date(), row["visitor_id"]), row)
    for key in await store_for(session).insert_visitors(session, sorted(first)):
        first[key]["new_visitor"] = True
