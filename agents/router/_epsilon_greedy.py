"""ε-greedy Q-learning (seed 002's Strategist).

Choice: with probability ε_eff = ε·(1 − 0.5·Ψ density) explore (a provider uniformly at
random among the n candidates, mode `explore`), else exploit (the provider with the
highest Q, uniformly among ties, mode `exploit`). The propensity is the total
probability of the chosen provider over both branches:
ε_eff/n + (1 − ε_eff)·[greedy]/k, with k the number of tied greedy providers.

Update: Q ← Q + α(r + γ·0 − Q) (the next state is terminal), then ε ← max(ε_min, ε·0.995):
ε decays once per feedback. An unseen provider's Q is 0.

>>> import numpy as np
>>> from resontinex.agents.router import RoutingConfig
>>> p = EpsilonGreedy.fresh(RoutingConfig()).update("llm:a100:us", "akash", 9.15)
>>> p.value("llm:a100:us", "akash"), p.epsilon
(0.915, 0.0995)
>>> probs = p.probabilities("llm:a100:us", ["akash", "vast"], None, None, np.random.default_rng(0))
>>> {pid: round(pr, 6) for pid, pr in probs.items()}
{'akash': 0.95025, 'vast': 0.04975}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self

import numpy as np

from . import _codec as codec
from ._base import Choice, FeatureMap, TabularPolicy, candidate_ids
from ._config import PolicyName, RoutingConfig
from ._inputs import PsiLike
from ._reward import effective_epsilon, q_update


@dataclass(frozen=True, slots=True)
class QArm:
    """Q-value and visit count of one (state, provider)."""

    q: float = 0.0
    n: int = 0


@dataclass(frozen=True, slots=True)
class EpsilonGreedy(TabularPolicy[QArm]):
    """ε-greedy over Q-values; `epsilon` is the current (decayed) ε."""

    name: ClassVar[PolicyName] = "epsilon_greedy"
    extra_keys: ClassVar[tuple[str, ...]] = ("epsilon",)
    cfg: RoutingConfig
    epsilon: float = 0.1
    arms: Mapping[str, Mapping[str, QArm]] = field(default_factory=dict)

    @classmethod
    def fresh(cls, cfg: RoutingConfig) -> Self:
        return cls(cfg=cfg, epsilon=cfg.epsilon)

    def fresh_arm(self) -> QArm:
        return QArm()

    def learn(self, arm: QArm, reward: float, features: Sequence[float] | None) -> QArm:
        alpha = 1.0 / (arm.n + 1) if self.cfg.alpha_schedule == "sample_average" else self.cfg.alpha
        return QArm(q_update(arm.q, reward, alpha=alpha, gamma=self.cfg.gamma), arm.n + 1)

    def update(self, state_key: str, provider_id: str, reward: float,
               features: Sequence[float] | None = None) -> Self:
        learned = TabularPolicy.update(self, state_key, provider_id, reward, features)
        return replace(learned, epsilon=self.decayed_epsilon())

    def decayed_epsilon(self) -> float:
        """ε after one more feedback: ×`epsilon_decay`, floored at `epsilon_min`.

        >>> from resontinex.agents.router import RoutingConfig
        >>> EpsilonGreedy(RoutingConfig(), epsilon=0.01).decayed_epsilon()
        0.01
        """
        return max(self.cfg.epsilon_min, self.epsilon * self.cfg.epsilon_decay)

    def arm_value(self, arm: QArm) -> float:
        return arm.q

    def arm_count(self, arm: QArm) -> int:
        return arm.n

    def _greedy(self, state_key: str, ids: tuple[str, ...]) -> tuple[str, ...]:
        qs = [self.arm(state_key, pid).q for pid in ids]
        best = max(qs)
        return tuple(pid for pid, q in zip(ids, qs, strict=True) if q == best)

    def probabilities(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
                      psi: PsiLike | None, rng: np.random.Generator) -> dict[str, float]:
        ids = candidate_ids(providers)
        eps = effective_epsilon(self.epsilon, psi, self.cfg.psi_damping)
        greedy = set(self._greedy(state_key, ids))
        share = (1.0 - eps) / len(greedy)
        return {pid: eps / len(ids) + (share if pid in greedy else 0.0) for pid in ids}

    def choose(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
               psi: PsiLike | None, rng: np.random.Generator) -> Choice:
        ids = candidate_ids(providers)
        eps = effective_epsilon(self.epsilon, psi, self.cfg.psi_damping)
        greedy = self._greedy(state_key, ids)
        if rng.random() < eps:
            pid, mode = ids[int(rng.integers(len(ids)))], "explore"
        else:
            pid, mode = greedy[int(rng.integers(len(greedy)))], "exploit"
        propensity = eps / len(ids) + ((1.0 - eps) / len(greedy) if pid in greedy else 0.0)
        return Choice(pid, mode, self.arm(state_key, pid).q, propensity, self.name)  # type: ignore[arg-type]

    def extra_state(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    @classmethod
    def extra_from_dict(cls, data: Mapping[str, Any], cfg: RoutingConfig, path: str) -> dict[str, Any]:
        eps = data.get("epsilon", cfg.epsilon)
        return {"epsilon": codec.real(eps, codec.child(path, "epsilon"), 0.0, 1.0)}

    def arm_to_dict(self, arm: QArm) -> dict[str, Any]:
        return {"q": arm.q, "n": arm.n}

    @classmethod
    def arm_from_dict(cls, data: object, cfg: RoutingConfig, path: str) -> QArm:
        raw = codec.mapping(data, path, required=("q",), allowed=("q", "n"))
        return QArm(codec.real(raw["q"], codec.child(path, "q")), codec.count(raw.get("n", 0), codec.child(path, "n")))
