"""The monitor's rules (seed 004's auto-deactivation monitor): is an active enhancement
unstable, losing quality, or slower and worse than its baseline?

Each check reads a series of window means (oldest first) or the latest window's figures
and returns a `Trigger` or None:

- **stability** (last `window` samples, at least `min_samples`): triggered when the sample
  standard deviation is above `max_sd`, or the stability coefficient 1 − min(sd/mean, 1)
  (1 − 1 when the mean is ≤ 0) is below `min_coefficient`; MAJOR when the last `trend`
  samples never rise, else MINOR;
- **quality** (last `window` samples, at least `min_samples`): CRITICAL when the last is
  below `critical_below`; MAJOR when the relative drop (first − last) / first is above
  `max_relative_drop`;
- **performance** against the submitted baseline: response time more than
  `response_time_factor` × the baseline, accuracy down by more than `accuracy_drop`,
  throughput down by more than `throughput_drop` of the baseline, error rate up by more
  than `error_rate_rise`. `critical_regressions` of them at once are CRITICAL, fewer are
  MAJOR (seed 004 ignored a single regression). A metric without a baseline is not judged.

A figure counts only when it passes its threshold by more than `tolerance` (1e-9): a drop
of exactly the threshold never triggers. Seed 004 compared raw differences, so the same
nominal drop of .05 triggered or not by the operands' binary error (.85 → .80 is .04999…,
.90 → .85 is .05000…04).

`next_step` counts MAJOR and CRITICAL rounds in a row (a round with only MINOR triggers,
or none, resets the count) and says when to deactivate: at once on CRITICAL (cooldown
`critical`), or at `consecutive` rounds in a row (cooldown `consecutive`).

>>> s = MonitorSettings()
>>> performance({"accuracy": 0.80}, {"accuracy": 0.85}, s) is None
True
>>> performance({"accuracy": 0.79, "response_time_ms": 800}, {"accuracy": 0.85, "response_time_ms": 500}, s).severity
'critical'
>>> stability([0.9, 0.5, 0.9, 0.4, 0.3], s).severity
'major'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._config import MonitorSettings

__all__ = ["Assessment", "Severity", "Step", "Trigger", "assess", "next_step", "performance", "quality",
           "stability"]

Severity = Literal["minor", "major", "critical"]
_RANK: dict[Severity, int] = {"minor": 1, "major": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Trigger:
    check: Literal["stability", "quality", "performance"]
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "message": self.message, **self.evidence}


def _over(value: float, limit: float, tolerance: float) -> bool:
    return value > limit + tolerance


def stability(series: Sequence[float], s: MonitorSettings) -> Trigger | None:
    cfg = s.stability
    values = list(series)[-cfg.window:]
    if len(values) < cfg.min_samples:
        return None
    x = np.asarray(values, dtype=np.float64)  # (statistics.stdev is exact, with fractions: 10× the cost)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    coefficient = 1.0 - min(sd / mean if mean > 0 else 1.0, 1.0)
    too_variable = _over(sd, cfg.max_sd, s.tolerance)
    unsteady = _over(cfg.min_coefficient, coefficient, s.tolerance)
    if not (too_variable or unsteady):
        return None
    tail = values[-cfg.trend:]
    falling = len(tail) == cfg.trend and all(a >= b for a, b in zip(tail, tail[1:]))
    what = [f"sd {sd:.3f} > {cfg.max_sd}"] * too_variable + [f"stability {coefficient:.3f} < {cfg.min_coefficient}"] * unsteady
    return Trigger("stability", "major" if falling else "minor",
                   f"{cfg.metric} unstable: {', '.join(what)}" + (f", last {cfg.trend} not rising" if falling else ""),
                   {"metric": cfg.metric, "samples": len(values), "mean": mean, "sd": sd, "coefficient": coefficient,
                    "falling": falling})


def quality(series: Sequence[float], s: MonitorSettings) -> Trigger | None:
    cfg = s.quality
    values = list(series)[-cfg.window:]
    if len(values) < cfg.min_samples:
        return None
    first, last = values[0], values[-1]
    drop = (first - last) / first if first > 0 else 0.0
    evidence = {"metric": cfg.metric, "samples": len(values), "first": first, "last": last, "relative_drop": drop}
    if _over(cfg.critical_below, last, s.tolerance):
        return Trigger("quality", "critical", f"{cfg.metric} {last:.3f} < {cfg.critical_below}", evidence)
    if _over(drop, cfg.max_relative_drop, s.tolerance):
        return Trigger("quality", "major", f"{cfg.metric} fell {drop:.1%} over {len(values)} windows "
                                           f"(> {cfg.max_relative_drop:.0%})", evidence)
    return None


def performance(current: Mapping[str, float], baseline: Mapping[str, float] | None,
                s: MonitorSettings) -> Trigger | None:
    cfg, tol, base = s.performance, s.tolerance, baseline or {}
    judged: dict[str, dict[str, Any]] = {}
    figures: tuple[tuple[str, str, Callable[[float, float], float | None], float], ...] = (
        # metric, what is compared, how it is computed from (current, baseline), the limit
        (cfg.response_time_metric, "factor", lambda c, b: c / b if b > 0 else None, cfg.response_time_factor),
        (cfg.accuracy_metric, "drop", lambda c, b: b - c, cfg.accuracy_drop),
        (cfg.throughput_metric, "relative_drop", lambda c, b: (b - c) / b if b > 0 else None, cfg.throughput_drop),
        (cfg.error_rate_metric, "rise", lambda c, b: c - b, cfg.error_rate_rise),
    )
    for metric, figure, compute, limit in figures:
        if metric in current and metric in base and (value := compute(current[metric], base[metric])) is not None:
            judged[metric] = {"current": current[metric], "baseline": base[metric], figure: value, "limit": limit,
                              "regressed": _over(value, limit, tol)}
    regressed = [m for m, j in judged.items() if j["regressed"]]
    if not regressed:
        return None
    severity: Severity = "critical" if len(regressed) >= cfg.critical_regressions else "major"
    return Trigger("performance", severity, f"regressed against the baseline: {', '.join(regressed)}",
                   {"metrics": judged, "regressed": regressed})


@dataclass(frozen=True, slots=True)
class Assessment:
    """One monitoring round: every trigger, the worst severity (None: nothing triggered)."""

    triggers: tuple[Trigger, ...]

    @property
    def severity(self) -> Severity | None:
        return max((t.severity for t in self.triggers), key=_RANK.__getitem__, default=None)

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "triggers": [t.as_dict() for t in self.triggers]}


def assess(series: Mapping[str, Sequence[float]], baseline: Mapping[str, float] | None,
           s: MonitorSettings) -> Assessment:
    """Every check on an enhancement's window means per metric (oldest first); the
    performance check reads each metric's latest window."""
    latest = {m: v[-1] for m, v in series.items() if v}
    found = (stability(series.get(s.stability.metric, ()), s), quality(series.get(s.quality.metric, ()), s),
             performance(latest, baseline, s))
    return Assessment(tuple(t for t in found if t is not None))


