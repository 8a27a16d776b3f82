"""A circuit breaker per model (seed 003): consecutive failures open it, time half-opens it.

Closed: calls go through; `failures` consecutive failures open it. Open: no call goes
through until `open_s` have passed, then it is half-open. Half-open: calls go through;
`successes` successes in a row close it, one failure opens it again (for another
`open_s`; it never closed, so that is no new transition). Immutable: each step returns
the new breaker and the transition it made, if any (`circuit_open`, `circuit_closed`
alerts).

>>> b = ModelBreaker()
>>> for t in range(5):
...     b, change = b.failed(float(t))
>>> b.state_at(10.0), change, b.allows(10.0), b.state_at(34.0)
('open', 'open', False, 'half_open')
>>> b, change = b.succeeded(34.0); b.state_at(34.0), change
('half_open', None)
>>> b, change = b.succeeded(35.0); b.state_at(35.0), change
('closed', 'closed')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from .exceptions import ConfigError

__all__ = ["BreakerSettings", "BreakerState", "ModelBreaker", "Transition"]

BreakerState = Literal["closed", "open", "half_open"]
Transition = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failures: int = 5
    open_s: float = 30.0
    successes: int = 2

    def __post_init__(self) -> None:
        if self.failures < 1 or self.successes < 1:
            raise ConfigError("breaker", f"failures and successes must be ≥ 1, got {self.failures}, {self.successes}")
        if not self.open_s > 0:
            raise ConfigError("breaker.open_s", f"must be > 0, got {self.open_s}")


@dataclass(frozen=True, slots=True)
class ModelBreaker:
    settings: BreakerSettings = BreakerSettings()
    opened_at: float | None = None
    """When it last opened; None while closed."""
    failures: int = 0
    """Consecutive failures (closed)."""
    successes: int = 0
    """Consecutive successes since it half-opened."""

    def state_at(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "open" if now < self.opened_at + self.settings.open_s else "half_open"

    def allows(self, now: float) -> bool:
        """Whether a call may go out at `now`."""
        return self.state_at(now) != "open"

    def succeeded(self, now: float) -> tuple[ModelBreaker, Transition | None]:
        """A call answered. While open, it is a reply to a call made before the breaker
        opened: it proves nothing and does not count towards closing it."""
        if self.opened_at is None:
            return replace(self, failures=0), None
        if self.state_at(now) == "open":
            return self, None
        successes = self.successes + 1
        if successes >= self.settings.successes:
            return ModelBreaker(self.settings), "closed"
        return replace(self, successes=successes), None

    def failed(self, now: float) -> tuple[ModelBreaker, Transition | None]:
        if self.opened_at is not None:  # a failure half-open (or a late one while open) opens it again
            return ModelBreaker(self.settings, opened_at=now), None
        failures = self.failures + 1
        if failures >= self.settings.failures:
            return ModelBreaker(self.settings, opened_at=now), "open"
        return replace(self, failures=failures), None

    def as_dict(self) -> dict[str, Any]:
        return {"opened_at": self.opened_at, "failures": self.failures, "successes": self.successes}
