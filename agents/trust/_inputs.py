"""The validated signal triple."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from .exceptions import InvalidInput

SIGNALS = ("alignment_score", "epistemic_risk", "confidence_band")


def unit_interval(name: str, value: object) -> float:
    """``value`` as a float if it is a real number (not a bool), finite, in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInput(f"{name} must be a real number in [0, 1], got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{name} must be finite, got {number!r}")
    if not 0.0 <= number <= 1.0:
        raise InvalidInput(f"{name} must be in [0, 1], got {number!r}")
    return number


@dataclass(frozen=True, slots=True)
class InputVector:
    """The three trust signals, each a finite real in [0, 1], stored as floats.

    >>> InputVector(0.8, 0.3, 0.2)
    InputVector(alignment_score=0.8, epistemic_risk=0.3, confidence_band=0.2)
    >>> InputVector(0.8, float("nan"), 0.2)
    Traceback (most recent call last):
    ...
    resontinex.agents.trust.exceptions.InvalidInput: epistemic_risk must be finite, got nan
    """

    alignment_score: float
    epistemic_risk: float
    confidence_band: float

    def __post_init__(self) -> None:
        for name in SIGNALS:
            object.__setattr__(self, name, unit_interval(name, getattr(self, name)))
