"""What routes depend on, typed: the request's database session (one transaction, committed
when the route returns, then the after-commit effects)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        for callback in session.info.pop("after_commit", []):
            callback()


# scope="function": commit before the response is sent, so a client that gets 201 can
# follow the short URL at once.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
