"""The fusion agent of the core role: trajectory results put text-only decision requests
back on `decision-requests` with their risk (see `agents/gate/_text.py`).

Per batch of `trajectory-results`: each result whose `request_id` names a request waiting
in `awaiting-text` (same tenant, same partition) sends that request back, scored. The
waiting entry stays until the gate has decided and audited the copy (the gate trusts a
`trajectory` block only while its request waits), so a result redelivered after a crash
sends it again, and the gate drops the repeat by its id. A timer sends back, marked
`timeout`, every request this worker's partitions have kept waiting longer than
`fusion_timeout_s`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import orjson
from faust.exceptions import ConsumerNotStarted

from resontinex.app import metrics
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine.deadletter import send_dead_letter
from resontinex.app.engine.faust_compat import event_context
from resontinex.app.engine.recent import RecentMap
from resontinex.app.runtime import Runtime
from resontinex.schemas import InvalidEvent, TrajectoryResult, decode_json, decode_key

from resontinex.agents.gate import awaiting_key, scored_request, timed_out_request

log = logging.getLogger(__name__)

SWEEP_S = 2.0
TIMED_OUT_KEPT = 100_000


def register(app: faust.App, rt: Runtime, awaiting: Any) -> None:
    s = rt.settings
    source_name = s.topic("trajectory_results")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)
    requests, dead_letters = s.topic("decision_requests"), s.topic("dead_letters")
    sent_back: RecentMap[bool] = RecentMap(TIMED_OUT_KEPT)  # timed out and sent: not again from this worker
    for status in ("scored", "timeout"):
        metrics.TEXTS_RETURNED.labels(status)  # at 0 from the start, so increase() sees the first one

    async def handle(batch: list[faust.types.EventT]) -> None:
        for event in batch:
            msg = event.message
            try:
                tenant = decode_key(msg.key)
                raw, result = decode_json(TrajectoryResult, msg.value, max_bytes=s.max_message_bytes)
            except InvalidEvent as exc:
                send_dead_letter(rt.sink, dead_letters, msg, exc.code, exc.message)
                continue
            if result.request_id is None or result.tenant != tenant:
                continue  # a text scored for itself, not for a decision
            key = awaiting_key(tenant, result.request_id)
            with event_context(event):
                entry = awaiting.get(key)
            if entry is None:
                continue  # decided already (or timed out), or never waited here
            rt.sink.add(requests, msg.partition, msg.key, orjson.dumps(scored_request(entry["raw"], raw, rt.trajectory)))
            metrics.TEXTS_RETURNED.labels("scored").inc()
        metrics.EVENTS.labels(source_name).inc(len(batch))
        await rt.sink.flush()

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
        deadline = time.time() - rt.trajectory.fusion_timeout_s
        late = [(key, entry) for key, entry in list(awaiting.items())
                if entry and entry["partition"] in owned and entry["since"] < deadline and key not in sent_back]
        for key, entry in late:
            raw = entry["raw"]
            rt.sink.add(requests, entry["partition"], raw["tenant"].encode(), orjson.dumps(timed_out_request(raw)))
            sent_back.put(key, True)
            metrics.TEXTS_RETURNED.labels("timeout").inc()
            log.warning("no trajectory result in time: deciding without it",
                        extra={"event_id": raw["event_id"], "tenant": raw["tenant"]})
        if late:
            await rt.sink.flush()
