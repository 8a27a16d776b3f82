"""Budget periods: tumbling hours, days and months, aligned to UTC.

Times are POSIX seconds (what Faust gives as a message timestamp).

>>> start = period_start("month", 1_700_000_000.0)   # 2023-11-14T22:13:20Z
>>> iso(start), iso(period_end("month", start)), iso(previous_start("month", start))
('2023-11-01T00:00:00Z', '2023-12-01T00:00:00Z', '2023-10-01T00:00:00Z')
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Final, Literal, get_args

Period = Literal["hour", "day", "month"]
PERIODS: Final[tuple[Period, ...]] = get_args(Period)
LONGEST_S: Final = {"hour": 3600.0, "day": 86_400.0, "month": 31 * 86_400.0}
"""The longest each period can be, for retention arithmetic."""


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def period_start(period: Period, ts: float) -> float:
    """Start of the period holding `ts` (a period is [start, end)).

    Hours and days are exact float arithmetic (`%` is exact, and so is the difference):
    `datetime.fromtimestamp` would round a time just before a boundary up into the next
    period.
    """
    if period == "hour":
        return ts - ts % 3600.0
    day = ts - ts % 86_400.0
    if period == "day":
        return day
    if period == "month":
        return _utc(day).replace(day=1).timestamp()
    raise ValueError(f"unknown period {period!r}; known: {', '.join(PERIODS)}")


def period_end(period: Period, start: float) -> float:
    """End of the period that begins at `start` (the next one's start)."""
    t = _utc(start)
    if period == "month":
        return (t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)).timestamp()
    return (t + timedelta(hours=1 if period == "hour" else 24)).timestamp()


def previous_start(period: Period, start: float) -> float:
    """Start of the period before the one that begins at `start`."""
    return period_start(period, start - 1.0)


@lru_cache(maxsize=1024)  # period bounds repeat: the gate formats the same few per request
def iso(ts: float) -> str:
    """RFC 3339 UTC, to the second."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")
