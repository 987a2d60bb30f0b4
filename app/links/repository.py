"""The links' queries: what the caller sees of them, found, counted and paged. The rules
(what may be created or changed, and how) are app/links/service.py's."""

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal
from app.core.tables import Link, LinkTag

# What a page of links may be sorted by (largest first; `created`: newest first).
SORTS = {"created": Link.id, "clicks": Link.clicks, "unique_visitors": Link.unique_visitors,
         "bot_clicks": Link.bot_clicks}  # fmt: skip


async def find(
    session: AsyncSession, principal: Principal, slug: str, domain: str = ""
) -> Link | None:
    """The link of `slug` on `domain` ("" for the base host), if the caller sees it."""
    query = select(Link).where(*principal.sees(Link), Link.domain == domain, Link.slug == slug)
    return await session.scalar(query)


async def slug_taken(session: AsyncSession, domain: str, slug: str) -> bool:
    """Whether any link, in any workspace, has `slug` on `domain`."""
    taken = exists().where(Link.domain == domain, Link.slug == slug)
    return bool(await session.scalar(select(taken)))


async def count(session: AsyncSession, principal: Principal) -> int:
    """How many links (active and archived) the caller sees."""
    query = select(func.count()).select_from(Link).where(*principal.sees(Link))
    return await session.scalar(query) or 0


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    q: str | None,
    tag: str | None,
    utm_campaign: str | None,
    domain: str | None = None,
    archived: bool,
    sort: str,
    after: tuple[int, int] | None,
    limit: int,
) -> list[Link]:
    """Up to `limit` links the caller sees, largest `sort` first, ties newest first,
    starting after the (sort value, link id) position `after`."""
    query = (
        select(Link)
        .where(*principal.sees(Link))
        .where(Link.archived_at.is_not(None) if archived else Link.archived_at.is_(None))
    )
    if q:
        query = query.where(
            or_(*(col.icontains(q, autoescape=True) for col in (Link.slug, Link.url, Link.title)))
        )
    if tag:
        query = query.where(Link.tag_rows.any(LinkTag.tag == tag))
    if utm_campaign:
        query = query.where(Link.utm_campaign == utm_campaign)
    if domain is not None:
        query = query.where(Link.domain == domain)
    column = SORTS[sort]
    if after is not None:
        value, link_id = after
        query = query.where(or_(column < value, and_(column == value, Link.id < link_id)))
    query = query.order_by(column.desc(), Link.id.desc()).limit(limit)
    return list(await session.scalars(query))
