"""The fusion agent's shell: `trajectory-results` → `agents.gate.plan_fusion` → the applier.

Text-only decision requests wait in `awaiting-text` (`agents/gate/_text.py`); per batch of
trajectory results the core puts each one's request back on `decision-requests`, scored,
and a timer sends back, marked `timeout`, every request this worker's partitions have
kept waiting longer than `fusion_timeout_s` (`agents.gate.plan_sweep`).
"""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted

from resontinex.agents.gate import FusionBatch, plan_fusion, plan_sweep

from resontinex.app import metrics
from resontinex.app.engine.applier import Applier
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine.recent import RecentMap
from resontinex.app.engine.seams import Event, Table
from resontinex.app.runtime import Runtime

__all__ = ["AwaitingTable", "register"]

SWEEP_S = 2.0
TIMED_OUT_KEPT = 100_000


class AwaitingTable:
    """`agents.gate.AwaitingView` over the `awaiting-text` table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def waiting_entry(self, key: str) -> dict[str, Any] | None:
        entry: dict[str, Any] | None = self.table.get(key)
        return entry


def register(app: faust.App, rt: Runtime, awaiting: Table) -> None:
    s = rt.settings
    source_name = s.topic("trajectory_results")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)
    requests = s.topic("decision_requests")
    view = AwaitingTable(awaiting)
    applier = Applier(rt, "fusion", source_name, {}, app.producer.flush)
    sent_back: RecentMap[bool] = RecentMap(TIMED_OUT_KEPT)  # timed out and sent: not again from this worker
    for status in ("scored", "timeout"):
        metrics.TEXTS_RETURNED.labels(status)  # at 0 from the start, so increase() sees the first one

    async def handle(batch: list[Event]) -> None:
        effects = plan_fusion(FusionBatch([e.message for e in batch], time.time()), view, rt.trajectory,
                              s.max_message_bytes)
        await applier.apply(effects)

    @app.agent(source, name="fusion")
    async def fusion(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="fusion")

    @app.timer(SWEEP_S)
    async def sweep() -> None:
        """Send back, marked `timeout`, the requests waiting too long on partitions this worker owns."""
        try:
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == requests}
        except ConsumerNotStarted:  # early in start-up
            return
        effects, sent = plan_sweep(list(awaiting.items()), owned=owned,
                                   deadline=time.time() - rt.trajectory.fusion_timeout_s, sent_before=sent_back)
        if effects:
            await applier.apply(effects)
        for key in sent:
            sent_back.put(key, True)
