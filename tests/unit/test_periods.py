from datetime import UTC, datetime

import pytest

from app.stats.periods import bucket_starts, default_interval, parse_range, parse_zone

BERLIN = parse_zone("Europe/Berlin")


def test_a_date_range_is_whole_days_in_the_zone_both_ends_included() -> None:
    start, end = parse_range("2026-07-01", "2026-07-02", BERLIN)
    assert start == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert end == datetime(2026, 7, 2, 22, tzinfo=UTC)


def test_datetimes_without_offset_are_read_in_the_zone() -> None:
    start, end = parse_range("2026-07-01T10:00:00", "2026-07-01T10:30:00+00:00", BERLIN)
    assert start == datetime(2026, 7, 1, 8, tzinfo=UTC)
    assert end == datetime(2026, 7, 1, 10, 30, 0, 1, tzinfo=UTC)  # 'to' is inclusive


@pytest.mark.parametrize(
    ("day", "hours"), [("2026-03-29", 23), ("2026-10-25", 25), ("2026-07-01", 24)]
)
def test_hourly_buckets_follow_daylight_saving(day: str, hours: int) -> None:
    start, end = parse_range(day, day, BERLIN)
    starts = bucket_starts(start, end, "hour", BERLIN)
    assert len(starts) == hours
    assert starts[0].isoformat().startswith(f"{day}T00:00:00+0")


def test_daily_weekly_monthly_buckets_start_at_local_midnight() -> None:
    start, end = parse_range("2026-03-01", "2026-04-30", BERLIN)
    days = bucket_starts(start, end, "day", BERLIN)
    assert len(days) == 61 and {d.hour for d in days} == {0}
    assert days[28].isoformat() == "2026-03-29T00:00:00+01:00"
    assert days[29].isoformat() == "2026-03-30T00:00:00+02:00"
    weeks = bucket_starts(start, end, "week", BERLIN)
    assert weeks[0].isoformat() == "2026-02-23T00:00:00+01:00" and {w.weekday() for w in weeks} == {
        0
    }
    months = bucket_starts(start, end, "month", BERLIN)
    assert [m.isoformat() for m in months] == [
        "2026-03-01T00:00:00+01:00",
        "2026-04-01T00:00:00+02:00",
    ]


def test_half_hour_zones() -> None:
    kolkata = parse_zone("Asia/Kolkata")
    start, end = parse_range("2026-01-01", "2026-01-01", kolkata)
    assert start == datetime(2025, 12, 31, 18, 30, tzinfo=UTC)
    assert len(bucket_starts(start, end, "hour", kolkata)) == 24


@pytest.mark.parametrize(
    ("start", "end", "interval"),
    [
        ("2026-01-01", "2026-01-02", "hour"),
        ("2026-01-01", "2026-06-29", "day"),
        ("2025-01-01", "2026-01-01", "month"),
    ],
)
def test_default_interval(start: str, end: str, interval: str) -> None:
    assert default_interval(*parse_range(start, end, BERLIN)) == interval


@pytest.mark.parametrize(
    ("start", "end", "zone"),
    [
        ("not-a-date", None, "UTC"),
        ("2026-02-30", None, "UTC"),
        ("2026-02-02", "2026-02-01", "UTC"),
        (None, None, "Mars/Olympus"),
        (None, None, "../../etc/passwd"),
    ],
)
def test_bad_input_is_refused(start: str | None, end: str | None, zone: str) -> None:
    with pytest.raises(ValueError):
        parse_range(start, end, parse_zone(zone))


def test_too_many_buckets_are_refused() -> None:
    start, end = parse_range("2000-01-01", "2026-01-01", parse_zone("UTC"))
    with pytest.raises(ValueError, match="buckets"):
        bucket_starts(start, end, "hour", parse_zone("UTC"))
