"""The domains' queries."""

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal
from app.core.tables import Domain, Link, Workspace


async def find(session: AsyncSession, principal: Principal, host: str) -> Domain | None:
    """The domain of `host`, if the caller sees it."""
    query = select(Domain).where(*principal.sees(Domain), Domain.host == host)
    return await session.scalar(query)


async def of_workspace(session: AsyncSession, workspace_id: int, host: str) -> Domain | None:
    query = select(Domain).where(Domain.workspace_id == workspace_id, Domain.host == host)
    return await session.scalar(query)


async def hosts_of_workspace(session: AsyncSession, workspace_id: int) -> list[str]:
    query = select(Domain.host).where(Domain.workspace_id == workspace_id).order_by(Domain.host)
    return list(await session.scalars(query))


async def visible(session: AsyncSession, principal: Principal) -> list[Domain]:
    query = select(Domain).where(*principal.sees(Domain)).order_by(Domain.host)
    return list(await session.scalars(query))


async def registered(session: AsyncSession, hosts: Iterable[str]) -> set[str]:
    """Those of `hosts` that are a registered domain, in any workspace."""
    wanted = set(hosts)
    if not wanted:
        return set()
    return set(await session.scalars(select(Domain.host).where(Domain.host.in_(wanted))))


async def link_counts(
    session: AsyncSession, hosts: list[str], *, archived: bool = True
) -> dict[str, int]:
    """How many links each of `hosts` holds (the archived too, unless told not to)."""
    query = select(Link.domain, func.count()).where(Link.domain.in_(hosts)).group_by(Link.domain)
    if not archived:
        query = query.where(Link.archived_at.is_(None))
    return dict((await session.execute(query)).all())  # type: ignore[arg-type]


async def workspace_names(session: AsyncSession) -> dict[int, str]:
    return dict((await session.execute(select(Workspace.id, Workspace.name))).all())  # type: ignore[arg-type]
