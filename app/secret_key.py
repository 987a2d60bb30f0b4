"""The instance secret (`TAUTAN_SECRET_KEY`): it signs session cookies and keys the
visitor-id hash. Outside production it may be left unset: one is then generated once and
kept in the database, so every process and every restart shares it."""

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.dialect import upsert_insert
from app.core.tables import InstanceSecret

GENERATED = "secret_key"


async def load_secret_key(
    sessionmaker: async_sessionmaker[AsyncSession], configured: str | None
) -> str:
    """The configured secret, else the one generated for this database (made on first use;
    processes starting at once agree on the first one written)."""
    if configured:
        return configured
    async with sessionmaker() as session, session.begin():
        await session.execute(
            upsert_insert(session, InstanceSecret)
            .values(name=GENERATED, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = await session.scalar(
            select(InstanceSecret.value).where(InstanceSecret.name == GENERATED)
        )
    assert value is not None
    return value


class SecretKey:
    """The instance secret, loaded on first use: the database may be down when the process
    starts, and redirects must not wait for it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], configured: str | None):
        self._sessionmaker, self._configured = sessionmaker, configured
        self._value: str | None = None

    async def get(self) -> str:
        if self._value is None:
            self._value = await load_secret_key(self._sessionmaker, self._configured)
        return self._value
