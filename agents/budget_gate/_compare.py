"""Compare a baseline run with a current run: pure arithmetic and statistics, no I/O.

The figures (CONTRACT §7.2):

* **token delta %** = mean over the scenarios present in both runs of
  (mean current tokens − mean baseline tokens) / mean baseline tokens × 100;
* **P95 latency** = nearest-rank 95th percentile over every current latency sample
  (every scenario of the current run, including those the baseline lacks); the
  baseline P95 likewise over every baseline sample.

Verdicts, per metric: a value **at or above** a threshold takes its status (``>=``: a 12 %
increase warns, a 25 % increase blocks, a P95 of exactly 2000 ms warns), and the gate's
`budget_status` is the worse of the two metrics.

Noise. The token delta is tested with a seeded **percentile bootstrap** (`DRAWS`
resamples, `SEED`): each scenario's baseline and current token samples are resampled
independently, the delta % is recomputed per resample, and the overall delta's
(1 − alpha) interval comes from the mean over scenarios of those resampled deltas. The
regression is *significant* when the whole interval lies above 0. A delta at or above the
block threshold that is not significant is downgraded to ``warn`` with the note "within
noise": the gate never blocks on noise. Details:

* a scenario with fewer than `MIN_SAMPLES` token samples on either side is not
  resampled: it enters every resample at its observed delta, so it is judged on the
  threshold alone (its row says so); with no testable scenario at all, or with
  ``statistics=False``, the verdict is the threshold's;
* a side with more than `EXACT_MAX` samples draws its resampled means from their normal
  limit N(mean, σ²/n) instead of resampling (the bootstrap distribution of a mean of so
  many draws is normal to far below display precision, and exact resampling would cost
  `DRAWS` × n);
* with few samples (say 3 to 10 per side) percentile-bootstrap intervals are too narrow,
  so the test errs toward keeping a block, never toward hiding a regression;
* a resample whose baseline mean is 0 counts as infinite growth (interval bounds may be
  ``inf``); a baseline whose *observed* mean is 0 is refused (`ReportError`): a percentage
  of nothing is undefined, and passing it would hide any growth.

Latency thresholds are absolute, so a latency verdict is never downgraded; the
significance of the P95 increase over the baseline P95 is reported (a bootstrap interval
of the difference of the two P95s, each resampled P95 drawn exactly from the distribution
of the nearest-rank order statistic).

>>> from ._report import parse_run
>>> def run(source, *rows):
...     return parse_run({"scenarios": [{"name": n, "tokens": t, "latency_ms": l} for n, t, l in rows]}, source)
>>> base = run("b.json", ("refund", [1000, 1010, 990, 1005, 995], [800, 900, 950, 1000, 1200]))
>>> cur = run("c.json", ("refund", [1300, 1310, 1290, 1305, 1295], [800, 900, 950, 1000, 2100]))
>>> result = compare(base, cur)
>>> result.budget_status, result.tokens.delta_pct, result.tokens.significant, result.latency.p95_ms
('block', 30.0, True, 2100.0)
>>> result.latency.status, result.latency.baseline_p95_ms
('warn', 1200.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from ._report import Run, Scenario
from .exceptions import InvalidThresholds, ReportError

__all__ = [
    "DRAWS",
    "EXACT_MAX",
    "MIN_SAMPLES",
    "SEED",
    "STATUSES",
    "GateResult",
    "LatencyVerdict",
    "ScenarioRow",
    "Status",
    "Thresholds",
    "TokenVerdict",
    "compare",
    "nearest_rank",
]

Status = Literal["pass", "warn", "block"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "block")
"""Every status, least severe first."""

MIN_SAMPLES = 3
DRAWS = 2000
SEED = 20240501
EXACT_MAX = 2000


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the gate compares against; defaults are the issue's (12 %, 25 %, 2000 ms, 5000 ms).

    >>> Thresholds(token_warn_pct=30)
    Traceback (most recent call last):
    ...
    resontinex.agents.budget_gate.exceptions.InvalidThresholds: token warn threshold (30) is above its block threshold (25.0)
    """

    token_warn_pct: float = 12.0
    token_block_pct: float = 25.0
    latency_warn_ms: float = 2000.0
    latency_block_ms: float = 5000.0
    alpha: float = 0.05
    statistics: bool = True

    def __post_init__(self) -> None:
        values = (self.token_warn_pct, self.token_block_pct, self.latency_warn_ms, self.latency_block_ms)
        if not all(math.isfinite(v) for v in values):
            raise InvalidThresholds(f"thresholds must be finite numbers (got {values})")
        for metric, warn, block in (("token", self.token_warn_pct, self.token_block_pct),
                                    ("latency", self.latency_warn_ms, self.latency_block_ms)):
            if warn > block:
                raise InvalidThresholds(f"{metric} warn threshold ({warn}) is above its block threshold ({block})")
        if not 0 < self.alpha < 1:
            raise InvalidThresholds(f"alpha must be between 0 and 1 (got {self.alpha})")

    @property
    def confidence(self) -> str:
        """The level of the reported intervals, 1 − alpha: ``'95 %'`` by default."""
        return f"{(1 - self.alpha) * 100:g} %"


