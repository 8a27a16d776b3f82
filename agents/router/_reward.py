"""Seed 002's reward, the Q-learning update, and Ψ-aware exploration.

>>> r = reward(success=True, cost_usd=1.45, latency_ms=145, reputation=89)   # issue 4's check
>>> r, q_update(0.0, r, alpha=0.1, gamma=0.95)
(9.15, 0.915)
>>> reward(success=False, cost_usd=1.45, latency_ms=145, reputation=89)
-20.0
"""

from __future__ import annotations

import math
from typing import Final

from ._config import RewardScale
from ._inputs import PsiLike
from .exceptions import RouterError

FAILURE_REWARD: Final = -20.0
SUCCESS_BONUS: Final = 10.0
LATENCY_DIVISOR: Final = 500.0
REPUTATION_DIVISOR: Final = 100.0


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RouterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def reward(*, success: bool, cost_usd: float, latency_ms: float, reputation: float) -> float:
    """Seed 002: failure −20; success −cost − latency/500 + reputation/100 + 10.

    The terms are summed exactly (`math.fsum`), so the result is the correctly rounded
    sum of the (rounded) terms whatever their order.
    """
    if not success:
        return FAILURE_REWARD
    terms = (-_finite("cost_usd", cost_usd), -_finite("latency_ms", latency_ms) / LATENCY_DIVISOR,
             _finite("reputation", reputation) / REPUTATION_DIVISOR, SUCCESS_BONUS)
    return math.fsum(terms)


def q_update(q: float, reward: float, *, alpha: float, gamma: float, next_value: float = 0.0) -> float:
    """One Q-learning step: Q ← Q + α(r + γ·V(s') − Q).

    A routing decision ends its episode, so the next state is terminal and `next_value`
    is 0: γ is kept for the formula's sake and has no effect by default.

    >>> round(q_update(0.915, 9.15, alpha=0.1, gamma=0.95), 12)
    1.7385
    """
    return q + alpha * (reward + gamma * next_value - q)


def unit_reward(reward: float, scale: RewardScale) -> float:
    """The reward mapped linearly onto [0, 1] over `scale` (clipped outside it).

    UCB1, Thompson sampling and LinUCB learn this: failure (−20) is 0, the best possible
    success (11) is 1, so a success's cost, latency and reputation still count.

    >>> unit_reward(-20.0, RewardScale()), unit_reward(11.0, RewardScale()), unit_reward(9.15, RewardScale())
    (0.0, 1.0, 0.9403225806451613)
    """
    span = scale.max - scale.min
    return min(1.0, max(0.0, (reward - scale.min) / span))


def from_unit(unit: float, scale: RewardScale) -> float:
    """The inverse of `unit_reward` inside the range: a [0, 1] estimate in reward units.

    >>> from_unit(0.5, RewardScale())
    -4.5
    """
    return scale.min + unit * (scale.max - scale.min)


def exploration_scale(psi: PsiLike | None, damping: float) -> float:
    """1 − damping·density: how much of the configured exploration a request gets
    (ε_eff = ε·this, as seed 002; UCB1's c and LinUCB's α likewise). No Ψ reading: 1.

    >>> from resontinex.agents.router import PsiReading
    >>> exploration_scale(PsiReading(0.6), 0.5), exploration_scale(None, 0.5)
    (0.7, 1.0)
    """
    if psi is None:
        return 1.0
    density = _finite("psi.density", psi.density)
    if not 0.0 <= density <= 1.0:
        raise RouterError(f"psi.density must be in [0, 1], got {density!r}")
    return 1.0 - damping * density


def effective_epsilon(epsilon: float, psi: PsiLike | None, damping: float = 0.5) -> float:
    """ε_eff = ε·(1 − damping·density) (seed 002's Ψ-aware exploration; damping 0.5).

    >>> from resontinex.agents.router import PsiReading
    >>> effective_epsilon(0.1, None), effective_epsilon(0.1, PsiReading(1.0))
    (0.1, 0.05)
    """
    return epsilon * exploration_scale(psi, damping)

