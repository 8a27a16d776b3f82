"""Per-tenant trust statistics for one tumbling window.

>>> s = WindowStats.of(["pass", "review"], ["execute", "review"], [0.8, 0.4], 1, 0)
>>> merged = merge_stats(s, s); merged["requests"], merged["tiers"]["pass"], round(merged["score_mean"], 2)
(4, 2, 0.6)
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence


class WindowStats(dict[str, Any]):
    """A JSON-able dict: requests, score_sum, score_mean, tiers, verbs, floor_violations, entropy_flags."""

    @classmethod
    def of(
        cls, tiers: Sequence[str], verbs: Sequence[str], scores: Sequence[float],
        floor_violations: int, entropy_flags: int,
    ) -> "WindowStats":
        n = len(scores)
        total = float(sum(scores))
        return cls(
            requests=n, score_sum=total, score_mean=total / n if n else 0.0,
            tiers=dict(Counter(tiers)), verbs=dict(Counter(verbs)),
            floor_violations=floor_violations, entropy_flags=entropy_flags,
        )


def merge_stats(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if not old:
        return dict(new)
    n = old["requests"] + new["requests"]
    total = old["score_sum"] + new["score_sum"]
    return {
        "requests": n, "score_sum": total, "score_mean": total / n if n else 0.0,
        "tiers": dict(Counter(old["tiers"]) + Counter(new["tiers"])),
        "verbs": dict(Counter(old["verbs"]) + Counter(new["verbs"])),
        "floor_violations": old["floor_violations"] + new["floor_violations"],
        "entropy_flags": old["entropy_flags"] + new["entropy_flags"],
    }


def window_start(timestamp_s: float, size_s: float = 60.0) -> float:
    """Start of the tumbling window holding a timestamp (UTC-aligned).

    >>> window_start(125.5)
    120.0
    """
    return timestamp_s - (timestamp_s % size_s)
