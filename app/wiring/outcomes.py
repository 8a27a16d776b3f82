"""The outcomes agent's shell: outcomes → `agents.outcomes.plan_outcomes` → the applier.

Per batch (record batches straight from the consumer, `app.wiring.hot`): records on
another partition than their key's are forwarded (`app.engine.misrouted`), the pure core
plans the batch over a view of the partition state (which decisions this worker took, from
the audit tail after a restart) and of the `router-state` and `trust-calibration` tables,
and the applier carries the plan out. The router state is an early write: the plan is
read and written with no `await` between, as the gate reads and writes it too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import faust

from resontinex.agents.outcomes import Known, OutcomeBatch, OutcomesConfig, plan_outcomes

from resontinex.app.engine.applier import Applier
from resontinex.app.engine.continuity import FetchedEvent
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.partition_state import PartitionState
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.seams import Table
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.hot import attach_hot

__all__ = ["StateView", "register"]


class StateView:
    """`agents.outcomes.OutcomesView` over the tables and the batch's partition states."""

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self.tables = tables
        self.states: dict[int, PartitionState] = {}

    def decision(self, partition: int, decision_id: str) -> Known | None:
        known = self.states[partition].decisions.get(decision_id)
        return Known(*known) if known is not None else None

    def router_value(self, tenant: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables["router-state"].get(tenant)
        return value

    def calibration(self, tenant: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables["trust-calibration"].get(tenant)
        return value


def register(app: faust.App, rt: Runtime, tables: Mapping[str, Table], lifecycle: Lifecycle) -> None:
    """Declare the outcomes agent on `app`; `tables` are the gate's (`router-state`, `trust-calibration`)."""
    s = rt.settings
    source_topic = s.topic("outcomes")
    cfg = OutcomesConfig(rt.trust, rt.routing, rt.policy_version, s.max_message_bytes)
    mine = {name: tables[name] for name in ("router-state", "trust-calibration")}
    view = StateView(mine)
    applier = Applier(rt, "outcomes", source_topic, mine, app.producer.flush)
    forwarder = Forwarder(rt.sink, s.partitions)

    async def handle(batch: list[FetchedEvent]) -> None:
        view.states = {p: await rt.states.get(p) for p in {e.message.partition for e in batch}}
        own = forwarder.keep_own(batch)
        effects = plan_outcomes(OutcomeBatch([e.message for e in own], time.time()), view, cfg)
        await applier.apply(effects)  # the early router-state writes before its first await

    attach_hot(app, rt, source_topic, "outcomes", handle, lifecycle=lifecycle)
