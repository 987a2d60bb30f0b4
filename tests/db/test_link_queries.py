"""The links' queries (app/links/repository.py) on both databases: what a caller sees,
and pages that follow their sort without losing or repeating a link."""

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal
from app.links import repository
from tests.db.rows import add_link, add_workspace

pytestmark = pytest.mark.anyio  # async tests, run on asyncio (conftest)

ADMIN = Principal.operator()


def member(workspace_id: int) -> Principal:
    return Principal(key_id=1, workspace_id=workspace_id, scopes=frozenset({"links:read"}))


async def page(session: AsyncSession, principal: Principal, **options: object) -> list[str]:
    arguments = {"q": None, "tag": None, "utm_campaign": None, "archived": False,
                 "sort": "created", "after": None, "limit": 100} | options  # fmt: skip
    return [link.slug for link in await repository.page(session, principal, **arguments)]  # type: ignore[arg-type]


async def test_a_caller_sees_its_workspaces_links_and_admin_sees_all(session: AsyncSession) -> None:
    shop, cafe = await add_workspace(session, "shop"), await add_workspace(session, "cafe")
    await add_link(session, shop, "sale")
    await add_link(session, shop, "old", archived_at=datetime(2026, 1, 1, tzinfo=UTC))
    await add_link(session, cafe, "menu")

    assert await repository.find(session, member(shop), "sale") is not None
    assert await repository.find(session, member(shop), "menu") is None
    assert await repository.find(session, ADMIN, "menu") is not None
    # A slug on the base host is taken whoever holds it: one namespace for every workspace.
    assert await repository.slug_taken(session, "", "menu")
    assert not await repository.slug_taken(session, "", "nothing")
    # On a branded domain, a namespace of the domain's own.
    assert not await repository.slug_taken(session, "go.cafe.test", "menu")
    assert await repository.count(session, member(shop)) == 2  # archived ones included
    assert await repository.count(session, member(cafe)) == 1
    assert await page(session, member(shop)) == ["sale"]
    assert await page(session, member(shop), archived=True) == ["old"]
    assert set(await page(session, ADMIN)) >= {"sale", "menu"}


async def test_pages_follow_the_sort_and_break_ties_newest_first(session: AsyncSession) -> None:
    shop = await add_workspace(session, "shop")
    clicks = {"a": 5, "b": 9, "c": 5, "d": 0, "e": 5, "f": 9}
    ids = {slug: (await add_link(session, shop, slug, clicks=n)).id for slug, n in clicks.items()}
    expected = sorted(clicks, key=lambda slug: (-clicks[slug], -ids[slug]))

    seen: list[str] = []
    after = None
    while chunk := await page(session, member(shop), sort="clicks", after=after, limit=2):
        seen += chunk
        after = (clicks[chunk[-1]], ids[chunk[-1]])
    assert seen == expected == ["f", "b", "e", "c", "a", "d"]


async def test_search_takes_its_text_literally_and_filters_combine(session: AsyncSession) -> None:
    shop = await add_workspace(session, "shop")
    await add_link(session, shop, "half", title="50% off", tags=("promo",), utm_campaign="june")
    await add_link(session, shop, "big", title="500 shoes", tags=("promo",), utm_campaign="july")
    await add_link(session, shop, "under_score", url="https://shop.example/a_b")
    await add_link(session, shop, "plain", url="https://shop.example/axb")

    assert await page(session, member(shop), q="50%") == ["half"]  # % is no wildcard
    assert await page(session, member(shop), q="a_b") == ["under_score"]  # nor is _
    assert await page(session, member(shop), q="HALF") == ["half"]  # any case
    assert set(await page(session, member(shop), tag="promo")) == {"half", "big"}
    assert await page(session, member(shop), tag="promo", utm_campaign="july") == ["big"]
    assert await page(session, member(shop), tag="nothing") == []
