"""γ, ω and consensus exactly as CONTRACT §3.9 defines them (seed 003's reference).

γ = coordinated quality / mean(baseline qualities), 1.0 when that mean ≤ 0;
ω = coordinated quality − max(baseline qualities); consensus = mean pairwise cosine
similarity of the agents' responses (fewer than 2 responses: 1.0).

>>> m = coordination_metrics(0.84, [0.6, 0.8], consensus_rate=0.9)
>>> round(m.gamma, 6), round(m.omega, 6), m.effective, m.emergence
(1.2, 0.04, True, True)
>>> gamma(0.5, [0.0, 0.0]), omega(0.5, [])
(1.0, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CoordinationMetrics", "consensus", "coordination_metrics", "gamma", "omega"]


def gamma(coordinated: float, baselines: Sequence[float]) -> float:
    """The coordination effect: the team's quality over its members' mean quality alone."""
    mean = float(np.mean(baselines)) if len(baselines) else 0.0
    return coordinated / mean if mean > 0 else 1.0


def omega(coordinated: float, baselines: Sequence[float]) -> float:
    """Emergence: how far the team's quality is above its best member's alone."""
    return coordinated - max(baselines, default=0.0)


def consensus(embeddings: npt.ArrayLike) -> float:
    """Mean pairwise cosine similarity of the rows of `embeddings` (one per response).

    >>> consensus([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # pairs: 1, 0, 0
    0.3333333333333333
    >>> consensus([[3.0, 4.0]]), consensus([[0.0, 0.0], [1.0, 0.0]])
    (1.0, 0.0)
    """
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return 1.0
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)  # a zero vector is like nothing
    sims = unit @ unit.T
    upper = sims[np.triu_indices(n, k=1)]
    return float(np.clip(upper.mean(), -1.0, 1.0))


@dataclass(frozen=True, slots=True)
class CoordinationMetrics:
    coordinated_quality: float
    baseline_qualities: tuple[float, ...]
    gamma: float
    omega: float
    consensus_rate: float

    @property
    def effective(self) -> bool:
        """γ > 1: the team did better than its members' mean alone."""
        return self.gamma > 1.0

    @property
    def emergence(self) -> bool:
        """ω > 0: the team did better than its best member alone."""
        return self.omega > 0.0


def coordination_metrics(coordinated: float, baselines: Sequence[float], *, consensus_rate: float) -> CoordinationMetrics:
    return CoordinationMetrics(coordinated, tuple(baselines), gamma(coordinated, baselines),
                               omega(coordinated, baselines), consensus_rate)
