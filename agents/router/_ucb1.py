"""UCB1 (Auer, Cesa-Bianchi and Fischer 2002) over the unit reward.

Every candidate never tried in this state is chosen first, in provider-id order (mode
`explore`). Then the index `u_i + c·√(ln N / n_i)` picks the provider, where `u_i` is the
mean unit reward (`unit_reward`) of provider i in this state, `n_i` its pulls, N the
candidates' pulls together and `c = ucb_c·(1 − 0.5·Ψ density)`; `ucb_c` = √2 is the
classic UCB1. The mode is `exploit` when the chosen provider also has the best mean,
else `explore`.

Deterministic: the propensity is 1.0 for the chosen provider and 0 for the others
(ties on the index go to the first provider id).

>>> import numpy as np
>>> from resontinex.agents.router import RoutingConfig
>>> p, rng = UCB1.fresh(RoutingConfig()), np.random.default_rng(0)
>>> p.choose("s:*:*", ["b", "a"], None, None, rng)
Choice(provider_id='a', mode='explore', q_value=None, propensity=1.0, policy='ucb1')
>>> p = p.update("s:*:*", "a", 9.15)
>>> p.choose("s:*:*", ["b", "a"], None, None, rng).provider_id, p.value("s:*:*", "a")
('b', 9.15)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import _codec as codec
from ._base import Choice, FeatureMap, TabularPolicy, candidate_ids, first_max, one_hot, running_mean
from ._config import PolicyName, RoutingConfig
from ._inputs import PsiLike
from ._reward import exploration_scale, unit_reward


@dataclass(frozen=True, slots=True)
class UcbArm:
    """Pulls, mean reward (reward units) and mean unit reward of one (state, provider)."""

    n: int = 0
    mean: float = 0.0
    unit: float = 0.0


@dataclass(frozen=True, slots=True)
class UCB1(TabularPolicy[UcbArm]):
    """Upper confidence bounds over the sample means."""

    name: ClassVar[PolicyName] = "ucb1"
    cfg: RoutingConfig
    arms: Mapping[str, Mapping[str, UcbArm]] = field(default_factory=dict)

    def fresh_arm(self) -> UcbArm:
        return UcbArm()

    def learn(self, arm: UcbArm, reward: float, features: Sequence[float] | None) -> UcbArm:
        unit = unit_reward(reward, self.cfg.reward_scale)
        return UcbArm(arm.n + 1, running_mean(arm.mean, arm.n, reward), running_mean(arm.unit, arm.n, unit))

    def arm_value(self, arm: UcbArm) -> float | None:
        return arm.mean if arm.n else None

    def arm_count(self, arm: UcbArm) -> int:
        return arm.n

    def _pick(self, state_key: str, ids: tuple[str, ...], psi: PsiLike | None) -> tuple[str, str]:
        arms = [self.arm(state_key, pid) for pid in ids]
        for pid, arm in zip(ids, arms, strict=True):
            if arm.n == 0:
                return pid, "explore"
        c = self.cfg.ucb_c * exploration_scale(psi, self.cfg.psi_damping)
        log_total = math.log(sum(a.n for a in arms))
        index = [a.unit + c * math.sqrt(log_total / a.n) for a in arms]
        chosen = first_max(index)
        best_mean = max(a.unit for a in arms)
        return ids[chosen], "exploit" if arms[chosen].unit == best_mean else "explore"

    def probabilities(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
                      psi: PsiLike | None, rng: np.random.Generator) -> dict[str, float]:
        ids = candidate_ids(providers)
        return one_hot(ids, self._pick(state_key, ids, psi)[0])

    def choose(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
               psi: PsiLike | None, rng: np.random.Generator) -> Choice:
        ids = candidate_ids(providers)
        pid, mode = self._pick(state_key, ids, psi)
        return Choice(pid, mode, self.value(state_key, pid), 1.0, self.name)  # type: ignore[arg-type]

    def arm_to_dict(self, arm: UcbArm) -> dict[str, Any]:
        return {"n": arm.n, "mean": arm.mean, "unit": arm.unit}

    @classmethod
    def arm_from_dict(cls, data: object, cfg: RoutingConfig, path: str) -> UcbArm:
        raw = codec.mapping(data, path, required=("n", "mean", "unit"), allowed=("n", "mean", "unit"))
        unit = codec.real(raw["unit"], codec.child(path, "unit"), 0.0, 1.0)
        return UcbArm(codec.count(raw["n"], codec.child(path, "n")), codec.real(raw["mean"], codec.child(path, "mean")),
                      unit)
