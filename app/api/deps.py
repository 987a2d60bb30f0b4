"""What routes depend on, typed: the app's parts (`State`), the request's database sessions,
and the write rate limits (`writes_of`; the caller's key itself: app/auth.py). The only
module that reads `app.state`, and the only one that opens or commits a session while a
request is served: services take the session they are given.

- `WriteSession`: one transaction for the request, committed when the route returns
  (before the response is sent, so a client that gets 201 can follow the short URL at
  once), rolled back if it raises. Effects of a commit, such as forgetting a changed link
  in the redirect's cache, follow the commit by themselves (`core.database.on_commit`).
- `ReadSession`: reads only, from the primary without taking SQLite's write lock;
  `StatsSession` the same from the stats replica (TAUTAN_READ_DATABASE_URL) when there is
  one. Nothing is committed; both last until the response is sent, so that a streamed
  response reads as it goes.
- `key_session()`: a key or a dashboard session is looked up in a short transaction of its
  own on the primary, never on a replica, which may not have seen a revocation yet; it
  also notes the key's last use.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clickhouse.client import ClickHouse
from app.clicks.log import ClickLog
from app.clicks.retention import RetentionTask
from app.config import Settings
from app.core.principal import Principal
from app.links.service import LinkContext
from app.metrics import Metrics
from app.ratelimit import RateLimiter
from app.redirect.cache import LinkCache
from app.secret_key import SecretKey
from app.stats.service import Reads, reads_for


@dataclass(frozen=True)
class AppState:
    """The parts of a running app, made once by `create_app`."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]  # the primary, for writes
    read_sessionmaker: async_sessionmaker[AsyncSession]  # the primary, deferred: for reads
    stats_sessionmaker: async_sessionmaker[AsyncSession]  # the stats replica, if any
    link_cache: LinkCache
    link_context: LinkContext
    rate_limiter: RateLimiter
    click_log: ClickLog
    metrics: Metrics
    secret_key: SecretKey
    retention: RetentionTask
    clickhouse: ClickHouse | None  # the click store, if not the SQL database


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.tautan
    return state


State = Annotated[AppState, Depends(app_state)]


async def write_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def read_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state.read_sessionmaker() as session:
        yield session


async def stats_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state.stats_sessionmaker() as session:
        yield session


# scope="function": the write session ends when the route returns, before the response is
# sent; read sessions end once it is sent.
WriteSession = Annotated[AsyncSession, Depends(write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(read_session)]
StatsSession = Annotated[AsyncSession, Depends(stats_session)]


def stats_reads(state: State, session: StatsSession) -> Reads:
    """The click store's reads for the stats (ClickHouse's, or the SQL database's)."""
    return reads_for(session, state.clickhouse)


StatsReads = Annotated[Reads, Depends(stats_reads)]


def link_context(state: State) -> LinkContext:
    return state.link_context


ShortUrls = Annotated[LinkContext, Depends(link_context)]


@asynccontextmanager
async def key_session(state: AppState) -> AsyncIterator[AsyncSession]:
    """A transaction on the primary for authentication, committed at the end."""
    async with state.sessionmaker.begin() as session:
        yield session


async def limit_client_writes(request: Request, state: State) -> None:
    """Count a write of the request's client; 429 past TAUTAN_WRITE_RATE_LIMIT_PER_IP."""
    await state.rate_limiter.hit_client(request)


def writes_of(
    caller: Callable[..., Awaitable[Principal]],
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the principal `caller` gives, with one write counted against the
    request's client (before the caller is checked, so that guessing keys through writes
    is limited too) and against its key or user. Every write route, API or dashboard, goes
    through it."""

    async def dependency(
        state: State,
        _: Annotated[None, Depends(limit_client_writes)],
        principal: Annotated[Principal, Depends(caller)],
    ) -> Principal:
        await state.rate_limiter.hit_caller(principal)
        return principal

    return dependency
