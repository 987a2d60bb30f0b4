"""Rows for the database tier, added in the test's own transaction."""

from datetime import datetime
from itertools import count
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.tables import Click, Link, LinkTag, Workspace

_numbers = count()


async def add_workspace(session: AsyncSession, name: str) -> int:
    workspace = Workspace(name=name)
    session.add(workspace)
    await session.flush()
    return workspace.id


async def add_link(
    session: AsyncSession,
    workspace_id: int,
    slug: str,
    *,
    tags: tuple[str, ...] = (),
    **columns: Any,
) -> Link:
    columns.setdefault("url", f"https://shop.example/{slug}")
    link = Link(workspace_id=workspace_id, slug=slug, **columns)
    link.tag_rows = [LinkTag(tag=tag) for tag in tags]
    session.add(link)
    await session.flush()
    return link


async def add_click(session: AsyncSession, link: Link, ts: datetime, **columns: Any) -> None:
    """A click of `link` at `ts`: a person's desktop visit, a new visitor, unless told."""
    values = {"visitor_id": f"v{next(_numbers)}", "new_visitor": True, "is_bot": False,
              "device_type": "desktop", "referrer_source": "direct", "trigger": "link"}  # fmt: skip
    session.add(Click(link_id=link.id, workspace_id=link.workspace_id, ts=ts, **values | columns))
    await session.flush()
