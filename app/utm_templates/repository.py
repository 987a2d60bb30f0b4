"""The UTM templates' queries."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal
from app.core.tables import UtmTemplate


async def named(
    session: AsyncSession, workspace_id: int, names: Iterable[str]
) -> dict[str, UtmTemplate]:
    """The workspace's templates of the given names, by name (one query)."""
    wanted = set(names)
    if not wanted:
        return {}
    query = select(UtmTemplate).where(
        UtmTemplate.workspace_id == workspace_id, UtmTemplate.name.in_(wanted)
    )
    return {template.name: template for template in await session.scalars(query)}


async def of_workspace(session: AsyncSession, workspace_id: int) -> list[UtmTemplate]:
    """The workspace's templates, by name (code point order, as `visible`)."""
    query = select(UtmTemplate).where(UtmTemplate.workspace_id == workspace_id)
    return sorted(await session.scalars(query), key=lambda template: template.name)


async def find(session: AsyncSession, principal: Principal, name: str) -> list[UtmTemplate]:
    """The templates of `name` the caller sees: one at most, but for admin, who sees every
    workspace's (its own first)."""
    own = UtmTemplate.workspace_id == principal.workspace_id
    query = (
        select(UtmTemplate)
        .where(*principal.sees(UtmTemplate), UtmTemplate.name == name)
        .order_by(own.desc(), UtmTemplate.workspace_id)
    )
    return list(await session.scalars(query))


async def visible(session: AsyncSession, principal: Principal) -> list[UtmTemplate]:
    """The templates the caller sees, by name as Python orders text (by code point): the
    database's order would follow its collation, so `Ads` and `ads` would swap between
    SQLite and a PostgreSQL in en_US. The list is not paged: templates are few."""
    templates = await session.scalars(select(UtmTemplate).where(*principal.sees(UtmTemplate)))
    return sorted(templates, key=lambda template: (template.name, template.workspace_id))
