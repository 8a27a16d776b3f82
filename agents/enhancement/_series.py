"""An enhancement's telemetry as the monitor and the canary judge read it.

Per arm (`enhancement`, `baseline`) and metric: the windows still open, the means of the
last closed windows (the monitor's samples, oldest first), and a pooled bottom-k sample of
every value since the enhancement was (re)activated (the canary judge's samples).

The telemetry agent sends, for each batch, each (arm, window)'s statistics *so far* on
the telemetry partition it folded them on (`source`), with the offset they reach (`upto`),
and the batch's own bottom-k sample. An open window keeps the newest statistics of each
source (a higher `upto` replaces a lower one; a lower or equal one is a repeat) and is
their merge; the pool takes the union of the samples, which is idempotent. So a batch
redelivered after a crash, whatever its boundaries, counts once: nothing is added twice,
only replaced. Statistics for a window already closed are late: their sample counts in the
pool, not in the closed means.

The pools are stored apart from the windows (`as_dict` / `pools_dict`): every closed window
rewrites the windows, while only a canary's telemetry changes its pools, the big part.

>>> from ._stats import fold
>>> s = EnhancementSeries.start(since=0.0)
>>> first = fold(["a", "b"], [0.8, 0.9], 8)
>>> s = s.add("enhancement", 0.0, 3, 2, {"quality_score": first}, {"quality_score": first.sample}, k=8)
>>> s.add("enhancement", 0.0, 3, 2, {"quality_score": first}, {"quality_score": first.sample}, k=8) is None  # a repeat
True
>>> both = first.merged(fold(["c"], [0.4], 8), 8)  # the window so far, after the next batch
>>> s = s.add("enhancement", 0.0, 3, 3, {"quality_score": both}, {"quality_score": both.sample}, k=8)
>>> s, closed = s.close(now=61.0, window_s=60.0, grace_s=1.0, keep=10)
>>> closed, [round(m, 4) for m in s.means("enhancement")["quality_score"]], s.pooled("enhancement")["quality_score"].count
(True, [0.7], 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any, Final

from ._stats import EMPTY, WindowStats

__all__ = ["EnhancementSeries", "MetricSeries", "Sample"]

FORMAT: Final = 2
"""The stored layout's version; a series stored in another starts afresh (from the next windows)."""

Sample = Sequence[tuple[int, float]]
"""(hash, value) entries of a bottom-k sample (`WindowStats.sample`)."""


@dataclass(frozen=True, slots=True)
class MetricSeries:
    open: Mapping[float, Mapping[int, WindowStats]] = field(default_factory=dict)
    """Window start → source partition → its statistics so far (no sample)."""
    closed: tuple[tuple[float, float, int], ...] = ()
    """(window start, mean, count) of the last closed windows, oldest first."""
    pool: WindowStats = EMPTY

    def window(self, start: float) -> WindowStats:
        """An open window: its sources' statistics merged."""
        return reduce(lambda a, b: a.merged(b, 0), self.open.get(start, {}).values(), EMPTY)

    def as_dict(self) -> dict[str, Any]:
        """The windows (the pool is stored apart); an open window's statistics as rows
        `[source, n, mean, m2, min, max]` (a tick reads every series whose window closes)."""
        return {"open": [[start, [[source, st.count, st.mean, st.m2, st.min, st.max]
                                  for source, st in sorted(by_source.items()) if st.count]]
                         for start, by_source in sorted(self.open.items())],
                "closed": [list(c) for c in self.closed]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], pool: Mapping[str, Any] | None = None) -> MetricSeries:
        return cls({float(start): {int(source): WindowStats(int(n), float(mean), float(m2), float(lo), float(hi), ())
                                   for source, n, mean, m2, lo, hi in rows}
                    for start, rows in d["open"]},
                   tuple((float(a), float(b), int(c)) for a, b, c in d["closed"]), WindowStats.from_dict(pool))


