"""Stand-ins for the gate's shell: a dict-backed `GateView` and plain input records.

`DictView` implements `resontinex.agents.gate.GateView` over dicts, so a test states the
worker's state as data and a plan is checked without Faust, tables or a broker. The plan
only reads it; `DictView.snapshot` lets a test prove that.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from resontinex.agents.budget import Mark, Period
from resontinex.agents.gate import GateView, PolicyCanary, awaiting_key, window_start
from resontinex.agents.trust import CalibrationAdapter

__all__ = ["DictView", "Rec"]


@dataclass(frozen=True, slots=True)
class Rec:
    """An input record as a core reads it (`resontinex.agents.effects.Record`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float


@dataclass
class DictView:
    """The worker's state as dicts; every field defaults to "nothing known yet".

    - `seen_ids`: partition → request ids decided (and audited) there;
    - `awaiting`: `awaiting_key(tenant, request id)` → the waiting copy;
    - `spend`: (period, scope) → (micro-dollars, tokens) spent in the current window;
    - `lags`: partition → cost records not folded yet (absent: 0);
    - `marks`: (partition, mark key) → `Mark`;
    - `unaudited_decisions`: decision id → a decision sent before a crash kept its audit from being written;
    - `stats`: (tenant, window start) → trust statistics;
    - `policies`: tenant → its trust policy under canary.
    """

    seen_ids: dict[int, set[str]] = field(default_factory=dict)
    awaiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibrations: dict[str, CalibrationAdapter] = field(default_factory=dict)
    spend: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    lags: dict[int, int | None] = field(default_factory=dict)
    marks: dict[tuple[int, str], Mark] = field(default_factory=dict)
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    unaudited_decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    stats: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)
    stats_window_s: float = 60.0
    policies: dict[str, PolicyCanary] = field(default_factory=dict)

    def seen(self, partition: int, request_id: str) -> bool:
        return request_id in self.seen_ids.get(partition, set())

    def waiting(self, tenant: str, request_id: str) -> bool:
        return self.awaiting.get(awaiting_key(tenant, request_id)) is not None

    def calibration(self, tenant: str) -> CalibrationAdapter | None:
        return self.calibrations.get(tenant)

    def spent(self, period: Period, scope: str, at: float) -> tuple[int, int]:
        return self.spend.get((period, scope), (0, 0))

    def downgraded(self, tenant: str) -> bool:
        return tenant in self.down

    def budget_lag(self, partition: int) -> int | None:
        return self.lags.get(partition, 0)

    def mark(self, partition: int, key: str) -> Mark:
        return self.marks.get((partition, key), Mark())

    def router_value(self, tenant: str) -> dict[str, Any] | None:
        return self.routers.get(tenant)

    def unaudited(self, partition: int, decision_id: str) -> dict[str, Any] | None:
        return self.unaudited_decisions.get(decision_id)

    def cached(self, key: str) -> tuple[float, dict[str, Any]] | None:
        return self.cache.get(key)

    def window_stats(self, tenant: str, at: float, partition: int) -> dict[str, Any] | None:
        return self.stats.get((tenant, window_start(at, self.stats_window_s)))

    def policy(self, tenant: str) -> PolicyCanary | None:
        return self.policies.get(tenant)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of everything the view holds (calibrations by their serialised form)."""
        state = {name: copy.deepcopy(value) for name, value in vars(self).items() if name != "calibrations"}
        state["calibrations"] = {t: m.to_dict() for t, m in self.calibrations.items()}
        return state


def _conforms(view: GateView) -> GateView:
    return view


_conforms(DictView())  # a type checker holds DictView to the protocol here
