"""The canary judge: is the enhancement arm's telemetry worse than the baseline arm's?

The method is Kayenta's (Netflix and Google's automated canary analysis, its NetflixACAJudge):

1. Each metric is classified on its own. A two-sided Mann–Whitney U test compares the
   enhancement samples with the baseline samples; the effect is the Hodges–Lehmann shift
   (the median of all pairwise differences enhancement − baseline) relative to |median of
   the baseline| (the raw shift when that median is 0). The metric is "high" when p < alpha
   and the effect is above `tolerance`, "low" when p < alpha and it is below −`tolerance`,
   else "pass"; "nodata" when either arm has fewer than `min_samples` samples. As in
   Kayenta's canary config, `direction` says which change is harmful: a "high" latency
   fails, a "high" accuracy is labelled "high" but passes.
2. Metrics are grouped; a group's score is the share of its scored metrics that passed, and
   the canary's score (0–100) is the weighted mean of the scored groups' scores.
3. The verdict comes from the score thresholds: "pass" at `pass_score` or above, "marginal"
   at `marginal_score` or above, else "fail". A failing `critical` metric fails the canary
   whatever the score; no scored metric at all is "insufficient".

The Hodges–Lehmann shift is taken over at most `HL_SAMPLES` values per arm (the samples
arrive in a uniform random order, so the first ones are a uniform subsample); the U test
uses every value.

>>> baseline = {"latency_ms": [100.0 + i % 10 for i in range(40)], "accuracy": [0.8] * 40}
>>> enhancement = {"latency_ms": [140.0 + i % 10 for i in range(40)], "accuracy": [0.8] * 40}
>>> metrics = [MetricJudge("latency_ms", "increase", 0.05, group="performance"),
...            MetricJudge("accuracy", "decrease", 0.02, group="quality")]
>>> j = judge_canary(enhancement, baseline, metrics)
>>> j.verdict, j.score, [(m.name, m.outcome, m.failed) for m in j.metrics]
('fail', 50.0, [('latency_ms', 'high', True), ('accuracy', 'pass', False)])
>>> j.reason
'1 of 2 metrics failed: latency_ms high (+38.3 %, p=1.3e-14); score 50.0 < marginal 75.0'
>>> judge_canary(enhancement, baseline, [metrics[1]], CanarySettings(min_samples=50)).verdict
'insufficient'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .exceptions import ConfigError, EnhancementError

__all__ = ["CanaryJudgement", "CanarySettings", "HL_SAMPLES", "MetricJudge", "MetricVerdict", "judge_canary"]

HL_SAMPLES = 100
"""Values per arm the Hodges–Lehmann shift is taken over (100 × 100 differences; the U test uses all)."""

Direction = Literal["increase", "decrease", "either"]
Outcome = Literal["pass", "high", "low", "nodata"]
Verdict = Literal["pass", "marginal", "fail", "insufficient"]

_HARMFUL: dict[Direction, frozenset[Outcome]] = {
    "increase": frozenset({"high"}), "decrease": frozenset({"low"}), "either": frozenset({"high", "low"})}


@dataclass(frozen=True, slots=True)
class MetricJudge:
    name: str
    direction: Direction
    """The harmful change: "increase" for latency or errors, "decrease" for quality or throughput."""
    tolerance: float = 0.05
    """The relative effect allowed before a significant difference counts (0.05: 5 %)."""
    group: str = "default"
    critical: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.group:
            raise ConfigError(f"canary.metrics.{self.name or '?'}", "name and group must not be empty")
        if self.direction not in _HARMFUL:
            raise ConfigError(f"canary.metrics.{self.name}.direction",
                              f"must be increase, decrease or either, got {self.direction!r}")
        if not self.tolerance >= 0 or math.isinf(self.tolerance):
            raise ConfigError(f"canary.metrics.{self.name}.tolerance",
                              f"must be finite and ≥ 0, got {self.tolerance}")


@dataclass(frozen=True, slots=True)
class CanarySettings:
    alpha: float = 0.05
    pass_score: float = 95.0
    marginal_score: float = 75.0
    min_samples: int = 20
    """Per arm: a metric with fewer samples in either arm is "nodata" and not scored."""
    group_weights: Mapping[str, float] = field(default_factory=dict)
    """Empty: the groups present weigh the same. Else every metric's group needs a weight > 0."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError("canary.judge.alpha", f"must be in (0, 1), got {self.alpha}")
        if not 0 <= self.marginal_score <= self.pass_score <= 100:
            raise ConfigError("canary.judge.pass_score", "need 0 ≤ marginal_score ≤ pass_score ≤ 100, got "
                                               f"{self.marginal_score}, {self.pass_score}")
        if self.min_samples < 3:
            raise ConfigError("canary.judge.min_samples", f"must be ≥ 3, got {self.min_samples}")
        for group, weight in self.group_weights.items():
            if not 0 < weight < math.inf:
                raise ConfigError(f"canary.judge.group_weights.{group}", f"must be finite and > 0, got {weight}")
        # A read-only copy: the caller's dict changing later must not change these settings.
        object.__setattr__(self, "group_weights", MappingProxyType(dict(self.group_weights)))


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    name: str
    group: str
    outcome: Outcome
    p_value: float | None
    effect: float | None
    """The Hodges–Lehmann shift over |median of the baseline|; the raw shift when that median is 0."""
    n_enhancement: int
    n_baseline: int
    median_enhancement: float | None
    median_baseline: float | None
    critical: bool
    failed: bool
    """Whether the outcome is a change in the harmful direction (a "high" accuracy is not)."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "group": self.group, "outcome": self.outcome, "p_value": _finite(self.p_value),
                "effect": _finite(self.effect), "n_enhancement": self.n_enhancement, "n_baseline": self.n_baseline,
                "median_enhancement": _finite(self.median_enhancement),
                "median_baseline": _finite(self.median_baseline), "critical": self.critical, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class CanaryJudgement:
    verdict: Verdict
    score: float | None
    metrics: tuple[MetricVerdict, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": _finite(self.score), "metrics": [m.as_dict() for m in self.metrics],
                "reason": self.reason}


def judge_canary(enhancement: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                 metrics: Sequence[MetricJudge], settings: CanarySettings = CanarySettings()) -> CanaryJudgement:
    """Judge each of `metrics` on its samples in the two arms (a metric missing from an arm has none)."""
    names = [m.name for m in metrics]
    if len(set(names)) < len(names):
        raise ConfigError("canary.metrics", f"metric names must be unique, got {names}")
    unweighted = sorted({m.group for m in metrics} - settings.group_weights.keys())
    if settings.group_weights and unweighted:
        raise ConfigError("canary.judge.group_weights", f"no weight for group(s) {', '.join(unweighted)}")
    arms = [(_samples(m.name, "enhancement", enhancement.get(m.name, ())),
             _samples(m.name, "baseline", baseline.get(m.name, ()))) for m in metrics]
    tests = _tests(arms, settings.min_samples)
    verdicts = tuple(_verdict(m, enh, base, tests.get(i), settings)
                     for i, (m, (enh, base)) in enumerate(zip(metrics, arms)))
    return _conclude(verdicts, settings)


def _conclude(verdicts: tuple[MetricVerdict, ...], settings: CanarySettings) -> CanaryJudgement:
    score = _score(verdicts, settings)
    failed = [v for v in verdicts if v.failed]
    critical = [v.name for v in failed if v.critical]
    if score is None:
        verdict: Verdict = "insufficient"
        reason = (f"no metric has {settings.min_samples} samples in both arms "
                  f"({len(verdicts)} metric{'' if len(verdicts) == 1 else 's'} without data)")
    else:
        if critical:
            verdict, tail = "fail", f"critical {', '.join(critical)} failed; score {score:.1f}"
        elif score < settings.marginal_score:
            verdict, tail = "fail", f"score {score:.1f} < marginal {settings.marginal_score:.1f}"
        elif score < settings.pass_score:
            verdict, tail = "marginal", f"score {score:.1f} < pass {settings.pass_score:.1f}"
        else:
            verdict, tail = "pass", f"score {score:.1f} ≥ pass {settings.pass_score:.1f}"
        scored = sum(v.outcome != "nodata" for v in verdicts)
        nodata = len(verdicts) - scored
        reason = (f"{len(failed)} of {scored} metric{'' if scored == 1 else 's'} failed"
                  + (": " + ", ".join(map(_describe, failed)) if failed else "")
                  + (f" ({nodata} without data)" if nodata else "") + f"; {tail}")
    return CanaryJudgement(verdict, score, verdicts, reason)


def _samples(name: str, arm: str, values: Sequence[float]) -> npt.NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise EnhancementError(f"metric {name}: the {arm} samples must be a flat sequence of finite numbers")
    return x


_Test = tuple[float, float, float, float]
"""A scored metric's U test p-value, Hodges–Lehmann shift, and median of each arm (enhancement, baseline)."""

