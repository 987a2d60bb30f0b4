"""Time for the stats API: ranges given as dates or datetimes in a time zone, and the
buckets of a time series in that zone (a spring-forward day has 23 hourly buckets)."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Interval = Literal["hour", "day", "week", "month"]
DEFAULT_DAYS = 30
MAX_BUCKETS = 10_000
# Ranges stay well inside what datetime can hold, so that no step from a bound (a day, a
# month, a time zone) overflows.
EARLIEST = datetime(1969, 12, 31, 10, tzinfo=UTC)  # when 1970 began in UTC+14
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}' (use an IANA name such as Asia/Jakarta)"
        ) from None


def _parse_bound(text: str, tz: ZoneInfo, *, end: bool) -> datetime:
    """A date is the whole day in `tz` (its start, or for an end the next day's start); a
    datetime without offset is read in `tz`. An end is inclusive, so it is returned as the
    first instant after it."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    try:
        if day is not None:
            return datetime.combine(day + timedelta(days=end), time(), tzinfo=tz).astimezone(UTC)
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC) + (timedelta(microseconds=1) if end else timedelta())
    except OverflowError:
        raise ValueError(f"'{text}' is not between 1970 and {LATEST:%Y}") from None
    except ValueError:
        raise ValueError(f"'{text}' is neither a date (2026-03-29) nor a datetime") from None


def parse_range(start: str | None, end: str | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC. Without bounds: the last 30 days in `tz`, today included."""
    today = datetime.now(tz).date().isoformat()
    upper = _parse_bound(end or today, tz, end=True)
    if start:
        lower = _parse_bound(start, tz, end=False)
    else:
        last_day = (upper - timedelta(microseconds=1)).astimezone(tz).date()
        first_day = last_day - timedelta(days=DEFAULT_DAYS - 1)
        lower = _parse_bound(first_day.isoformat(), tz, end=False)
    if lower >= upper:
        raise ValueError("'from' must not be after 'to'")
    if lower < EARLIEST or upper > LATEST:
        raise ValueError(f"dates must be between 1970 and {LATEST:%Y}")
    return lower, upper


def default_interval(start: datetime, end: datetime) -> Interval:
    span = end - start
    if span <= timedelta(days=2):
        return "hour"
    return "day" if span <= timedelta(days=180) else "month"


def bucket_starts(
    start: datetime, end: datetime, interval: Interval, tz: ZoneInfo
) -> list[datetime]:
    """The starts (aware, in `tz`) of the buckets that cover [start, end)."""
    local = start.astimezone(tz)
    if interval == "hour":
        first = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        count = -(-(end - first) // timedelta(hours=1))
        if count > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} buckets: choose a longer interval")
        return [(first + timedelta(hours=i)).astimezone(tz) for i in range(count)]
    day = local.date()
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    starts = []
    while (moment := datetime.combine(day, time(), tzinfo=tz)) < end:
        starts.append(moment)
        if len(starts) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} buckets: choose a longer interval")
        if interval == "day":
            day += timedelta(days=1)
        elif interval == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts


def is_hour_aligned(moment: datetime) -> bool:
    # Both sides in UTC: an aware time in a repeated hour (fold) equals no time of another
    # zone, so comparing it with its UTC copy would always say no.
    utc = moment.astimezone(UTC)
    return utc.replace(minute=0, second=0, microsecond=0) == utc