@dataclass(frozen=True, slots=True)
class Step:
    """What a round means: the count of MAJOR/CRITICAL rounds in a row, and whether (and
    for how long) to deactivate."""

    consecutive: int
    deactivate: bool = False
    code: str = ""
    cooldown_s: float = 0.0

    @property
    def message(self) -> str:
        return {"critical_regression": "a critical trigger deactivates at once",
                "consecutive_violations": f"{self.consecutive} major rounds in a row"}.get(self.code, "")


def next_step(consecutive: int, assessment: Assessment, s: MonitorSettings) -> Step:
    """
    >>> s = MonitorSettings()
    >>> major = Assessment((Trigger("quality", "major", "", {}),))
    >>> next_step(1, major, s), next_step(2, major, s).deactivate, next_step(2, Assessment(()), s).consecutive
    (Step(consecutive=2, deactivate=False, code='', cooldown_s=0.0), True, 0)
    """
    severity = assessment.severity
    if severity == "critical":
        return Step(consecutive + 1, True, "critical_regression", s.cooldown.critical_s)
    if severity != "major":
        return Step(0)
    if consecutive + 1 >= s.consecutive:
        return Step(consecutive + 1, True, "consecutive_violations", s.cooldown.consecutive_s)
    return Step(consecutive + 1)
