"""The stats queries (app/stats/repository.py) on raw clicks, on both databases: which
clicks a scope counts, how its filters match, and the time slots they fall in."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError
from app.core.principal import Principal
from app.stats import repository
from app.stats.repository import Match, Scope, StatsQuery
from tests.db.rows import add_click, add_link, add_workspace

pytestmark = pytest.mark.anyio  # async tests, run on asyncio (conftest)

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=7)


def scope_of(principal: Principal, **filters: object) -> Scope:
    return Scope(principal, StatsQuery(START, END, ZoneInfo("UTC"), **filters))  # type: ignore[arg-type]


def member(workspace_id: int) -> Principal:
    return Principal(key_id=1, workspace_id=workspace_id, scopes=frozenset({"stats:read"}))


async def devices(session: AsyncSession, scope: Scope) -> dict[str, tuple[int, int]]:
    rows = await repository.SqlReads(session).per_value(scope, "device_type", days=False)
    return {value: (clicks, visitors) for value, clicks, visitors in rows}


async def test_a_scope_counts_its_callers_clicks_in_range_and_people_only(
    session: AsyncSession,
) -> None:
    shop, cafe = await add_workspace(session, "shop"), await add_workspace(session, "cafe")
    sale, menu = await add_link(session, shop, "sale"), await add_link(session, cafe, "menu")
    inside = START + timedelta(days=1)
    await add_click(session, sale, inside, device_type="mobile")
    await add_click(session, sale, inside, device_type="mobile", new_visitor=False)
    await add_click(session, sale, inside, is_bot=True, device_type="bot")
    await add_click(session, sale, START - timedelta(seconds=1))  # before the range
    await add_click(session, sale, END)  # the end is not in it
    await add_click(session, sale, START)  # the start is
    await add_click(session, menu, inside)

    assert await devices(session, scope_of(member(shop))) == {"mobile": (2, 1), "desktop": (1, 1)}
    assert await devices(session, scope_of(member(shop), include_bots=True)) == {
        "mobile": (2, 1), "desktop": (1, 1), "bot": (1, 1)}  # fmt: skip
    assert await devices(session, scope_of(member(cafe))) == {"desktop": (1, 1)}
    assert await devices(session, scope_of(Principal.operator())) == {
        "mobile": (2, 1), "desktop": (2, 2)}  # fmt: skip


async def test_filters_match_links_and_clicks_and_exclusions_keep_unknowns(
    session: AsyncSession,
) -> None:
    shop = await add_workspace(session, "shop")
    promo = await add_link(session, shop, "promo", tags=("promo",), utm_campaign="june")
    plain = await add_link(session, shop, "plain")
    inside = START + timedelta(hours=5)
    await add_click(session, promo, inside, country="ID")
    await add_click(session, promo, inside, country="MY", device_type="mobile")
    await add_click(session, plain, inside)  # no country known

    async def clicks(**filters: object) -> int:
        found = await devices(session, scope_of(member(shop), **filters))
        return sum(clicks for clicks, _ in found.values())

    assert await clicks(tag=Match.parse("promo")) == 2
    assert await clicks(tag=Match.parse("-promo")) == 1
    assert await clicks(utm_campaign=Match.parse("june,july")) == 2
    assert await clicks(links=(("", "plain"),)) == 1
    assert await clicks(attributes=(("country", Match.parse("ID,MY")),)) == 2
    # MY, and the click of no known country
    assert await clicks(attributes=(("country", Match.parse("-ID")),)) == 2
    assert await clicks(attributes=(("device_type", Match.parse("-desktop")),)) == 1


async def test_slots_are_quarter_hours_of_utc(session: AsyncSession) -> None:
    shop = await add_workspace(session, "shop")
    sale = await add_link(session, shop, "sale")
    ten = START + timedelta(hours=10)
    for moment in (ten, ten + timedelta(minutes=14, seconds=59), ten + timedelta(minutes=15)):
        await add_click(session, sale, moment)
    slots = sorted(await repository.SqlReads(session).per_slot(scope_of(member(shop))))
    assert slots == [(ten, 2, 2), (ten + timedelta(minutes=15), 1, 1)]
    first = await repository.SqlReads(session).edge_click(scope_of(member(shop)), last=False)
    last = await repository.SqlReads(session).edge_click(scope_of(member(shop)), last=True)
    assert (first, last) == (ten, ten + timedelta(minutes=15))


async def test_unknown_links_and_other_workspaces_links_are_the_same_404(
    session: AsyncSession,
) -> None:
    shop, cafe = await add_workspace(session, "shop"), await add_workspace(session, "cafe")
    await add_link(session, shop, "sale")
    await add_link(session, cafe, "menu")
    await repository.check_links(session, member(shop), [("", "sale"), ("", "sale")])
    with pytest.raises(AppError) as refused:
        await repository.check_links(
            session, member(shop), [("", "sale"), ("", "menu"), ("", "gone")]
        )
    assert refused.value.status == 404
    assert refused.value.details == {"field": "link", "unknown": ["menu", "gone"]}
    await repository.check_links(session, Principal.operator(), [("", "sale"), ("", "menu")])
