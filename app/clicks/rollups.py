"""Rollups: click counts the writer keeps per link and hour, and per link, day and
dimension value, in the same transaction as the clicks. Dashboards read these instead of
scanning raw clicks. `visitors` counts first clicks of a visitor on a link in a UTC day,
so visitors add up over hours, days, links and dimension values like clicks do."""

from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clicks.store.sql import Counts, store_for

# The click attributes with few values, which the daily rollup counts. Attributes with
# many (region, city, device_model, referrer_domain) would add about a rollup row per
# click, so their breakdowns read raw clicks instead. Link attributes (utm_*, link) and
# time (hour_of_day, weekday) come from the hourly rollup.
ROLLUP_DIMENSIONS = (
    "country", "device_type", "os", "browser", "device_brand", "referrer_source", "in_app",
    "trigger", "language", "bot_name", "route",
)  # fmt: skip
NO_VALUE = ""  # a null attribute, kept as a key (primary keys cannot hold NULL)
# The rollups' keys, as update_rollups counts them: each table's primary key, then workspace_id.
HOUR_KEYS = ("link_id", "hour", "is_bot", "workspace_id")
DAY_KEYS = ("link_id", "dimension", "day", "is_bot", "value", "workspace_id")


async def update_rollups(session: AsyncSession, clicks: list[dict[str, Any]]) -> None:
    """Add the given click rows (as inserted, with `new_visitor`) to both rollups."""
    hours: Counts = defaultdict(lambda: [0, 0])
    days: Counts = defaultdict(lambda: [0, 0])
    for click in clicks:
        ts, visitor = click["ts"], int(click["new_visitor"])
        link, workspace, bot = click["link_id"], click["workspace_id"], click["is_bot"]
        count = hours[(link, ts.replace(minute=0, second=0, microsecond=0), bot, workspace)]
        count[0] += 1
        count[1] += visitor
        day = ts.date()
        for dimension in ROLLUP_DIMENSIONS:
            value = click[dimension]
            count = days[
                (link, dimension, day, bot, NO_VALUE if value is None else value, workspace)
            ]
            count[0] += 1
            count[1] += visitor
    store = store_for(session)
    await store.add_counts(session, "rollup_hours", HOUR_KEYS, hours)
    await store.add_counts(session, "rollup_days", DAY_KEYS, days)
