"""Counters and a health snapshot around the gate."""

from __future__ import annotations

import time
from typing import Any

from ._config import TrustConfig, policy_version
from ._gate import TrustResult, evaluate
from ._inputs import InputVector
from ._names import DECISIONS, TIERS
from .exceptions import InvalidInput

# Seed 001's alerting threshold: more than 0.5% of evaluations failing.
_DEGRADED_ERROR_RATE = 0.005
_MIN_ATTEMPTS_FOR_RATE = 100


class TrustMonitor:
    """Evaluates signals under one config and counts what happened.

    Not thread-safe: one monitor per worker (or per event loop).

    >>> from resontinex.agents.trust import default_config
    >>> monitor = TrustMonitor(default_config())
    >>> monitor.evaluate(0.8, 0.3, 0.2).decision
    'execute'
    >>> health = monitor.health()
    >>> health["status"], health["evaluation_count"], health["decisions"]["execute"]
    ('healthy', 1, 1)
    """

    __slots__ = ("config", "_started", "_evaluations", "_errors", "_floor_violations",
                 "_entropy_flags", "_decisions", "_tiers")

    def __init__(self, config: TrustConfig) -> None:
        self.config = config
        self._started = time.monotonic()
        self._evaluations = 0
        self._errors = 0
        self._floor_violations = 0
        self._entropy_flags = 0
        self._decisions = dict.fromkeys(DECISIONS, 0)
        self._tiers = dict.fromkeys(TIERS, 0)

    def evaluate(self, alignment_score: float, epistemic_risk: float, confidence_band: float) -> TrustResult:
        """Validate and evaluate; an invalid input is counted as an error and re-raised."""
        try:
            inputs = InputVector(alignment_score, epistemic_risk, confidence_band)
        except InvalidInput:
            self._errors += 1
            raise
        result = evaluate(inputs, self.config)
        self._evaluations += 1
        self._decisions[result.decision] += 1
        self._tiers[result.tier] += 1
        self._floor_violations += result.floor_violation
        self._entropy_flags += result.entropy_flag
        return result

    def health(self) -> dict[str, Any]:
        """JSON-able snapshot. ``status`` is ``degraded`` when over 0.5% of at least 100
        attempts failed validation, else ``healthy``."""
        attempts = self._evaluations + self._errors
        degraded = attempts >= _MIN_ATTEMPTS_FOR_RATE and self._errors / attempts > _DEGRADED_ERROR_RATE
        return {
            "status": "degraded" if degraded else "healthy",
            "uptime_seconds": round(time.monotonic() - self._started, 3),
            "evaluation_count": self._evaluations,
            "error_count": self._errors,
            "config_hash": policy_version(self.config),
            "decisions": dict(self._decisions),
            "tiers": dict(self._tiers),
            "floor_violations": self._floor_violations,
            "entropy_flags": self._entropy_flags,
        }
