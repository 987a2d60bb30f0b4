from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.errors import ErrorBody
from app.core.slugs import SLUG_PATTERN, check_slug
from app.core.urls import check_url

# Integer columns are 32 bits on PostgreSQL: a larger number fails the INSERT (a 500).
LARGEST_INTEGER = 2**31 - 1


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # not a ValueError: pydantic would let it through as a 500
        raise ValueError("out of range: before year 1 or after 9999 in UTC") from None


Url = Annotated[str, AfterValidator(check_url)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN), AfterValidator(check_slug)]
# PostgreSQL text cannot hold NUL: refused here (422) rather than failing at the INSERT.
NO_NUL = r"^[^\x00]*$"
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^|,\x00]+$"),
]
UtmValue = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255, pattern=NO_NUL)]
# A date-time without a zone is read as UTC (as the stats API reads a bare date in `tz`,
# a link's window has no zone of its own to read it in): `2026-12-24T18:00` is 18:00 UTC.
Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    Field(description="ISO 8601 date-time; without a zone (or offset) it is read as UTC"),
]


class LinkFields(BaseModel):
    """Fields a client may set on a link, all optional (PATCH applies the ones it sends)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    utm_source: UtmValue | None = None
    utm_medium: UtmValue | None = None
    utm_campaign: UtmValue | None = None
    utm_term: UtmValue | None = None
    utm_content: UtmValue | None = None
    redirect_code: Literal[301, 302, 307, 308] | None = None
    forward_query: bool | None = None
    starts_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    max_clicks: Annotated[int, Field(gt=0, le=LARGEST_INTEGER)] | None = None
    fallback_url: Url | None = None
    og_title: Annotated[str, StringConstraints(max_length=300, pattern=NO_NUL)] | None = None
    og_description: Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)] | None = None
    og_image: Url | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else list(dict.fromkeys(tags))

    @model_validator(mode="after")
    def _window(self) -> "LinkFields":
        if self.starts_at and self.expires_at and self.expires_at <= self.starts_at:
            raise ValueError("expires_at must be after starts_at")
        return self


DomainName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=300),
    Field(
        description="a branded domain of the workspace (POST /api/domains); default: the base host"
    ),
]


class LinkCreate(LinkFields):
    url: Url
    slug: Slug | None = None
    domain: DomainName | None = None
    redirect_code: Literal[301, 302, 307, 308] = 302
    forward_query: bool = True


class LinkUpdate(LinkFields):
    url: Url | None = None
    archived: bool | None = None
    domain: DomainName | None = Field(
        None, description="a link stays on its domain: any other is refused (422)"
    )

    @model_validator(mode="after")
    def _required_stay_set(self) -> "LinkUpdate":
        """Absent means unchanged; null clears a field, which these cannot be."""
        for name in ("url", "redirect_code", "forward_query", "archived"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class LinkOut(BaseModel):
    id: int
    domain: str = Field(description="the host the link lives on")
    slug: str
    short_url: str
    url: str
    destination: str
    title: str | None
    tags: list[str]
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    redirect_code: int
    forward_query: bool
    starts_at: datetime | None
    expires_at: datetime | None
    max_clicks: int | None
    fallback_url: str | None
    og_title: str | None
    og_description: str | None
    og_image: str | None
    clicks: int = Field(description="human clicks")
    unique_visitors: int = Field(description="unique visitors per UTC day, summed")
    bot_clicks: int = Field(description="bot and link-preview fetches")
    archived: bool
    created_at: datetime
    updated_at: datetime


class LinkRef(BaseModel):
    """A link by its address alone: what a key without `links:read` is told of a link it
    wrote, so that it can go on to change or archive it, and nothing of what it holds."""

    slug: str
    short_url: str


class LinkPage(BaseModel):
    links: list[LinkOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class BulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are validated one by one so that a bad item fails alone.
    links: Annotated[list[dict], Field(min_length=1, max_length=1000)]


class BulkResult(BaseModel):
    ok: bool
    link: LinkOut | LinkRef | None = Field(
        default=None,
        description="the whole link for a key with `links:read`, else its slug and short URL",
    )
    error: ErrorBody | None = None


class BulkOut(BaseModel):
    results: list[BulkResult]
