"""Appending to a partition's audit chain, for every agent of a worker.

Agents of one worker share the chain head of each partition (`Runtime.states`); the head
is read and advanced with no `await` in between, so records of concurrent agents never
fork the chain. The records reach the broker with the sink's next flush.

Two kinds of record are the writer's own:

* `config`: before the first record a worker writes to a partition under a configuration
  version the chain has not recorded, the whole configuration (`Runtime.configuration`),
  so the chain says which rules every later decision was made under and `audit
  reproduce` can rebuild them;
* `checkpoint`: with a signing key, the chain head signed with Ed25519 every
  `checkpoint_every` records, and by `checkpoint_due` on a timer once
  `checkpoint_interval_s` has passed with records unsigned.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from resontinex.agents.audit import checkpoint_body, seal, seal_many
from resontinex.agents.effects import audit_item
from resontinex.schemas import SYSTEM_TENANT, ms_to_ts

from resontinex.app.engine.partition_state import PartitionState
from resontinex.app.runtime import Runtime


async def append_audit(rt: Runtime, partition: int, items: list[dict[str, Any]]) -> None:
    """Seal `items` onto partition's chain and queue them on the sink (after a `config`
    record when this configuration, or a candidate's an item was made under, is new to the
    chain; before a checkpoint when due)."""
    if not items:
        return
    state = await rt.states.get(partition)
    configurations = {rt.policy_version: rt.configuration}
    configurations.update((i["policy_version"], rt.configurations[i["policy_version"]]) for i in items
                          if i["policy_version"] in rt.configurations)
    new = [v for v in configurations if v not in state.policy_versions]
    items = [audit_item(f"cfg-{v}-{partition}-{state.head.seq_next}", "config", SYSTEM_TENANT, _now_ts(), v,
                        {"policy_version": v, "configuration": configurations[v]}) for v in new] + items
    state.policy_versions.update(new)
    records, head = seal_many(state.head, items)
    topic = rt.settings.topic("audit")
    for record in records:
        rt.sink.add(topic, partition, record["tenant"].encode(), orjson.dumps(record))
    state.head = head
    state.unsigned += len(records)
    if rt.signing_key is not None and state.unsigned >= rt.settings.checkpoint_every:
        _checkpoint(rt, partition, state)


async def checkpoint_due(rt: Runtime) -> int:
    """Sign the head of every partition this worker writes whose unsigned records are older
    than `checkpoint_interval_s`; the number of checkpoints queued on the sink."""
    if rt.signing_key is None:
        return 0
    written = 0
    for partition in rt.states.owned():
        state = await rt.states.get(partition)
        if state.unsigned and time.time() - state.checkpoint_at >= rt.settings.checkpoint_interval_s:
            _checkpoint(rt, partition, state)
            written += 1
    return written


def _checkpoint(rt: Runtime, partition: int, state: PartitionState) -> None:
    assert rt.signing_key is not None
    seq = state.head.seq_next - 1
    body = checkpoint_body(rt.signing_key, partition=partition, seq=seq, head_hash=state.head.hash)
    record, state.head = seal(state.head, event_id=f"cp-{partition}-{seq}", kind="checkpoint", tenant=SYSTEM_TENANT,
                              ts=_now_ts(), policy_version=rt.policy_version, record=body)
    rt.sink.add(rt.settings.topic("audit"), partition, SYSTEM_TENANT.encode(), orjson.dumps(record))
    state.unsigned, state.checkpoint_at = 0, time.time()


def _now_ts() -> str:
    return ms_to_ts(round(time.time() * 1000))