@dataclass(frozen=True, slots=True)
class ScenarioRow:
    """One scenario present in both runs; `ci_pct` is None when it was not resampled."""

    name: str
    baseline_n: int
    current_n: int
    baseline_mean_tokens: float
    current_mean_tokens: float
    delta_pct: float
    ci_pct: tuple[float, float] | None
    significant: bool | None
    baseline_p95_ms: float
    current_p95_ms: float
    note: str


@dataclass(frozen=True, slots=True)
class TokenVerdict:
    """The token metric: the mean delta %, its (1 − alpha) interval and the status."""

    status: Status
    delta_pct: float
    ci_pct: tuple[float, float] | None
    significant: bool | None
    note: str


@dataclass(frozen=True, slots=True)
class LatencyVerdict:
    """The latency metric: current and baseline P95, the interval of their difference, the status."""

    status: Status
    p95_ms: float
    baseline_p95_ms: float
    increase_ci_ms: tuple[float, float] | None
    significant: bool | None
    note: str


@dataclass(frozen=True, slots=True)
class GateResult:
    """Everything the gate found; `budget_status` is the worse of the two metrics."""

    budget_status: Status
    tokens: TokenVerdict
    latency: LatencyVerdict
    scenarios: tuple[ScenarioRow, ...]
    only_in_baseline: tuple[str, ...]
    only_in_current: tuple[str, ...]
    thresholds: Thresholds


def nearest_rank(values: np.ndarray, pct: int = 95) -> float:
    """The nearest-rank percentile: the ⌈pct/100 × n⌉-th smallest sample (integer arithmetic).

    >>> nearest_rank(np.array([840.0, 910.0, 1990.0]))
    1990.0
    >>> nearest_rank(np.arange(1.0, 21.0)), nearest_rank(np.arange(1.0, 101.0))
    (19.0, 95.0)
    """
    return float(np.sort(values)[_rank(values.size, pct) - 1])


def compare(baseline: Run, current: Run, thresholds: Thresholds = Thresholds()) -> GateResult:
    """Gate `current` against `baseline` (see the module docstring for every rule)."""
    in_baseline = {s.name: s for s in baseline.scenarios}
    pairs = [(in_baseline[s.name], s) for s in current.scenarios if s.name in in_baseline]
    if not pairs:
        raise ReportError(current.source, "scenarios", f"no scenario in common with {baseline.source} (baseline: "
                          f"{_names(baseline.scenarios)}; current: {_names(current.scenarios)})")
    for b, _ in pairs:
        if b.tokens.mean() == 0:
            raise ReportError(baseline.source, f"{b.field}.tokens", "mean is 0, so a token delta % is undefined")
    rng = np.random.default_rng(SEED)
    rows, draws = zip(*(_scenario_row(rng, b, c, thresholds) for b, c in pairs))
    tested = thresholds.statistics and any(row.ci_pct is not None for row in rows)
    overall = np.mean(draws, axis=0) if tested else None
    tokens = _token_verdict(float(np.mean([row.delta_pct for row in rows])), overall, rows, thresholds)
    latency = _latency_verdict(rng, baseline, current, thresholds)
    current_names = {s.name for s in current.scenarios}
    return GateResult(
        budget_status=max(tokens.status, latency.status, key=STATUSES.index),
        tokens=tokens,
        latency=latency,
        scenarios=tuple(rows),
        only_in_baseline=tuple(s.name for s in baseline.scenarios if s.name not in current_names),
        only_in_current=tuple(s.name for s in current.scenarios if s.name not in in_baseline),
        thresholds=thresholds,
    )


def _scenario_row(rng: np.random.Generator, b: Scenario, c: Scenario,
                  thresholds: Thresholds) -> tuple[ScenarioRow, np.ndarray]:
    """The row and the resampled deltas (constant when not resampled) of one scenario."""
    delta = float(_pct_change(c.tokens.mean(), b.tokens.mean()))
    testable = min(b.tokens.size, c.tokens.size) >= MIN_SAMPLES
    resampled = thresholds.statistics and testable
    draws = _pct_change(_mean_draws(rng, c.tokens), _mean_draws(rng, b.tokens)) if resampled else np.full(DRAWS, delta)
    ci = _interval(draws, thresholds.alpha) if resampled else None
    note = "" if testable or not thresholds.statistics else f"fewer than {MIN_SAMPLES} samples per side: threshold only"
    row = ScenarioRow(
        name=c.name, baseline_n=b.tokens.size, current_n=c.tokens.size,
        baseline_mean_tokens=float(b.tokens.mean()), current_mean_tokens=float(c.tokens.mean()),
        delta_pct=delta, ci_pct=ci, significant=None if ci is None else ci[0] > 0,
        baseline_p95_ms=nearest_rank(b.latency_ms), current_p95_ms=nearest_rank(c.latency_ms), note=note,
    )
    return row, draws


