"""What the gate's plan may read: a read-only view of the state a worker holds.

The shell implements it over its Faust tables and in-memory partition state
(`resontinex.app.wiring.gate`); tests implement it over dicts. Nothing read here is
changed by the plan: what a batch changes comes back in its `GatePlan`.
"""

from __future__ import annotations

from typing import Any, Protocol

from resontinex.agents.budget import Mark, Period
from resontinex.agents.trust import CalibrationAdapter

from ._policy import PolicyCanary

__all__ = ["GateView"]


class GateView(Protocol):
    def seen(self, partition: int, request_id: str) -> bool:
        """Whether a decision on `request_id` was made (and audited) on `partition`."""
        ...

    def waiting(self, tenant: str, request_id: str) -> bool:
        """Whether the request waits in `awaiting-text` for its text's score."""
        ...

    def calibration(self, tenant: str) -> CalibrationAdapter | None:
        """The tenant's fitted score calibration, if any."""
        ...

    def spent(self, period: Period, scope: str, at: float) -> tuple[int, int]:
        """(micro-dollars, tokens) spent by `scope` in the `period` window holding time `at`."""
        ...

    def downgraded(self, tenant: str) -> bool:
        """Whether the tenant's tripwire holds it downgraded."""
        ...

    def budget_lag(self, partition: int) -> int | None:
        """Cost records of the partition not folded yet; None while unknown."""
        ...

    def mark(self, partition: int, key: str) -> Mark:
        """A budget period's mark (highest level reached, over since)."""
        ...

    def router_value(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's `router-state` value (`agents.gate.router_value`), None when it never routed."""
        ...

    def unaudited(self, partition: int, decision_id: str) -> dict[str, Any] | None:
        """The decision made (and maybe sent) on `partition` before a crash kept its audit
        record from being written (read back from `unaudited-decisions`): what a redelivered
        request gets."""
        ...

    def cached(self, key: str) -> tuple[float, dict[str, Any]] | None:
        """An insight-cache entry: (monotonic expiry, decision)."""
        ...

    def window_stats(self, tenant: str, at: float, partition: int) -> dict[str, Any] | None:
        """The tenant's trust statistics in the window holding time `at`."""
        ...

    def policy(self, tenant: str) -> PolicyCanary | None:
        """The tenant's trust policy under canary (an active `trust_policy` enhancement), if any."""
        ...
