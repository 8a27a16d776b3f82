"""The alert-audit agent's shell: `alerts` → `agents.gate.plan_alert_audit` → the applier.

It appends the alerts other roles raise to the core's audit chains, each once.
"""

from __future__ import annotations

import faust

from resontinex.agents.gate import plan_alert_audit

from resontinex.app.engine.applier import Applier
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine.seams import Event
from resontinex.app.runtime import Runtime

__all__ = ["register"]


def register(app: faust.App, rt: Runtime) -> None:
    s = rt.settings
    source_name = s.topic("alerts")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)
    applier = Applier(rt, "alert-audit", source_name, {}, app.producer.flush)

    async def handle(batch: list[Event]) -> None:
        states = {p: await rt.states.get(p) for p in {e.message.partition for e in batch}}  # from the audit tail
        effects, added = plan_alert_audit([e.message for e in batch], lambda p, alert_id: alert_id in states[p].alerts,
                                          rt.policy_version, s.max_message_bytes)
        for partition, alert_id in added:
            states[partition].alerts.put(alert_id, True)
        if effects:
            await applier.apply(effects)

    @app.agent(source, name="alert-audit")
    async def alert_audit(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="alert-audit")
