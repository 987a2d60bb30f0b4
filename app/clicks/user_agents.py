"""The id of each distinct raw User-Agent (with its client hints) that clicks come with:
stored once in `user_agents`, so that `tautan reenrich` can work a click's device fields
out again, and remembered per process, so that a batch asks the database only about the
User-Agents it has not seen yet."""

import hashlib
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clicks.enrich.known_bots import MAX_UA_LENGTH
from app.core.database import execute_many
from app.core.dialect import upsert_insert
from app.core.tables import UserAgent

Key = tuple[str, str]  # (User-Agent cut to MAX_UA_LENGTH, client hints)
IDS_KEPT = 16384
LOOKUP_SLICE = 1000


def key_of(user_agent: str, client_hints: str) -> Key:
    # PostgreSQL cannot store NUL in text; headers are untrusted.
    return user_agent[:MAX_UA_LENGTH].replace("\x00", ""), client_hints[:512].replace("\x00", "")


def digest_of(key: Key) -> str:
    return hashlib.blake2b("\n\n".join(key).encode(), digest_size=16).hexdigest()


class UserAgentIds:
    def __init__(self) -> None:
        self._ids: OrderedDict[Key, int] = OrderedDict()

    async def of(
        self, sessionmaker: async_sessionmaker[AsyncSession], keys: set[Key]
    ) -> dict[Key, int]:
        found = {}
        for key in keys:
            if (known := self._ids.get(key)) is not None:
                self._ids.move_to_end(key)
                found[key] = known
        missing = {digest_of(key): key for key in keys - found.keys()}
        if missing:
            async with sessionmaker() as session, session.begin():
                new = await _store(session, missing)
            for key, id_ in new.items():
                found[key] = self._ids[key] = id_
            while len(self._ids) > IDS_KEPT:
                self._ids.popitem(last=False)
        return found


async def _store(session: AsyncSession, by_digest: dict[str, Key]) -> dict[Key, int]:
    """Insert the User-Agents not stored yet (another process may have just done so), and
    return the ids of all of them."""
    rows = [
        {"digest": digest, "user_agent": ua, "client_hints": hints}
        for digest, (ua, hints) in sorted(by_digest.items())  # in key order: no deadlock
    ]
    insert = upsert_insert(session, UserAgent).on_conflict_do_nothing(index_elements=["digest"])
    await execute_many(session, insert, rows)
    ids = {}
    digests = sorted(by_digest)
    for start in range(0, len(digests), LOOKUP_SLICE):
        chunk = digests[start : start + LOOKUP_SLICE]
        query = select(UserAgent.digest, UserAgent.id).where(UserAgent.digest.in_(chunk))
        for digest, id_ in await session.execute(query):
            ids[by_digest[digest]] = id_
    return ids
