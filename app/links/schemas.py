from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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


# Targeting (app/redirect/targeting.py). A rule or variant's name is what a click records
# as its `route`, and what the `route` breakdown shows.
MAX_RULES = 20
MAX_VARIANTS = 10
DEVICE_TYPES = ("mobile", "tablet", "desktop", "tv", "console", "wearable", "bot", "other")


def _plain_name(name: str) -> str:
    if name.startswith("(") and name.endswith(")"):
        # The `route` breakdown's own rows are `(none)` and `(other)`.
        raise ValueError("a name in parentheses could be taken for a row of the breakdown")
    return name


RouteName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL),
    AfterValidator(_plain_name),
]
OsName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL)
]
Country = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")
]
Language = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z]{2,3}$")
]


def _values(kind: Any, most: int) -> Any:
    """A condition's values: at least one, at most `most`, each once."""
    return Annotated[
        list[kind],
        Field(min_length=1, max_length=most),
        AfterValidator(lambda values: list(dict.fromkeys(values))),
    ]


class Conditions(BaseModel):
    """What a visitor must be for a rule to send them on: every condition given must hold,
    and one of its values must match (`os` without regard to case)."""

    model_config = ConfigDict(extra="forbid")

    device: _values(Literal[DEVICE_TYPES], len(DEVICE_TYPES)) | None = Field(  # type: ignore[valid-type]
        None, description="device types, as a click's `device_type`"
    )
    os: _values(OsName, 20) | None = Field(None, description="as a click's `os`, e.g. iOS")  # type: ignore[valid-type]
    country: _values(Country, 250) | None = Field(None, description="ISO 3166-1 alpha-2 codes")  # type: ignore[valid-type]
    language: _values(Language, 50) | None = Field(  # type: ignore[valid-type]
        None, description="primary language tags of Accept-Language, e.g. id"
    )

    @model_validator(mode="after")
    def _some_condition(self) -> "Conditions":
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a rule needs at least one condition: device, os, country or language")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    name: RouteName
    conditions: Conditions = Field(alias="if")
    url: Url


class RuleOut(BaseModel):
    """A rule as links show it: the conditions it has, and no others."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    name: str
    conditions: dict[str, list[str]] = Field(alias="if")
    url: str


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: RouteName
    url: Url
    weight: Annotated[int, Field(gt=0, le=100, description="per cent of the clicks")]


Password = Annotated[
    str,
    StringConstraints(min_length=4, max_length=128, pattern=NO_NUL),
    Field(description="write-only; visitors must give it (stored as an argon2 hash)"),
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
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)] | None = Field(
        None, description="the first rule whose conditions all match sends the visitor to its url"
    )
    variants: Annotated[list[Variant], Field(max_length=MAX_VARIANTS)] | None = Field(
        None,
        description="an A/B split by weight, in per cent of the clicks, sticky for a visitor "
        "within a UTC day; the clicks no variant takes (100 less the weights) go to `url`",
    )
    password: Password | None = None

    @field_validator("variants")
    @classmethod
    def _weights(cls, variants: list[Variant] | None) -> list[Variant] | None:
        if variants and sum(variant.weight for variant in variants) > 100:
            raise ValueError("the variants' weights are per cent of the clicks: at most 100 in all")
        return variants

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
    utm_template: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None
    ) = Field(None, description="a UTM template of the workspace: fills the UTM fields not given")
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
    rules: list[RuleOut] | None
    variants: list[Variant] | None
    has_password: bool
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
