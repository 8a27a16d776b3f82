"""What the outcomes core reads of the worker's state."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

__all__ = ["Known", "OutcomesView"]


class Known(NamedTuple):
    """A decision the partition state remembers (rebuilt from the audit topic after a restart)."""

    tenant: str
    raw_score: float
    pending: dict[str, Any] | None
    """The route waiting for its outcome; None when the decision was not routed."""
    canary: dict[str, Any] | None = None
    """The decision's `canary` part: its outcome is judged with the tenant's policy ramp."""


class OutcomesView(Protocol):
    def decision(self, partition: int, decision_id: str) -> Known | None:
        """The decision `decision_id` of `partition`, if it is still remembered."""
        ...

    def router_value(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's `router-state` value."""
        ...

    def calibration(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's `trust-calibration` value (samples and fitted model)."""
        ...