def _token_verdict(delta: float, draws: np.ndarray | None, rows: tuple[ScenarioRow, ...],
                   thresholds: Thresholds) -> TokenVerdict:
    status = _status(delta, thresholds.token_warn_pct, thresholds.token_block_pct)
    ci = None if draws is None else _interval(draws, thresholds.alpha)
    significant = None if ci is None else ci[0] > 0
    untested = [row.name for row in rows if row.ci_pct is None]
    if not thresholds.statistics:
        notes = ["statistics off: threshold only"]
    elif ci is None:
        notes = [f"every scenario has fewer than {MIN_SAMPLES} samples per side: threshold only"]
    else:
        notes = [f"not resampled (fewer than {MIN_SAMPLES} samples per side): {', '.join(untested)}"] if untested else []
    if status == "block" and ci is not None and ci[0] <= 0:
        status = "warn"
        notes.insert(0, f"within noise: the {thresholds.confidence} interval [{ci[0]:+.1f} %, {ci[1]:+.1f} %] includes 0")
    return TokenVerdict(status, delta, ci, significant, "; ".join(notes))


def _latency_verdict(rng: np.random.Generator, baseline: Run, current: Run, thresholds: Thresholds) -> LatencyVerdict:
    base, cur = (np.concatenate([s.latency_ms for s in run.scenarios]) for run in (baseline, current))
    p95, base_p95 = nearest_rank(cur), nearest_rank(base)
    status = _status(p95, thresholds.latency_warn_ms, thresholds.latency_block_ms)
    if not thresholds.statistics:
        return LatencyVerdict(status, p95, base_p95, None, None, "statistics off")
    if min(base.size, cur.size) < MIN_SAMPLES:
        return LatencyVerdict(status, p95, base_p95, None, None, f"fewer than {MIN_SAMPLES} samples per side: not tested")
    ci = _interval(_p95_draws(rng, cur) - _p95_draws(rng, base), thresholds.alpha)
    return LatencyVerdict(status, p95, base_p95, ci, ci[0] > 0, "")


def _status(value: float, warn: float, block: float) -> Status:
    return "block" if value >= block else "warn" if value >= warn else "pass"


def _rank(n: int, pct: int) -> int:
    return -(-pct * n // 100)


def _pct_change(current: np.ndarray | float, baseline: np.ndarray | float) -> np.ndarray:
    """(current − baseline) / baseline × 100, elementwise; from 0 it is +inf (0 when both are 0).

    Multiplying before dividing keeps round numbers exact at the thresholds:

    >>> float(_pct_change(112.0, 100.0)), float(_pct_change(1250.0, 1000.0)), _pct_change(np.array([1.0, 0.0]), 0.0)
    (12.0, 25.0, array([inf,  0.]))
    """
    current, baseline = np.asarray(current, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (current - baseline) * 100.0 / baseline
    return np.where(baseline == 0, np.where(current > 0, np.inf, 0.0), change)


def _mean_draws(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """`DRAWS` bootstrap means of `values` (their normal limit beyond `EXACT_MAX` samples)."""
    if values.size > EXACT_MAX:
        return rng.normal(values.mean(), values.std() / math.sqrt(values.size), DRAWS)
    means: np.ndarray = values[rng.integers(0, values.size, size=(DRAWS, values.size))].mean(axis=1)
    return means


def _p95_draws(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """`DRAWS` nearest-rank P95s of bootstrap resamples, drawn without building the resamples.

    The k-th smallest of n draws with replacement is ≤ x₍ⱼ₎ (the j-th smallest sample)
    exactly when at least k draws fall among x₍₁₎…x₍ⱼ₎, i.e. Binomial(n, j/n) ≥ k: that
    is the order statistic's distribution function, sampled by inversion.
    """
    ordered = np.sort(values)
    n = ordered.size
    cdf = special.bdtrc(_rank(n, 95) - 1, n, np.arange(1, n + 1) / n)  # P(Binomial ≥ k)
    return ordered[np.minimum(np.searchsorted(cdf, rng.random(DRAWS), side="right"), n - 1)]


def _interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    # inverted_cdf picks resampled values (no interpolation), so infinite draws stay well defined
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return float(low), float(high)


def _names(scenarios: tuple[Scenario, ...]) -> str:
    return ", ".join(s.name for s in scenarios)
