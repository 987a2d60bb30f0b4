"""What the link page shows: the period its pickers chose, its numbers from the stats
service, which breakdowns in which order, and where the link was shared, as told by the
link-preview fetchers that came for it."""

import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from app.clicks.enrich.known_bots import PREVIEW_FETCHERS
from app.core.principal import Principal
from app.stats import service as stats
from app.stats.periods import Interval, default_interval, parse_range, parse_zone
from app.stats.repository import LinkRef, Scope, StatsQuery

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
BREAKDOWN_ROWS = 10

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


@dataclasses.dataclass(frozen=True)
class Period:
    """The range and zone a link page shows, as the pickers hold them."""

    start: str
    end: str
    tz: str
    query: StatsQuery

    @property
    def interval(self) -> Interval:
        return default_interval(self.query.start, self.query.end)

    @property
    def params(self) -> str:
        return urlencode({"from": self.start, "to": self.end, "tz": self.tz})


def period_of(link: LinkRef, start: str | None, end: str | None, tz: str) -> Period:
    """The period for the pickers' values (blank: the last 30 days); ValueError, saying
    why, for an unknown zone or a bad range."""
    zone = parse_zone(tz)
    lower, upper = parse_range(start or None, end or None, zone)
    query = StatsQuery(start=lower, end=upper, tz=zone, links=(link,))
    last = upper - timedelta(microseconds=1)
    return Period(
        start or lower.astimezone(zone).date().isoformat(),
        end or last.astimezone(zone).date().isoformat(),
        zone.key,
        query,
    )


async def link_stats(reads: stats.Reads, principal: Principal, q: StatsQuery) -> dict[str, Any]:
    """The link page's numbers: summary, breakdown tables, and where it was shared."""
    scope = Scope(principal, q)
    summary = await stats.summary(reads, scope)
    tables = []
    for dimension, title in BREAKDOWNS:
        limit = 24 if dimension == "hour_of_day" else BREAKDOWN_ROWS
        rows = await stats.breakdown(reads, scope, dimension, limit)
        if dimension == "hour_of_day":
            rows = by_hour(rows)
        tables.append((title, rows))
    with_bots = Scope(principal, dataclasses.replace(q, include_bots=True))
    bots = await stats.breakdown(reads, with_bots, "bot_name", 1000)
    return {"summary": summary, "tables": tables, "shared_on": shared_on(bots)}
