"""A Faust window for calendar periods: one tumbling window per UTC hour, day or month.

Faust's own tumbling windows have a fixed size in seconds; months do not.

>>> w = CalendarWindow("day", keep=2)
>>> w.ranges(86_400 * 3 + 5.0)
[(259200.0, 345599.9)]
>>> w.stale(0.0, 86_400 * 3 + 5.0), w.stale(86_400.0, 86_400 * 3 + 5.0)
(True, False)
"""

from __future__ import annotations

from faust.types.windows import WindowRange
from faust.windows import Window
from mode.utils.times import Seconds, want_seconds

from resontinex.agents.budget import LONGEST_S, Period, period_end, period_start, previous_start

_EPSILON = 0.1  # Faust's own ranges end this much before the next start


class CalendarWindow(Window):
    """Windows [start, end − 0.1] of `period`; the current and `keep` earlier ones are kept."""

    def __init__(self, period: Period, keep: int = 2) -> None:
        self.period, self.keep = period, keep
        # Faust expires keys only when `expires` is set; which ones is `stale`'s call
        self.expires = (keep + 1) * LONGEST_S[period]

    def current(self, timestamp: float) -> WindowRange:
        start = period_start(self.period, timestamp)
        return start, period_end(self.period, start) - _EPSILON

    def ranges(self, timestamp: float) -> list[WindowRange]:
        return [self.current(timestamp)]

    def earliest(self, timestamp: float) -> WindowRange:
        return self.current(timestamp)

    def delta(self, timestamp: float, d: Seconds) -> WindowRange:
        return self.current(timestamp - want_seconds(d))

    def stale(self, timestamp: float, latest_timestamp: float) -> bool:
        oldest_kept = period_start(self.period, latest_timestamp)
        for _ in range(self.keep):
            oldest_kept = previous_start(self.period, oldest_kept)
        return timestamp < oldest_kept
