"""An enhancement's telemetry as the monitor and the canary judge read it.

Per arm (`enhancement`, `baseline`) and metric: the windows still open (their stats), the
means of the last closed windows (the monitor's samples, oldest first), and a pooled
bottom-k sample of every value since the enhancement was (re)activated (the canary judge's
samples). Partials (a telemetry batch's stats of one enhancement, arm and window) merge in
as they come; one seen before (by id) or older than the activation is dropped, and one for
a window already closed is late: it counts in the pool, not in the closed means.

The pools are stored apart from the windows (`as_dict` / `pools_dict`): every closed window
rewrites the windows, while only a partial of a canary changes its pools, the big part.

>>> from ._stats import fold
>>> s = EnhancementSeries.start(since=0.0)
>>> s = s.add("p1", "enhancement", 0.0, {"quality_score": fold(["a", "b"], [0.8, 0.9], 8)}, k=8)
>>> s, closed = s.close(now=61.0, window_s=60.0, grace_s=1.0, keep=10)
>>> closed, s.means("enhancement"), s.pooled("enhancement")["quality_score"].count
(True, {'quality_score': [0.8500000000000001]}, 2)
>>> s.add("p1", "enhancement", 60.0, {"quality_score": fold(["c"], [0.1], 8)}, k=8) is None  # a repeat
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._stats import EMPTY, WindowStats

__all__ = ["EnhancementSeries", "MetricSeries", "RECENT_PARTIALS"]

RECENT_PARTIALS = 128
"""Partial ids remembered per enhancement, to drop a partial delivered twice (a redelivery
comes within seconds; a few arrive per window)."""


@dataclass(frozen=True, slots=True)
class MetricSeries:
    open: Mapping[float, WindowStats] = field(default_factory=dict)
    closed: tuple[tuple[float, float, int], ...] = ()
    """(window start, mean, count) of the last closed windows, oldest first."""
    pool: WindowStats = EMPTY

    def as_dict(self) -> dict[str, Any]:
        """The windows (the pool is stored apart)."""
        return {"open": [[start, st.as_dict()] for start, st in sorted(self.open.items())],
                "closed": [list(c) for c in self.closed]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], pool: Mapping[str, Any] | None = None) -> MetricSeries:
        return cls({float(start): WindowStats.from_dict(st) for start, st in d["open"]},
                   tuple((float(a), float(b), int(c)) for a, b, c in d["closed"]), WindowStats.from_dict(pool))


@dataclass(frozen=True, slots=True)
class EnhancementSeries:
    since: float
    arms: Mapping[str, Mapping[str, MetricSeries]] = field(default_factory=dict)
    partials: tuple[str, ...] = ()

    @classmethod
    def start(cls, since: float) -> EnhancementSeries:
        """Empty, counting only windows that start at `since` or later."""
        return cls(since)

    def add(self, partial_id: str, arm: str, window_start: float, stats: Mapping[str, WindowStats],
            k: int, *, pool: bool = True) -> EnhancementSeries | None:
        """With a partial merged in; None when it was seen already or is older than `since`.
        Open windows keep no sample (the monitor reads their means); the pool keeps `k`
        values, when `pool` (a canary's judge reads it; nothing else does)."""
        if partial_id in self.partials or window_start < self.since:
            return None
        metrics = dict(self.arms.get(arm, {}))
        for metric, st in stats.items():
            m = metrics.get(metric, MetricSeries())
            closed_upto = m.closed[-1][0] if m.closed else None
            opened = dict(m.open)
            if closed_upto is None or window_start > closed_upto:
                opened[window_start] = opened.get(window_start, EMPTY).merged(_unsampled(st), 0)
            metrics[metric] = MetricSeries(opened, m.closed, m.pool.merged(st, k) if pool else m.pool)
        return replace(self, arms={**self.arms, arm: metrics},
                       partials=(*self.partials, partial_id)[-RECENT_PARTIALS:])

    def close(self, now: float, window_s: float, grace_s: float, keep: int) -> tuple[EnhancementSeries, bool]:
        """Windows that ended `grace_s` before `now` move to the closed means (the last
        `keep` kept); and whether any did."""
        changed = False
        arms: dict[str, dict[str, MetricSeries]] = {}
        for arm, metrics in self.arms.items():
            arms[arm] = {}
            for metric, m in metrics.items():
                done = sorted(start for start in m.open if start + window_s + grace_s <= now)
                if done:
                    changed = True
                    closed = m.closed + tuple((start, m.open[start].mean, m.open[start].count) for start in done)
                    m = MetricSeries({s: st for s, st in m.open.items() if s not in done}, closed[-keep:], m.pool)
                arms[arm][metric] = m
        return (replace(self, arms=arms), True) if changed else (self, False)

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
        """The windows and the partial ids (`pools_dict` holds the pools)."""
        return {"since": self.since, "partials": list(self.partials),
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
        pools = pools or {}
        return cls(float(d["since"]), {arm: {metric: MetricSeries.from_dict(m, pools.get(arm, {}).get(metric))
                                             for metric, m in metrics.items()}
                                       for arm, metrics in d["arms"].items()}, tuple(d["partials"]))


def _unsampled(st: WindowStats) -> WindowStats:
    return WindowStats(st.count, st.mean, st.m2, st.min, st.max, ())
