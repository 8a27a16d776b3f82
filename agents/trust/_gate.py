"""Scalar trust evaluation (CONTRACT section 5)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from types import MemberDescriptorType
from typing import Any

from ._config import TrustConfig
from ._inputs import InputVector
from ._math import HI, LO, logit, round4, sigmoid
from ._names import DEFER, EXECUTE, REVIEW


@dataclass(frozen=True, slots=True)
class TrustResult:
    """The outcome of one evaluation.

    ``decision`` is the final verb: ``tier_decision`` after the entropy modifier
    (execute → defer) or, failing that, the trust floor modifier (execute → review).
    ``contributions`` are the weighted logit terms in ``SIGNALS`` order; they sum to ``z``.
    """

    raw_score: float
    score: float
    tier: str
    tier_decision: str
    decision: str
    floor_violation: bool
    entropy_flag: bool
    z: float
    contributions: tuple[float, float, float]

    def as_dict(self, calibrated_score: float | None = None) -> dict[str, Any]:
        """The ``trust`` object of a decision event (CONTRACT section 3.2)."""
        return {
            "score": self.score,
            "raw_score": self.raw_score,
            "tier": self.tier,
            "decision": self.decision,
            "floor_violation": self.floor_violation,
            "entropy_flag": self.entropy_flag,
            "calibrated_score": calibrated_score,
        }


# The generated frozen __init__ assigns each field through object.__setattr__; setting
# the slots directly builds the same object in about half the time on the hot path.
def _slot_setter(name: str) -> Callable[[TrustResult, object], None]:
    """The ``__set__`` of one of TrustResult's slot descriptors."""
    slot: MemberDescriptorType = vars(TrustResult)[name]
    return slot.__set__


_new = object.__new__
_set_raw = _slot_setter("raw_score")
_set_score = _slot_setter("score")
_set_tier = _slot_setter("tier")
_set_tier_decision = _slot_setter("tier_decision")
_set_decision = _slot_setter("decision")
_set_floor = _slot_setter("floor_violation")
_set_entropy = _slot_setter("entropy_flag")
_set_z = _slot_setter("z")
_set_contributions = _slot_setter("contributions")


def evaluate_values(a: float, r: float, c: float, config: TrustConfig) -> TrustResult:
    """Evaluate already-validated signals (finite floats in [0, 1]); no checks are made.

    The hot path of the stream, which validates events before it gets here. Use
    :func:`evaluate` with an :class:`InputVector` for untrusted values.

    >>> from resontinex.agents.trust import default_config
    >>> evaluate_values(0.8, 0.3, 0.2, default_config()).decision
    'execute'
    """
    wa, wr, wc = config.weights
    ca = LO if a < LO else (HI if a > HI else a)
    cr = LO if r < LO else (HI if r > HI else r)
    cc = LO if c < LO else (HI if c > HI else c)
    ta = wa * logit(ca)
    tr = wr * logit(1.0 - cr)
    tc = wc * logit(1.0 - cc)
    z = ta + tr + tc
    raw = sigmoid(z)
    score = round4(raw)

    i = bisect_left(config._thresholds, score)
    tier_decision = config._tier_decisions[i]
    floor_violation = score < config.trust_floor
    entropy_flag = c > config.entropy_threshold
    decision = tier_decision
    if decision == EXECUTE:
        if entropy_flag:
            decision = DEFER
        elif floor_violation:
            decision = REVIEW

    result = _new(TrustResult)
    _set_raw(result, raw)
    _set_score(result, score)
    _set_tier(result, config._tiers[i])
    _set_tier_decision(result, tier_decision)
    _set_decision(result, decision)
    _set_floor(result, floor_violation)
    _set_entropy(result, entropy_flag)
    _set_z(result, z)
    _set_contributions(result, (ta, tr, tc))
    return result


def evaluate(inputs: InputVector, config: TrustConfig) -> TrustResult:
    """Score a validated input vector and decide its verb (CONTRACT section 5).

    Each signal is clamped to [1e-6, 1 - 1e-6];
    z = w_a·logit(a) + w_r·logit(1 - r) + w_c·logit(1 - c); raw_score = sigmoid(z)
    (z clamped to ±500); score = round(raw_score, 4); the tier is the first (ascending)
    whose threshold is >= score. block → abort, review → review, monitor and pass →
    execute; an execute becomes defer when c > entropy_threshold, otherwise review when
    score < trust_floor.

    >>> from resontinex.agents.trust import default_config
    >>> result = evaluate(InputVector(0.8, 0.3, 0.2), default_config())
    >>> round(result.z, 6), result.score, result.tier, result.decision
    (1.197646, 0.7681, 'pass', 'execute')
    >>> evaluate(InputVector(0.8, 0.3, 0.9), default_config()).decision
    'defer'
    """
    return evaluate_values(inputs.alignment_score, inputs.epistemic_risk, inputs.confidence_band, config)
