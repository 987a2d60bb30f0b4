from datetime import datetime

from pydantic import BaseModel, Field

VISITORS_DOC = (
    "Unique visitors: distinct visitors per link and UTC day (a visitor is a daily-salted "
    "hash of IP and User-Agent), summed over days and links."
)


class Summary(BaseModel):
    clicks: int = Field(description="clicks (human only unless include_bots)")
    unique_visitors: int = Field(description=VISITORS_DOC)
    bot_clicks: int = Field(description="bot and link-preview fetches, whatever include_bots says")
    links: int = Field(description="links with at least one counted click in the range")
    first_click: datetime | None
    last_click: datetime | None


class Bucket(BaseModel):
    # A string, so that it keeps the offset of the requested zone as written (`+00:00`, not
    # the `Z` pydantic would write for a datetime); declared a date-time all the same.
    start: str = Field(
        description="start of the bucket, ISO 8601 in the requested time zone",
        json_schema_extra={"format": "date-time"},
    )
    clicks: int
    unique_visitors: int = Field(description=VISITORS_DOC)


class Timeseries(BaseModel):
    interval: str
    tz: str
    buckets: list[Bucket]


class BreakdownRow(BaseModel):
    value: str = Field(
        description=(
            "the dimension's value; `(unknown)` when not known (`(none)` for in_app, route and "
            "bot_name: no app, no rule or variant, no bot), `(other)` past limit"
        )
    )
    clicks: int
    unique_visitors: int = Field(description=VISITORS_DOC)
    share: float = Field(description="clicks / all clicks of the breakdown")


class Breakdown(BaseModel):
    dimension: str
    rows: list[BreakdownRow]
