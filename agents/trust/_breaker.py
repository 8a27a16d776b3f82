"""Seed 001's circuit breaker: a worker whose processing keeps failing sends every
decision to human review until its error rate recovers.

An error is an input the worker could not process as designed (a `processing_error`
dead letter) or a decision taken on state it could not trust (spend not yet counted
because the budget state lags). The rate is errors / events over the last `window_s`
seconds, kept in one-second buckets. The breaker opens when the rate reaches
`open_rate` over at least `min_events` events, and closes when it falls below
`close_rate` (the gap keeps it from flapping).

>>> breaker = CircuitBreaker(BreakerConfig(window_s=10, min_events=4))
>>> breaker.record(0.0, events=4, errors=3)
'open'
>>> breaker.is_open, breaker.record(5.0, events=10, errors=0)
(True, None)
>>> breaker.record(11.5, events=10, errors=0)  # the failures left the window
'closed'
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from .exceptions import ConfigError

__all__ = ["BreakerConfig", "CircuitBreaker", "Transition"]

Transition = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """`circuit_breaker` in `trust_gate.yaml`; every value is checked here."""

    open_rate: float = 0.5
    close_rate: float = 0.1
    window_s: float = 60.0
    min_events: int = 20

    def __post_init__(self) -> None:
        for key in ("open_rate", "close_rate", "window_s"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"circuit_breaker.{key}", f"must be a finite number, got {value!r}")
        if not 0.0 < self.open_rate <= 1.0:
            raise ConfigError("circuit_breaker.open_rate", f"must be in (0, 1], got {self.open_rate!r}")
        if not 0.0 <= self.close_rate < self.open_rate:
            raise ConfigError("circuit_breaker.close_rate", f"must be in [0, open_rate), got {self.close_rate!r}")
        if self.window_s < 1:
            raise ConfigError("circuit_breaker.window_s", f"must be at least 1 (seconds), got {self.window_s!r}")
        if isinstance(self.min_events, bool) or not isinstance(self.min_events, int) or self.min_events < 1:
            raise ConfigError("circuit_breaker.min_events", f"must be an integer >= 1, got {self.min_events!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"open_rate": self.open_rate, "close_rate": self.close_rate, "window_s": self.window_s,
                "min_events": self.min_events}


class CircuitBreaker:
    """The breaker of one worker; `record` feeds it and says when it changed state."""

    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.is_open = False
        self._buckets: deque[list[int]] = deque()  # [second, events, errors], oldest first

    def record(self, now: float, *, events: int, errors: int) -> Transition | None:
        """Count `events` processed at time `now` (seconds), `errors` of them failed;
        return the transition this causes, if any."""
        second = math.floor(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += events
            self._buckets[-1][2] += errors
        else:
            self._buckets.append([second, events, errors])
        while self._buckets and self._buckets[0][0] <= second - self.config.window_s:
            self._buckets.popleft()
        seen, failed = self.counts()
        rate = failed / seen if seen else 0.0
        if not self.is_open and seen >= self.config.min_events and rate >= self.config.open_rate:
            self.is_open = True
            return "open"
        if self.is_open and rate < self.config.close_rate:
            self.is_open = False
            return "closed"
        return None

    def counts(self) -> tuple[int, int]:
        """(events, errors) in the current window."""
        return sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets)

    def error_rate(self) -> float:
        """errors / events in the current window (0 without events)."""
        events, errors = self.counts()
        return errors / events if events else 0.0
