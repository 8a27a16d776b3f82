from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.budget import PERIODS, Period, period_end, period_start, previous_start
from resontinex.app.wiring.calendar_window import CalendarWindow


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


timestamps = st.integers(86_400 * 400, 4_102_444_800_000).map(lambda ms: ms / 1000)  # Kafka ms, 1971..2100


@pytest.mark.parametrize(("period", "ts", "start", "end"), [
    ("hour", "2024-01-01T00:30:00", "2024-01-01T00:00:00", "2024-01-01T01:00:00"),
    ("day", "2024-02-29T23:59:59", "2024-02-29T00:00:00", "2024-03-01T00:00:00"),
    ("month", "2024-02-10T12:00:00", "2024-02-01T00:00:00", "2024-03-01T00:00:00"),
    ("month", "2023-12-31T23:00:00", "2023-12-01T00:00:00", "2024-01-01T00:00:00"),
])
def test_ranges_are_the_calendar_period_less_epsilon(period: Period, ts: str, start: str, end: str) -> None:
    window = CalendarWindow(period)
    expected = (utc(start), utc(end) - 0.1)
    assert window.ranges(utc(ts)) == [expected]
    assert window.current(utc(ts)) == window.earliest(utc(ts)) == expected


@given(st.sampled_from(PERIODS), timestamps)
def test_current_range_agrees_with_the_period_functions(period: Period, ts: float) -> None:
    start = period_start(period, ts)
    assert CalendarWindow(period).ranges(ts) == [(start, period_end(period, start) - 0.1)]


@pytest.mark.parametrize(("d", "start", "end"), [
    (0.0, "2024-03-01T00:00:00", "2024-03-01T01:00:00"),
    (3600.0, "2024-02-29T23:00:00", "2024-03-01T00:00:00"),
    (timedelta(days=1), "2024-02-29T00:00:00", "2024-02-29T01:00:00"),
])
def test_delta_is_the_window_that_far_back(d: float | timedelta, start: str, end: str) -> None:
    assert CalendarWindow("hour").delta(utc("2024-03-01T00:10:00"), d) == (utc(start), utc(end) - 0.1)


@pytest.mark.parametrize(("period", "keep", "latest", "oldest_kept"), [
    ("hour", 0, "2024-01-01T00:30:00", "2024-01-01T00:00:00"),
    ("hour", 1, "2024-01-01T00:30:00", "2023-12-31T23:00:00"),
    ("day", 2, "2024-03-01T12:00:00", "2024-02-28T00:00:00"),
    ("month", 2, "2024-03-10T00:00:00", "2024-01-01T00:00:00"),
    ("month", 3, "2024-01-31T23:59:59", "2023-10-01T00:00:00"),
])
def test_stale_keeps_current_and_keep_earlier_periods(period: Period, keep: int, latest: str, oldest_kept: str) -> None:
    window, now, oldest = CalendarWindow(period, keep=keep), utc(latest), utc(oldest_kept)
    assert window.stale(oldest - 0.001, now) is True
    assert window.stale(oldest, now) is False
    assert window.stale(now, now) is False


@given(st.sampled_from(PERIODS), st.integers(0, 4), timestamps, timestamps)
def test_stale_agrees_with_previous_start(period: Period, keep: int, ts: float, latest: float) -> None:
    oldest = period_start(period, latest)
    for _ in range(keep):
        oldest = previous_start(period, oldest)
    assert CalendarWindow(period, keep).stale(ts, latest) is (ts < oldest)


@pytest.mark.parametrize(("period", "keep", "expires"), [
    ("hour", 2, 3 * 3600.0), ("day", 0, 86_400.0), ("month", 2, 3 * 31 * 86_400.0),
])
def test_expires_covers_the_kept_periods(period: Period, keep: int, expires: float) -> None:
    assert CalendarWindow(period, keep).expires == expires
