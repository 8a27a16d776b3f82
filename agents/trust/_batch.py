"""Vectorised trust evaluation, bit-identical to the scalar path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._config import TrustConfig
from ._inputs import SIGNALS
from ._math import HI, LO, batch_primitives, round4_array
from ._names import DECISIONS, DEFER, EXECUTE, REVIEW, TIER_DECISIONS, TIERS
from .exceptions import InvalidInput

_EXECUTE = DECISIONS.index(EXECUTE)
_DEFER = DECISIONS.index(DEFER)
_REVIEW = DECISIONS.index(REVIEW)
_TIER_DECISION = np.array([DECISIONS.index(TIER_DECISIONS[name]) for name in TIERS], dtype=np.int8)


@dataclass(frozen=True, slots=True, eq=False)
class BatchResult:
    """Per-row results of :func:`evaluate_batch`, as read-only arrays.

    ``tier`` indexes ``tier_names`` (``TIERS``) and ``decision`` indexes
    ``decision_names`` (``DECISIONS``, least to most restrictive, so ``max`` picks the
    strictest verb). ``raw_score`` and ``score`` equal the scalar path's bit for bit.
    """

    raw_score: npt.NDArray[np.float64]
    score: npt.NDArray[np.float64]
    tier: npt.NDArray[np.int8]
    decision: npt.NDArray[np.int8]
    floor_violation: npt.NDArray[np.bool_]
    entropy_flag: npt.NDArray[np.bool_]
    tier_names: tuple[str, ...] = TIERS
    decision_names: tuple[str, ...] = DECISIONS

    def __len__(self) -> int:
        return len(self.score)


def _signal(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise InvalidInput(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    bad = ~((array >= 0.0) & (array <= 1.0))  # NaN compares false, so it is caught here too
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"{name}[{i}] must be finite and in [0, 1], got {float(array[i])!r}")
    return array


def evaluate_batch(
    a: npt.ArrayLike, r: npt.ArrayLike, c: npt.ArrayLike, config: TrustConfig
) -> BatchResult:
    """Evaluate many signal triples at once; same rules and same numbers as the scalar path.

    ``a``, ``r`` and ``c`` are one-dimensional arrays of equal length (float64, or
    convertible), every value finite and in [0, 1]; otherwise :class:`InvalidInput`
    names the signal and the first bad row.

    >>> import numpy as np
    >>> from resontinex.agents.trust import default_config
    >>> out = evaluate_batch(np.array([0.8, 0.1]), np.array([0.3, 0.9]), np.array([0.2, 0.2]),
    ...                      default_config())
    >>> out.score.tolist(), [out.decision_names[i] for i in out.decision]
    ([0.7681, 0.1853], ['execute', 'abort'])
    """
    a, r, c = (_signal(name, values) for name, values in zip(SIGNALS, (a, r, c)))
    if not a.shape == r.shape == c.shape:
        raise InvalidInput(f"signal arrays differ in length: {a.shape[0]}, {r.shape[0]}, {c.shape[0]}")
    logit, sigmoid = batch_primitives()
    wa, wr, wc = config.weights
    # Same operations in the same order as evaluate_values, so each rounds identically.
    z = (
        wa * logit(np.clip(a, LO, HI))
        + wr * logit(1.0 - np.clip(r, LO, HI))
        + wc * logit(1.0 - np.clip(c, LO, HI))
    )
    raw = sigmoid(z)
    score = round4_array(raw)
    entropy_flag = c > config.entropy_threshold
    return _frozen(raw, score, *_judge(score, entropy_flag, config), entropy_flag)


def rejudge(result: BatchResult, scores: npt.NDArray[np.float64], config: TrustConfig) -> BatchResult:
    """`result` with tier, decision and floor violation taken from `scores` (a tenant's
    calibrated scores, rounded to 4 places) instead of its own score; `raw_score`, `score`
    and `entropy_flag` stay.

    >>> import numpy as np
    >>> from resontinex.agents.trust import default_config
    >>> out = evaluate_batch(np.array([0.8]), np.array([0.3]), np.array([0.2]), default_config())
    >>> again = rejudge(out, np.array([0.4]), default_config())
    >>> again.score.tolist(), again.tier_names[again.tier[0]], again.decision_names[again.decision[0]]
    ([0.7681], 'review', 'review')
    """
    return _frozen(result.raw_score, result.score, *_judge(scores, result.entropy_flag, config), result.entropy_flag)


def _judge(score: npt.NDArray[np.float64], entropy_flag: npt.NDArray[np.bool_],
           config: TrustConfig) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """(tier, decision, floor_violation) of each score."""
    # The config's tiers are in threshold order; map each position to its index in TIERS.
    position = np.searchsorted(np.asarray(config._thresholds), score, side="left")
    tier = np.array([TIERS.index(name) for name in config._tiers], dtype=np.int8)[position]
    tier_decision = _TIER_DECISION[tier]
    floor_violation = score < config.trust_floor
    execute = tier_decision == _EXECUTE
    decision = np.where(
        execute & entropy_flag, _DEFER, np.where(execute & floor_violation, _REVIEW, tier_decision)
    ).astype(np.int8)
    return tier, decision, floor_violation


def _frozen(raw_score: npt.NDArray[np.float64], score: npt.NDArray[np.float64], tier: npt.NDArray[np.int8],
            decision: npt.NDArray[np.int8], floor_violation: npt.NDArray[np.bool_],
            entropy_flag: npt.NDArray[np.bool_]) -> BatchResult:
    for array in (raw_score, score, tier, decision, floor_violation, entropy_flag):
        array.flags.writeable = False
    return BatchResult(raw_score, score, tier, decision, floor_violation, entropy_flag)
