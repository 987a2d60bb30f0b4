"""The database tier: queries run on a migrated database of this tier's own, each test in a
transaction rolled back at its end, so that none sees another's rows and none pays for
clearing the tables (`session`)."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.core.database import create_engine
from tests.support.databases import empty_database


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked `anyio`) run on asyncio, as the app does."""
    return "asyncio"


@pytest.fixture(scope="session")
def queries_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database that only this tier's rolled-back transactions touch."""
    url = empty_database(backend, tmp_path_factory.mktemp("db"), "queries")
    migrate.upgrade(url)
    return url


@pytest.fixture
async def session(queries_url: str) -> AsyncIterator[AsyncSession]:
    """A session whose every commit is a savepoint of one transaction, rolled back after
    the test: what it writes is seen by the test alone, and gone after it."""
    engine = create_engine(queries_url)
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()
    await engine.dispose()
