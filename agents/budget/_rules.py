"""The budget rules: effective cost, utilization, status, backoff, tripwire.

Money is counted in integer micro-dollars and every threshold is compared exactly
(`fractions.Fraction`), so "exactly 85 %" is review and "exactly 12 % growth" is not a
breach, whatever the floating-point rounding of the inputs.

>>> from resontinex.agents.budget import energy_config_from
>>> cfg = energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100}]})
>>> a = assess(cfg, cfg.budget_for("acme", "default"), spent_micros=80_000_000, spent_tokens=0,
...            estimate_usd=5.0, estimate_tokens=None, complexity=None, entropy=None, low_trust=False, braked=False)
>>> a.status, a.utilization, a.remaining_usd, a.verb
('review', 0.85, 20.0, 'review')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Final, Literal

from ._config import EnergyConfig, Multipliers, ScopedBudget, Tripwire

Status = Literal["ok", "review", "braked", "blocked"]
STATUS_RANK: Final[dict[str, int]] = {"ok": 0, "review": 1, "braked": 2, "blocked": 3}
STATUS_VERB: Final[dict[str, str]] = {"ok": "execute", "review": "review", "braked": "abort", "blocked": "defer"}
"""Blocked (over 100 %) defers: the operation may run once the period resets."""
MICROS: Final = 1_000_000


def to_micros(usd: float) -> int:
    """Dollars to integer micro-dollars (round half to even, as `round`).

    >>> to_micros(0.1) + to_micros(0.2) == to_micros(0.3)
    True
    """
    return round(usd * MICROS)


@lru_cache(maxsize=64)
def _fraction(value: float) -> Fraction:
    return Fraction(str(value))  # the decimal the user wrote, not its binary neighbour


def cost_multiplier(m: Multipliers, *, complexity: float | None, entropy: float | None,
                    low_trust: bool, braked: bool) -> tuple[float, tuple[str, ...]]:
    """The product of the multipliers that apply, and their names.

    >>> cost_multiplier(Multipliers(), complexity=0.8, entropy=0.72, low_trust=True, braked=True)
    (1.17, ('high_complexity', 'low_trust', 'emergency_discount'))
    """
    applied = []
    if complexity is not None and complexity > m.complexity_threshold:
        applied.append("high_complexity")
    if low_trust:
        applied.append("low_trust")
    if entropy is not None and entropy > m.entropy_threshold:
        applied.append("high_entropy")
    if braked:
        applied.append("emergency_discount")
    names = tuple(applied)
    return _product(m, names), names


@lru_cache(maxsize=256)
def _product(m: Multipliers, names: tuple[str, ...]) -> float:
    product = Fraction(1)
    for name in names:
        product *= _fraction(getattr(m, name))
    return float(product)


def status_of(used: Fraction, review_pct: float, hard_pct: float) -> Status:
    """`used` is the fraction of the budget (1 = all of it).

    >>> [status_of(Fraction(p, 100), 85, 95) for p in (84, 85, 95, 100, 101)]
    ['ok', 'review', 'braked', 'braked', 'blocked']
    """
    return _status(used.numerator, used.denominator, review_pct, hard_pct)


def _status(num: int, den: int, review_pct: float, hard_pct: float) -> Status:
    """`status_of(num / den)` in integers only (the gate calls it per request)."""
    if num > den:
        return "blocked"
    hard, review = _fraction(hard_pct), _fraction(review_pct)
    if num * 100 * hard.denominator >= hard.numerator * den:
        return "braked"
    if num * 100 * review.denominator >= review.numerator * den:
        return "review"
    return "ok"


@dataclass(frozen=True, slots=True)
class Assessment:
    """One request judged against its budget (CONTRACT §3.2 `budget`, plus the reasons)."""

    status: Status
    level: Status  # the status by utilization alone (approval aside)
    utilization: float
    remaining_usd: float
    effective_cost_usd: float
    multiplier: float
    multipliers: tuple[str, ...]
    approval_required: bool

    @property
    def verb(self) -> str:
        return STATUS_VERB[self.status]


def assess(cfg: EnergyConfig, budget: ScopedBudget, *, spent_micros: int, spent_tokens: int,
           estimate_usd: float | None, estimate_tokens: int | None, complexity: float | None,
           entropy: float | None, low_trust: bool, braked: bool) -> Assessment:
    """Spend so far plus this request's effective cost, against the budget.

    With no estimate the request is judged on spend so far. The token budget, when set,
    counts too: utilization is the larger of the two. Once `braked` (the brake engaged
    earlier this period) nothing is judged better than braked; the emergency discount
    only decides between braked and blocked.
    """
    multiplier, applied = cost_multiplier(cfg.multipliers, complexity=complexity, entropy=entropy,
                                          low_trust=low_trust, braked=braked)
    effective = to_micros((estimate_usd or 0.0) * multiplier)
    limit = to_micros(budget.usd)
    num, den = spent_micros + effective, limit
    if budget.tokens is not None:
        tokens = spent_tokens + (estimate_tokens or 0)
        if tokens * den > num * budget.tokens:  # the token share is the larger
            num, den = tokens, budget.tokens
    level = _status(num, den, cfg.limits.auto_review_threshold, cfg.limits.hard_limit_percentage)
    if braked and level in ("ok", "review"):
        level = "braked"  # the brake holds for the rest of the period
    approval = estimate_tokens is not None and estimate_tokens > cfg.limits.approval_threshold
    return Assessment(
        status="review" if approval and level == "ok" else level,
        level=level,
        utilization=round(num / den, 6),
        remaining_usd=(limit - spent_micros) / MICROS,
        effective_cost_usd=effective / MICROS,
        multiplier=multiplier,
        multipliers=applied,
        approval_required=approval,
    )


def retry_after_s(over_for_s: float, base_s: float, max_s: float, until_reset_s: float) -> float:
    """When an over-budget `defer` should be retried, the budget having been exhausted for
    `over_for_s` seconds: `base_s`, doubled each time a whole backoff has passed (so a
    client retrying when told is told to wait twice as long), capped at `max_s` and at the
    period's reset (when the budget is fresh again), at least 1 s.

    >>> [retry_after_s(t, 30, 3600, 10_000) for t in (0, 29, 30, 90, 210, 1e9)]
    [30.0, 30.0, 60.0, 120.0, 240.0, 3600.0]
    >>> retry_after_s(500, 30, 3600, 42.5)
    42.5
    """
    # the 1e-9 keeps a retry at exactly the time it was told (in floats: a hair early) a retry
    doublings = min(math.floor(math.log2(max(over_for_s, 0.0) / base_s + 1.0 + 1e-9)), 64)
    return float(max(1.0, min(base_s * 2.0 ** doublings, max_s, until_reset_s)))


def is_breach(previous_tokens: int, tokens: int, threshold_pct: float) -> bool | None:
    """Token growth strictly above the threshold; None when there is no baseline (0 before).

    >>> is_breach(100, 112, 12.0), is_breach(100, 113, 12.0), is_breach(0, 50, 12.0)
    (False, True, None)
    """
    if previous_tokens <= 0:
        return None
    return Fraction(tokens - previous_tokens, previous_tokens) * 100 > _fraction(threshold_pct)


@dataclass(frozen=True, slots=True)
class TripwireState:
    """Per tenant: breaches in a row, and whether the tenant runs downgraded."""

    consecutive: int = 0
    downgraded: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"consecutive": self.consecutive, "downgraded": self.downgraded}


TripwireChange = Literal["downgraded", "recovered"] | None


def tripwire_step(state: TripwireState, breach: bool | None, cfg: Tripwire) -> tuple[TripwireState, TripwireChange]:
    """Fold one closed window's verdict (`is_breach`) into the state.

    A window with no baseline leaves the count alone; a clean window resets it and, with
    `auto_recovery`, lifts a downgrade. Only an operator reset lifts it otherwise.

    >>> s, t = TripwireState(), Tripwire()
    >>> for verdict in (True, True, True, False):
    ...     s, change = tripwire_step(s, verdict, t)
    ...     print(s.consecutive, s.downgraded, change)
    1 False None
    2 False None
    3 True downgraded
    0 True None
    """
    if breach is None:
        return state, None
    if breach:
        consecutive = state.consecutive + 1
        if not state.downgraded and consecutive >= cfg.consecutive_limit:
            return TripwireState(consecutive, True), "downgraded"
        return TripwireState(consecutive, state.downgraded), None
    if state.downgraded and cfg.auto_recovery:
        return TripwireState(0, False), "recovered"
    return TripwireState(0, state.downgraded), None
