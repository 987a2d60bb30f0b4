"""What a slug may be: the one path segment of a short URL."""

import re

SLUG_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SLUG = re.compile(SLUG_PATTERN)
# Paths of the service's own: never a slug.
RESERVED_SLUGS = frozenset({
    "api", "docs", "openapi.json", "healthz", "readyz", "metrics", "static", "dashboard",
    "favicon.ico", "robots.txt", "redoc",
})  # fmt: skip


def check_slug(slug: str) -> str:
    """`slug`, unless it is a reserved word (ValueError); its syntax is SLUG_PATTERN's."""
    if slug.lower() in RESERVED_SLUGS:
        raise ValueError(f"'{slug}' is a reserved word")
    return slug
