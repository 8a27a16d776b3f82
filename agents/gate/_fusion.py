"""The fusion core: trajectory results put text-only requests back, scored (see `_text`).

`plan_fusion` turns a batch of `trajectory-results` into the scored copies of the
requests waiting in `awaiting-text` (same tenant, same partition); `plan_sweep` sends
back, marked `timeout`, the requests kept waiting longer than `fusion_timeout_s`. The
waiting entry stays until the gate has decided and audited the copy (the gate trusts a
`trajectory` block only while its request waits), so a result redelivered after a crash
sends the copy again, and the gate drops the repeat by its id.

>>> entry = {"raw": {"event_id": "r-1", "tenant": "acme"}, "partition": 0, "since": 0.0}
>>> effects, sent = plan_sweep([("k", entry)], owned={0}, deadline=10.0, sent_before=set())
>>> sent, effects.outputs[0].topic, effects.outputs[0].key
(['k'], 'decision_requests', b'acme')
>>> plan_sweep([("k", entry)], owned={0}, deadline=10.0, sent_before={"k"})[1]
[]
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from resontinex.agents.effects import Effects, EffectsBuilder, Output, Record
from resontinex.agents.trajectory import TrajectoryConfig
from resontinex.schemas import InvalidEvent, TrajectoryResult, decode_json, decode_key

from ._text import awaiting_key, scored_request, timed_out_request

__all__ = ["AwaitingView", "FusionBatch", "plan_fusion", "plan_sweep"]

log = logging.getLogger(__name__)


class AwaitingView(Protocol):
    def waiting_entry(self, key: str) -> dict[str, Any] | None:
        """The `awaiting-text` entry under `awaiting_key(tenant, request id)`: the request as
        received (`raw`), its `partition` and `since` when it waits."""
        ...


@dataclass(frozen=True, slots=True)
class FusionBatch:
    records: Sequence[Record]
    now: float


def plan_fusion(batch: FusionBatch, view: AwaitingView, cfg: TrajectoryConfig, max_message_bytes: int) -> Effects:
    """The scored requests for one batch of trajectory results; `view` is read, never changed."""
    out = EffectsBuilder()
    now_ms = round(batch.now * 1000)
    for record in batch.records:
        out.count("EVENTS", record.topic)
        try:
            tenant = decode_key(record.key)
            raw, result = decode_json(TrajectoryResult, record.value, max_bytes=max_message_bytes)
        except InvalidEvent as exc:
            out.reject(record, exc.code, exc.message, now_ms)
            continue
        if result.request_id is None or result.tenant != tenant:
            continue  # a text scored for itself, not for a decision
        entry = view.waiting_entry(awaiting_key(tenant, result.request_id))
        if entry is None:
            continue  # decided already (or timed out), or never waited here
        out.outputs.append(Output("decision_requests", record.partition, record.key,
                                  orjson.dumps(scored_request(entry["raw"], raw, cfg))))
        out.count("TEXTS_RETURNED", "scored")
    return out.effects()


def plan_sweep(waiting: Iterable[tuple[str, dict[str, Any] | None]], *, owned: Collection[int], deadline: float,
               sent_before: Container[str]) -> tuple[Effects, list[str]]:
    """The requests on `owned` partitions waiting since before `deadline` and not sent back
    by this worker yet, each sent back marked `timeout`; and their keys."""
    out = EffectsBuilder()
    sent: list[str] = []
    for key, entry in waiting:
        if not entry or entry["partition"] not in owned or entry["since"] >= deadline or key in sent_before:
            continue
        raw = entry["raw"]
        out.outputs.append(Output("decision_requests", entry["partition"], raw["tenant"].encode(),
                                  orjson.dumps(timed_out_request(raw))))
        out.count("TEXTS_RETURNED", "timeout")
        sent.append(key)
        log.warning("no trajectory result in time: deciding without it",
                    extra={"event_id": raw["event_id"], "tenant": raw["tenant"]})
    return out.effects(), sent
