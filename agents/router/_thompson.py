"""Thompson sampling with a Beta posterior per (state, provider).

Reward to success: the reward is mapped onto [0, 1] (`unit_reward`: failure −20 → 0, the
best success 11 → 1) and counts as that fraction of a success: α += s, β += 1 − s (the
Beta-Bernoulli update with a fractional outcome; failure is a whole failure). The
posterior mean α/(α+β) therefore ranks providers by expected reward, cost and latency
included. Prior: Beta(`thompson.prior_alpha`, `thompson.prior_beta`).

Choice and propensity: `thompson.draws` (D) samples of every candidate's posterior are
drawn with the given generator; the winner of the first sample is the choice (an exact
Thompson draw) and its propensity is the share of the D samples it wins: a Monte Carlo
estimate of the true probability, never below 1/D, with standard error
√(p(1−p)/D) (≤ 0.016 for D = 1000). `probabilities` returns every candidate's share of
the same D samples, so it sums to 1 and agrees with `choose` for the same generator
state. The mode is `exploit` when the choice has the highest posterior mean, else
`explore`. Ψ does not change Thompson sampling (its exploration is the posterior's).

>>> import numpy as np
>>> from resontinex.agents.router import RoutingConfig
>>> p = Thompson.fresh(RoutingConfig()).update("s:*:*", "a", 9.15)
>>> arm = p.arm("s:*:*", "a")
>>> round(arm.alpha, 6), round(arm.beta, 6), arm.n
(1.940323, 1.059677, 1)
>>> probs = p.probabilities("s:*:*", ["a", "b"], None, None, np.random.default_rng(7))
>>> round(sum(probs.values()), 12), probs["a"] > probs["b"]
(1.0, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import _codec as codec
from ._base import Choice, FeatureMap, TabularPolicy, candidate_ids
from ._config import PolicyName, RoutingConfig
from ._inputs import PsiLike
from ._reward import from_unit, unit_reward


@dataclass(frozen=True, slots=True)
class BetaArm:
    """Beta(alpha, beta) posterior of one (state, provider), and its update count."""

    alpha: float
    beta: float
    n: int = 0

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True, slots=True)
class Thompson(TabularPolicy[BetaArm]):
    """Thompson sampling over Beta posteriors of the unit reward."""

    name: ClassVar[PolicyName] = "thompson"
    cfg: RoutingConfig
    arms: Mapping[str, Mapping[str, BetaArm]] = field(default_factory=dict)

    def fresh_arm(self) -> BetaArm:
        return BetaArm(self.cfg.thompson.prior_alpha, self.cfg.thompson.prior_beta)

    def learn(self, arm: BetaArm, reward: float, features: Sequence[float] | None) -> BetaArm:
        s = unit_reward(reward, self.cfg.reward_scale)
        return BetaArm(arm.alpha + s, arm.beta + (1.0 - s), arm.n + 1)

    def arm_value(self, arm: BetaArm) -> float | None:
        """The posterior mean in reward units; None before the first update."""
        return from_unit(arm.mean, self.cfg.reward_scale) if arm.n else None

    def arm_count(self, arm: BetaArm) -> int:
        return arm.n

    def _winners(self, state_key: str, ids: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
        arms = [self.arm(state_key, pid) for pid in ids]
        a = np.array([arm.alpha for arm in arms])
        b = np.array([arm.beta for arm in arms])
        samples = rng.beta(a, b, size=(self.cfg.thompson.draws, len(ids)))
        return np.asarray(np.argmax(samples, axis=1), dtype=np.intp)

    def probabilities(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
                      psi: PsiLike | None, rng: np.random.Generator) -> dict[str, float]:
        ids = candidate_ids(providers)
        wins = np.bincount(self._winners(state_key, ids, rng), minlength=len(ids))
        return {pid: int(w) / self.cfg.thompson.draws for pid, w in zip(ids, wins, strict=True)}

    def choose(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
               psi: PsiLike | None, rng: np.random.Generator) -> Choice:
        ids = candidate_ids(providers)
        winners = self._winners(state_key, ids, rng)
        chosen = int(winners[0])
        propensity = int(np.count_nonzero(winners == chosen)) / self.cfg.thompson.draws
        means = [self.arm(state_key, pid).mean for pid in ids]
        mode = "exploit" if means[chosen] == max(means) else "explore"
        pid = ids[chosen]
        return Choice(pid, mode, self.value(state_key, pid), propensity, self.name)  # type: ignore[arg-type]

    def arm_to_dict(self, arm: BetaArm) -> dict[str, Any]:
        return {"alpha": arm.alpha, "beta": arm.beta, "n": arm.n}

    @classmethod
    def arm_from_dict(cls, data: object, cfg: RoutingConfig, path: str) -> BetaArm:
        raw = codec.mapping(data, path, required=("alpha", "beta", "n"), allowed=("alpha", "beta", "n"))
        return BetaArm(codec.real(raw["alpha"], codec.child(path, "alpha"), 0.0, lo_open=True),
                       codec.real(raw["beta"], codec.child(path, "beta"), 0.0, lo_open=True),
                       codec.count(raw["n"], codec.child(path, "n")))
