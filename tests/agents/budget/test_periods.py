from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.budget import PERIODS, Period, iso, period_end, period_start, previous_start

Y2100_US = 4_102_444_800 * 10**6  # 2100-01-01T00:00:00Z in microseconds
# Whole microseconds (the resolution of datetime) from 1970 to 2100.
timestamps = st.integers(0, Y2100_US).map(lambda us: us / 1e6)
periods = st.sampled_from(PERIODS)


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


def test_periods_are_hour_day_month() -> None:
    assert PERIODS == ("hour", "day", "month")


@given(periods, timestamps)
def test_start_le_ts_lt_end(period: Period, ts: float) -> None:
    start = period_start(period, ts)
    assert start <= ts < period_end(period, start)
    assert period_start(period, start) == start  # a start is its own period's start


@given(periods, timestamps)
def test_previous_start_is_the_adjacent_period(period: Period, ts: float) -> None:
    start = period_start(period, ts)
    before = previous_start(period, start)
    assert before < start
    assert period_end(period, before) == start
    assert period_start(period, before) == before


@given(timestamps)
def test_hours_and_days_are_aligned_to_utc_epoch(ts: float) -> None:
    hour, day = period_start("hour", ts), period_start("day", ts)
    assert hour % 3600 == 0 and ts - hour < 3600 and period_end("hour", hour) - hour == 3600
    assert day % 86_400 == 0 and ts - day < 86_400 and period_end("day", day) - day == 86_400
    assert day <= hour


@given(timestamps)
def test_month_starts_on_the_first_at_midnight_utc(ts: float) -> None:
    start, at = (datetime.fromtimestamp(t, timezone.utc) for t in (period_start("month", ts), ts))
    assert (start.day, start.hour, start.minute, start.second, start.microsecond) == (1, 0, 0, 0, 0)
    assert (start.year, start.month) == (at.year, at.month)


@pytest.mark.parametrize(("year", "month", "days"), [
    (2023, 1, 31), (2023, 2, 28), (2024, 2, 29), (2000, 2, 29), (2100, 2, 28), (1970, 2, 28),
    (2023, 4, 30), (2023, 6, 30), (2023, 9, 30), (2023, 11, 30), (2023, 7, 31), (2023, 8, 31),
    (2023, 12, 31), (1999, 12, 31),
])
def test_month_lengths(year: int, month: int, days: int) -> None:
    start = utc(year, month, 1)
    end = period_end("month", start)
    assert end - start == days * 86_400
    assert period_start("month", end - 0.001) == start
    assert period_start("month", end) == end
    assert previous_start("month", end) == start


@pytest.mark.parametrize(("period", "ts", "start", "end", "previous"), [
    ("hour", "2023-11-14T22:13:20", "2023-11-14T22:00:00Z", "2023-11-14T23:00:00Z", "2023-11-14T21:00:00Z"),
    ("hour", "2024-01-01T00:00:00", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2023-12-31T23:00:00Z"),
    ("day", "2023-12-31T23:59:59", "2023-12-31T00:00:00Z", "2024-01-01T00:00:00Z", "2023-12-30T00:00:00Z"),
    ("day", "2024-03-01T00:00:00", "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", "2024-02-29T00:00:00Z"),
    ("month", "2023-12-15T08:00:00", "2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z", "2023-11-01T00:00:00Z"),
    ("month", "2024-01-31T23:59:59", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2023-12-01T00:00:00Z"),
    ("month", "2024-03-10T12:00:00", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z", "2024-02-01T00:00:00Z"),
    ("month", "1970-01-01T00:00:00", "1970-01-01T00:00:00Z", "1970-02-01T00:00:00Z", "1969-12-01T00:00:00Z"),
])
def test_known_periods(period: Period, ts: str, start: str, end: str, previous: str) -> None:
    at = datetime.fromisoformat(ts).replace(tzinfo=timezone.utc).timestamp()
    s = period_start(period, at)
    assert (iso(s), iso(period_end(period, s)), iso(previous_start(period, s))) == (start, end, previous)


@pytest.mark.parametrize("period", PERIODS)
def test_the_last_millisecond_belongs_to_the_period(period: Period) -> None:
    start = utc(2024, 2, 1)
    end = period_end(period, start)
    assert period_start(period, (end * 1000 - 1) / 1000) == start  # Kafka timestamps are milliseconds


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown period 'week'"):
        period_start("week", 0.0)  # type: ignore[arg-type]


def test_iso_is_rfc3339_utc_to_the_second() -> None:
    assert iso(1_700_000_000.75) == "2023-11-14T22:13:20Z"
    assert iso(0.0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize("period", PERIODS)
def test_a_timestamp_just_before_a_boundary_is_in_the_earlier_period(period: Period) -> None:
    boundary = utc(2040, 1, 1)  # a start of every period; floats here are 2**-21 s apart
    ts = math.nextafter(boundary, 0.0)
    start = period_start(period, ts)
    assert start <= ts < period_end(period, start)
