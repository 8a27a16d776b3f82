"""Auditing the alerts other roles raise: the core role owns each partition's audit chain.

The trajectory role runs in its own consumer group, so it cannot append to the chain
without forking it. Its alerts (`quality_check_failed`) reach the `alerts` topic on the
tenant's partition; this agent, in the core group, reads them there and appends each to
that partition's chain once: the alert ids the chain holds are part of the partition state
recovered from the audit tail, so a redelivered alert is dropped after a restart too.
"""

from __future__ import annotations

import faust

from resontinex.app import metrics
from resontinex.app.engine.audit_writer import append_audit, audit_item
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.runtime import Runtime
from resontinex.schemas import Alert, InvalidEvent, decode_json, ms_to_ts

FOREIGN_KINDS = frozenset({"quality_check_failed"})
"""Alert kinds raised outside the core role (the core audits its own as it raises them)."""


def register(app: faust.App, rt: Runtime) -> None:
    s = rt.settings
    source_name = s.topic("alerts")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)

    async def handle(batch: list[faust.types.EventT]) -> None:
        per_partition: dict[int, list[dict]] = {}
        for event in batch:
            msg = event.message
            try:
                raw, alert = decode_json(Alert, msg.value, max_bytes=s.max_message_bytes)
            except InvalidEvent:
                continue  # not ours to judge: the alerts topic is an output; its writers validate
            if alert.kind not in FOREIGN_KINDS:
                continue
            chained = (await rt.states.get(msg.partition)).alerts  # rebuilt from the audit tail after a restart
            if alert.event_id in chained:
                continue
            chained.put(alert.event_id, True)
            per_partition.setdefault(msg.partition, []).append(
                audit_item("au-" + alert.event_id.removeprefix("a-"), "alert", alert.tenant,
                           raw.get("ts") or ms_to_ts(round(msg.timestamp * 1000)),
                           rt.policy_version, {"alert": raw}))
        for partition, items in per_partition.items():
            await append_audit(rt, partition, items)
            metrics.ALERTS_AUDITED.inc(len(items))
        if per_partition:
            await rt.sink.flush()

    @app.agent(source, name="alert-audit")
    async def alert_audit(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="alert-audit")