@dataclass(frozen=True, slots=True)
class EnhancementSeries:
    since: float
    arms: Mapping[str, Mapping[str, MetricSeries]] = field(default_factory=dict)
    uptos: Mapping[tuple[str, float, int], int] = field(default_factory=dict)
    """(arm, open window start, source partition) → the offset its statistics reach."""

    @classmethod
    def start(cls, since: float) -> EnhancementSeries:
        """Empty, counting only windows that start at `since` or later."""
        return cls(since)

    def add(self, arm: str, window_start: float, source: int, upto: int, stats: Mapping[str, WindowStats],
            samples: Mapping[str, Sample], k: int, *, pool: bool = True) -> EnhancementSeries | None:
        """With `source`'s statistics of the window so far (`stats`, up to offset `upto`) and
        a batch's `samples`; None when nothing changes (a repeat, older than `since`, or
        late with no pool to add to). The pool keeps `k` values, when `pool` (a canary's
        judge reads it; nothing else does)."""
        key = (arm, window_start, source)
        if window_start < self.since or upto <= self.uptos.get(key, -1):
            return None
        metrics, opened = dict(self.arms.get(arm, {})), False
        newest_closed = max((m.closed[-1][0] for ms in self.arms.values() for m in ms.values() if m.closed),
                            default=None)  # windows close by time, every metric's together: a later one is open
        for metric in stats.keys() | samples.keys():
            m = metrics.get(metric, MetricSeries())
            open_ = dict(m.open)
            if newest_closed is None or window_start > newest_closed:
                open_[window_start] = {**open_.get(window_start, {}), source: stats.get(metric, EMPTY).unsampled()}
                opened = True
            metrics[metric] = MetricSeries(open_, m.closed, m.pool.union(samples.get(metric, ()), k) if pool else m.pool)
        if not opened and not pool:
            return None
        uptos = {**self.uptos, key: upto} if opened else self.uptos
        return replace(self, arms={**self.arms, arm: metrics}, uptos=uptos)

    def close(self, now: float, window_s: float, grace_s: float, keep: int) -> tuple[EnhancementSeries, bool]:
        """Windows that ended `grace_s` before `now` move to the closed means (the last
        `keep` kept); and whether any did."""
        ends = {start for metrics in self.arms.values() for m in metrics.values() for start in m.open
                if start + window_s + grace_s <= now}
        if not ends:
            return self, False
        arms = {arm: {metric: _closed(m, ends, keep) for metric, m in metrics.items()}
                for arm, metrics in self.arms.items()}
        uptos = {key: upto for key, upto in self.uptos.items() if key[1] not in ends}
        return replace(self, arms=arms, uptos=uptos), True

    def means(self, arm: str, upto: float | None = None) -> dict[str, list[float]]:
        """The closed windows' means per metric, oldest first (those starting at `upto` or before)."""
        return {metric: [mean for start, mean, _ in m.closed if upto is None or start <= upto]
                for metric, m in self.arms.get(arm, {}).items()}

    def closed_since(self, arm: str, after: float | None) -> list[float]:
        """The starts of `arm`'s closed windows after `after` (any metric), oldest first."""
        return sorted({start for m in self.arms.get(arm, {}).values() for start, _, _ in m.closed
                       if after is None or start > after})

    def last_closed(self, arm: str) -> float | None:
        """The start of the newest closed window of `arm` (any metric)."""
        return max((m.closed[-1][0] for m in self.arms.get(arm, {}).values() if m.closed), default=None)

    def next_close(self, window_s: float, grace_s: float) -> float | None:
        """When the earliest open window closes (None: none is open)."""
        return min((start + window_s + grace_s for metrics in self.arms.values() for m in metrics.values()
                    for start in m.open), default=None)

    def pooled(self, arm: str) -> dict[str, WindowStats]:
        return {metric: m.pool for metric, m in self.arms.get(arm, {}).items()}

    def with_pools(self, other: EnhancementSeries) -> EnhancementSeries:
        """These windows with `other`'s pools (read apart)."""
        pools = {arm: other.pooled(arm) for arm in other.arms}
        return replace(self, arms={arm: {metric: replace(m, pool=pools.get(arm, {}).get(metric, EMPTY))
                                         for metric, m in metrics.items()} for arm, metrics in self.arms.items()})

    def as_dict(self) -> dict[str, Any]:
        """The windows and the offsets their sources reach (`pools_dict` holds the pools)."""
        return {"format": FORMAT, "since": self.since,
                "uptos": [[arm, start, source, upto] for (arm, start, source), upto in sorted(self.uptos.items())],
                "arms": {arm: {metric: m.as_dict() for metric, m in metrics.items()}
                         for arm, metrics in self.arms.items()}}

    def pools_dict(self) -> dict[str, Any]:
        return {arm: {metric: m.pool.as_dict() for metric, m in metrics.items() if m.pool.count}
                for arm, metrics in self.arms.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, since: float = 0.0,
                  pools: Mapping[str, Any] | None = None) -> EnhancementSeries:
        if not d:
            return cls.start(since)
        if d.get("format") != FORMAT:  # stored by an older version: its windows are not comparable
            return cls.start(float(d["since"]))
        pools = pools or {}
        return cls(float(d["since"]), {arm: {metric: MetricSeries.from_dict(m, pools.get(arm, {}).get(metric))
                                             for metric, m in metrics.items()}
                                       for arm, metrics in d["arms"].items()},
                   {(arm, float(start), int(source)): int(upto) for arm, start, source, upto in d["uptos"]})


def _closed(m: MetricSeries, ends: set[float], keep: int) -> MetricSeries:
    done = sorted(start for start in m.open if start in ends)
    if not done:
        return m
    closed = m.closed + tuple((start, (w := m.window(start)).mean, w.count) for start in done)
    return MetricSeries({s: by_source for s, by_source in m.open.items() if s not in ends}, closed[-keep:], m.pool)
