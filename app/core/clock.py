"""The time of day, in UTC: every stored timestamp is."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