_EXACT_MAX = 8
"""scipy's `mannwhitneyu` ("auto") may take the exact distribution when an arm has this many values or fewer."""


def _tests(arms: Sequence[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
           min_samples: int) -> dict[int, _Test]:
    """The `_Test` of each metric (by index in `arms`) with `min_samples` in both arms.

    Metrics whose arms have the same sizes go through scipy and numpy as one 2-D batch: scipy's
    per-call overhead, not the arithmetic, is most of a U test's cost. "auto" chooses exact or
    asymptotic once for a whole batch (exact needs no ties anywhere in it), so a metric that
    could get the exact test is tested alone, as it would be on its own.
    """
    batches: dict[tuple[int, ...], list[int]] = {}
    for i, (enh, base) in enumerate(arms):
        if min(len(enh), len(base)) >= min_samples:
            key = (len(enh), len(base)) if min(len(enh), len(base)) > _EXACT_MAX else (len(enh), len(base), i)
            batches.setdefault(key, []).append(i)
    tests: dict[int, _Test] = {}
    for rows in batches.values():
        found = _batch_tests(np.stack([arms[i][0] for i in rows]), np.stack([arms[i][1] for i in rows]))
        tests.update(zip(rows, found))
    return tests


def _batch_tests(enh: npt.NDArray[np.float64], base: npt.NDArray[np.float64]) -> list[_Test]:
    """The `_Test` of each row: row i of `enh` and of `base` are one metric's two arms."""
    from scipy.stats import mannwhitneyu  # half a second to import: not at every worker's start

    p = mannwhitneyu(enh, base, alternative="two-sided", axis=1).pvalue
    p = np.where(np.isnan(p), 1.0, p)  # scipy gives nan when every sample in both arms is the same
    # the samples are in hash order (a uniform order): their first HL_SAMPLES are a uniform subsample
    shifts = np.median((enh[:, :HL_SAMPLES, None] - base[:, None, :HL_SAMPLES]).reshape(len(enh), -1), axis=1)
    return list(zip(p.tolist(), shifts.tolist(), np.median(enh, axis=1).tolist(), np.median(base, axis=1).tolist()))


def _verdict(m: MetricJudge, enh: npt.NDArray[np.float64], base: npt.NDArray[np.float64], test: _Test | None,
             s: CanarySettings) -> MetricVerdict:
    if test is None:
        return MetricVerdict(m.name, m.group, "nodata", None, None, len(enh), len(base),
                             float(np.median(enh)) if len(enh) else None,
                             float(np.median(base)) if len(base) else None, m.critical, failed=False)
    p, shift, median_enh, median_base = test
    effect = shift / abs(median_base) if median_base else shift
    outcome: Outcome = "pass"
    if p < s.alpha and effect > m.tolerance:
        outcome = "high"
    elif p < s.alpha and effect < -m.tolerance:
        outcome = "low"
    return MetricVerdict(m.name, m.group, outcome, p, effect, len(enh), len(base), median_enh, median_base,
                         m.critical, failed=outcome in _HARMFUL[m.direction])


def _score(verdicts: tuple[MetricVerdict, ...], s: CanarySettings) -> float | None:
    scored: dict[str, list[bool]] = {}
    for v in verdicts:
        if v.outcome != "nodata":
            scored.setdefault(v.group, []).append(not v.failed)
    if not scored:
        return None
    weights = {g: s.group_weights.get(g, 1.0) for g in scored}
    total = sum(weights[g] * sum(passed) / len(passed) for g, passed in scored.items())
    return 100.0 * total / sum(weights.values())


def _describe(v: MetricVerdict) -> str:
    assert v.effect is not None and v.p_value is not None
    effect = f"{100 * v.effect:+.1f} %" if v.median_baseline else f"shift {v.effect:+.3g}"
    return f"{v.name} {v.outcome} ({effect}, p={v.p_value:.2g})"


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
