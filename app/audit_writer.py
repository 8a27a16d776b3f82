"""Appending to a partition's audit chain, for every agent of a worker.

Agents of one worker share the chain head of each partition (`Runtime.states`); the head
is read and advanced with no `await` in between, so records of concurrent agents never
fork the chain. The records reach the broker with the sink's next flush.
"""

from __future__ import annotations

from typing import Any

import orjson

from agents.audit import seal_many

from .runtime import Runtime


def audit_item(event_id: str, kind: str, tenant: str, ts: str, policy_version: str,
               record: dict[str, Any]) -> dict[str, Any]:
    """An audit record before sealing (CONTRACT §3.8 without `seq`, `prev_hash`, `hash`)."""
    return {"event_id": event_id, "kind": kind, "tenant": tenant, "ts": ts,
            "policy_version": policy_version, "record": record}


async def append_audit(rt: Runtime, partition: int, items: list[dict[str, Any]]) -> None:
    """Seal `items` onto partition's chain and queue them on the sink."""
    if not items:
        return
    state = await rt.states.get(partition)
    records, head = seal_many(state.head, items)
    topic = rt.settings.topic("audit")
    for record in records:
        rt.sink.add(topic, partition, record["tenant"].encode(), orjson.dumps(record))
    state.head = head
