"""LinUCB with disjoint linear models (Li, Chu, Langford and Schapire 2010).

Per (state, provider): A = λI + Σ x xᵀ and b = Σ s·x over the feature vectors x the
provider was chosen with (`provider_features`: bias, price, latency, reputation,
capacity, normalised) and the unit rewards s (`unit_reward`). With θ = A⁻¹b the score of
a candidate offering x is θ·x + α·√(xᵀA⁻¹x), α = `linucb_alpha`·(1 − 0.5·Ψ density),
λ = `linucb_ridge`. The highest score wins; ties go to the first provider id.

Deterministic: the propensity is 1.0 for the chosen provider and 0 for the others. The
mode is `exploit` when the choice also has the highest predicted reward θ·x, else
`explore`. The choice's `q_value` is that prediction in reward units (None for a
provider never updated in the state); `value` (status, anomalies) is the provider's
mean observed reward there.

>>> import numpy as np
>>> from resontinex.agents.router import RoutingConfig
>>> p = LinUCB.fresh(RoutingConfig())
>>> x = {"a": (1.0, 0.2, 0.1, 0.9, 0.5), "b": (1.0, 0.6, 0.3, 0.8, 0.5)}
>>> for _ in range(20):
...     p = p.update("s:*:*", "a", 9.0, x["a"]).update("s:*:*", "b", -20.0, x["b"])
>>> p.choose("s:*:*", ["a", "b"], x, None, np.random.default_rng(0)).provider_id
'a'
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
from ._features import DIMENSION
from ._inputs import PsiLike
from ._reward import exploration_scale, from_unit, unit_reward
from .exceptions import RouterError, TableError

Matrix = tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True)
class LinArm:
    """A (d×d, row-major), b (d), the update count and the mean reward (reward units);
    A None: λI (never updated)."""

    A: Matrix | None = None
    b: tuple[float, ...] | None = None
    n: int = 0
    mean: float = 0.0


def _vector(features: Sequence[float] | None, what: str) -> np.ndarray:
    if features is None:
        raise RouterError(f"LinUCB needs the feature vector of {what}")
    x = np.asarray(features, dtype=float)
    if x.shape != (DIMENSION,) or not np.all(np.isfinite(x)):
        raise RouterError(f"the feature vector of {what} must be {DIMENSION} finite numbers, got {features!r}")
    return x


@dataclass(frozen=True, slots=True)
class LinUCB(TabularPolicy[LinArm]):
    """Disjoint LinUCB over provider features."""

    name: ClassVar[PolicyName] = "linucb"
    cfg: RoutingConfig
    arms: Mapping[str, Mapping[str, LinArm]] = field(default_factory=dict)

    def fresh_arm(self) -> LinArm:
        return LinArm()

    def _matrices(self, arm: LinArm) -> tuple[np.ndarray, np.ndarray]:
        if arm.A is None or arm.b is None:
            return self.cfg.linucb_ridge * np.eye(DIMENSION), np.zeros(DIMENSION)
        return np.array(arm.A, dtype=float), np.array(arm.b, dtype=float)

    def learn(self, arm: LinArm, reward: float, features: Sequence[float] | None) -> LinArm:
        x = _vector(features, "the updated provider")
        A, b = self._matrices(arm)
        A = A + np.outer(x, x)
        b = b + unit_reward(reward, self.cfg.reward_scale) * x
        return LinArm(tuple(tuple(float(v) for v in row) for row in A), tuple(float(v) for v in b),
                      arm.n + 1, running_mean(arm.mean, arm.n, reward))

    def arm_value(self, arm: LinArm) -> float | None:
        return arm.mean if arm.n else None

    def arm_count(self, arm: LinArm) -> int:
        return arm.n

    def _scores(self, state_key: str, ids: tuple[str, ...], features: FeatureMap | None,
                psi: PsiLike | None) -> tuple[list[float], list[float]]:
        if features is None:
            raise RouterError("LinUCB needs the candidates' feature vectors (features_by_provider)")
        alpha = self.cfg.linucb_alpha * exploration_scale(psi, self.cfg.psi_damping)
        predicted, upper = [], []
        for pid in ids:
            x = _vector(features.get(pid), f"provider {pid!r}")
            A, b = self._matrices(self.arm(state_key, pid))
            solved = np.linalg.solve(A, np.column_stack((b, x)))
            mean = float(solved[:, 0] @ x)
            width = math.sqrt(max(0.0, float(x @ solved[:, 1])))
            predicted.append(mean)
            upper.append(mean + alpha * width)
        return predicted, upper

    def probabilities(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
                      psi: PsiLike | None, rng: np.random.Generator) -> dict[str, float]:
        ids = candidate_ids(providers)
        return one_hot(ids, ids[first_max(self._scores(state_key, ids, features, psi)[1])])

    def choose(self, state_key: str, providers: Iterable[str], features: FeatureMap | None,
               psi: PsiLike | None, rng: np.random.Generator) -> Choice:
        ids = candidate_ids(providers)
        predicted, upper = self._scores(state_key, ids, features, psi)
        chosen = first_max(upper)
        pid = ids[chosen]
        mode = "exploit" if predicted[chosen] == max(predicted) else "explore"
        q = from_unit(predicted[chosen], self.cfg.reward_scale) if self.observations(state_key, pid) else None
        return Choice(pid, mode, q, 1.0, self.name)  # type: ignore[arg-type]

    def arm_to_dict(self, arm: LinArm) -> dict[str, Any]:
        A, b = self._matrices(arm)
        return {"A": A.tolist(), "b": b.tolist(), "n": arm.n, "mean": arm.mean}

    @classmethod
    def arm_from_dict(cls, data: object, cfg: RoutingConfig, path: str) -> LinArm:
        raw = codec.mapping(data, path, required=("A", "b", "n", "mean"), allowed=("A", "b", "n", "mean"))
        a_path, b_path = codec.child(path, "A"), codec.child(path, "b")
        A = tuple(tuple(codec.real(v, f"{a_path}[{i}][{j}]")
                        for j, v in enumerate(codec.sequence(row, f"{a_path}[{i}]", DIMENSION)))
                  for i, row in enumerate(codec.sequence(raw["A"], a_path, DIMENSION)))
        b = tuple(codec.real(v, f"{b_path}[{i}]") for i, v in enumerate(codec.sequence(raw["b"], b_path, DIMENSION)))
        matrix = np.array(A)
        if not np.allclose(matrix, matrix.T) or np.any(np.linalg.eigvalsh(matrix) <= 0):
            raise TableError(a_path, "must be symmetric positive definite (λI plus outer products)")
        n = codec.count(raw["n"], codec.child(path, "n"))
        return LinArm(A, b, n, codec.real(raw["mean"], codec.child(path, "mean")))
