"""What the link page shows besides any analytics view's: which breakdowns in which order,
where the link was shared, as told by the link-preview fetchers that came for it, and how
its rules and variants compare."""

import dataclasses
from collections import Counter
from typing import Any

from app.clicks.enrich.known_bots import PREVIEW_FETCHERS
from app.core.principal import Principal
from app.core.tables import UTM_FIELDS
from app.core.urls import merge_utm
from app.dashboard import analytics
from app.dashboard.analytics import View
from app.links.schemas import LinkOut, RuleOut
from app.stats import service as stats
from app.stats.repository import Scope, StatsQuery

BREAKDOWNS = (
    ("country", "Country"),
    ("city", "City"),
    ("device_type", "Device type"),
    ("device_brand", "Phone brand"),
    ("device_model", "Model"),
    ("os", "Operating system"),
    ("browser", "Browser"),
    ("referrer_source", "Referrer"),
    ("in_app", "In-app browser"),
    ("utm_campaign", "utm_campaign"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("hour_of_day", "Hour of day"),
)

# Where a preview fetch means the link was pasted; a fetcher not named here is its own place.
SHARED_ON = {
    "facebookexternalhit": "Facebook",
    "Facebot": "Facebook",
    "iMessage": "iMessage",
    "Twitterbot": "X (Twitter)",
    "LinkedInBot": "LinkedIn",
    "Slackbot": "Slack",
    "WhatsApp": "WhatsApp",
    "TelegramBot": "Telegram",
    "Discordbot": "Discord",
    "SkypeUriPreview": "Skype",
    "Pinterestbot": "Pinterest",
    "redditbot": "Reddit",
}


def shared_on(bot_rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(place, preview fetches) from a `bot_name` breakdown, most fetches first."""
    places: Counter[str] = Counter()
    for row in bot_rows:
        if row["value"] in PREVIEW_FETCHERS:
            places[SHARED_ON.get(row["value"], row["value"])] += row["clicks"]
    return places.most_common()


def by_hour(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hour-of-day rows in clock order, every hour present."""
    found = {row["value"]: row for row in rows}
    return [
        found.get(str(hour), {"value": str(hour), "clicks": 0, "unique_visitors": 0, "share": 0})
        for hour in range(24)
    ]


async def link_stats(reads: stats.Reads, principal: Principal, view: View) -> dict[str, Any]:
    """The link page's numbers: the KPIs beside the period before, the breakdown tables
    (the hours in clock order), and where the link was shared."""
    shown = await analytics.numbers(reads, principal, view, BREAKDOWNS)
    shown["tables"] = [
        dataclasses.replace(table, rows=by_hour(table.rows))
        if table.dimension == "hour_of_day" else table
        for table in shown["tables"]
    ]  # fmt: skip
    with_bots = Scope(principal, dataclasses.replace(view.query, include_bots=True))
    bots = await stats.breakdown(reads, with_bots, "bot_name", 1000)
    return {**shown, "shared_on": shared_on(bots)}


ROUTE_ROWS = 1000  # far more than a link has routes: no `(other)` row


@dataclasses.dataclass(frozen=True)
class RouteRow:
    """A line of the Routes card: a rule, a variant, the link's own URL, or a route the
    link no longer has that clicks in the period took."""

    kind: str  # "rule", "variant", "own" or "gone"
    name: str
    destination: str
    conditions: str = ""
    weight: int | None = None
    clicks: int = 0
    unique_visitors: int = 0
    share: float = 0.0


def _conditions(rule: RuleOut) -> str:
    """A rule's conditions as the page reads them: `device: mobile · country: ID, MY`."""
    return " · ".join(f"{name}: {', '.join(values)}" for name, values in rule.conditions.items())


async def routes(
    reads: stats.Reads, principal: Principal, q: StatsQuery, link: LinkOut
) -> list[RouteRow]:
    """The link's rules, variants and own URL side by side, in the order the redirect
    weighs them, with the clicks and visitors each took in the period (the `route`
    breakdown); then the routes the link no longer has that clicks in the period took."""
    scope = Scope(principal, q)
    taken = {row["value"]: row for row in await stats.breakdown(reads, scope, "route", ROUTE_ROWS)}
    # The clicks no rule or variant took (a click's null route).
    own = [taken.pop(stats.NONE)] if stats.NONE in taken else []

    def line(kind: str, name: str, destination: str, **more: Any) -> RouteRow:
        rows = own if kind == "own" else [taken.pop(name)] if name in taken else []
        return RouteRow(
            kind,
            name,
            destination,
            **more,
            clicks=sum(row["clicks"] for row in rows),
            unique_visitors=sum(row["unique_visitors"] for row in rows),
            share=sum(row["share"] for row in rows),
        )

    utm = {name: getattr(link, name) for name in UTM_FIELDS}
    variants = link.variants or []
    lines = [
        line("rule", rule.name, merge_utm(rule.url, utm), conditions=_conditions(rule))
        for rule in link.rules or []
    ]
    lines += [
        line("variant", variant.name, merge_utm(variant.url, utm), weight=variant.weight)
        for variant in variants
    ]
    rest = 100 - sum(variant.weight for variant in variants) if variants else None
    lines.append(line("own", "", link.destination, weight=rest))
    return lines + [line("gone", name, "") for name in list(taken)]
