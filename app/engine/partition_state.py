"""Per-partition state the gate keeps in memory and rebuilds from the audit topic.

A worker that owns input partition p writes audit partition p (tenant-keyed topics are
co-partitioned), so audit partition p holds, in order, every decision made for p. On
first sight of p the worker reads its tail and recovers:

* the chain head, so the hash chain continues from the last record really in the topic;
* the request ids already decided, so a request redelivered after a crash is dropped
  instead of being decided (and audited) twice;
* decision id → (tenant, raw score, what a routed decision chose, its policy canary arm),
  so an outcome can find the decision it reports on;
* the input offset after the last one decided (see `app.engine.continuity`);
* how many records follow the last signed checkpoint, which configuration versions the
  chain has recorded (`config` records), and which alert ids it holds;
* per budget and period, the highest level reached (from `state_change` records) and
  since when it has been over budget (from decisions), so a budget alert is raised once
  per period and the retry backoff goes on growing (older marks: the `budget-marks` table).

It also reads the tail of partition p of the internal topic `unaudited-decisions`, where
the gate writes each batch's decisions before it sends them (at most one batch, of up to
`RESONTINEX_BATCH_MAX` records, is in flight), and keeps those the audit does not hold:
a crash came between their sending and their audit, and their redelivered requests get
them again rather than decisions made anew.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from resontinex.agents.audit import ChainHead, head_after
from resontinex.agents.budget import STATUS_RANK, Mark, mark_key
from resontinex.agents.gate import canary_of
from resontinex.schemas import ts_to_ms

from resontinex.app.engine.audit_tail import read_tail
from resontinex.app.engine.recent import RecentMap

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PartitionState:
    head: ChainHead
    requests: RecentMap[bool]
    decisions: RecentMap[tuple[str, float, dict | None, dict | None]]
    """decision id → (tenant, raw score, route pending, canary part)"""
    marks: RecentMap[Mark]
    next_offset: int | None = None  # first input offset not yet processed; None: unknown
    unsigned: int = 0  # chain records after the last checkpoint
    checkpoint_at: float = field(default_factory=time.time)  # when the last checkpoint was written (or recovery)
    policy_versions: set[str] = field(default_factory=set)  # configuration versions the chain has recorded
    alerts: RecentMap[bool] = field(default_factory=lambda: RecentMap(100_000))  # alert ids the chain holds
    unaudited: dict[str, dict] = field(default_factory=dict)
    """decision id → the gate's `unaudited-decisions` value of a decision the audit does not hold"""

    def remember(self, request_id: str, decision_id: str, tenant: str, raw_score: float,
                 pending: dict | None = None, canary: dict | None = None) -> None:
        self.requests.put(request_id, True)
        self.decisions.put(decision_id, (tenant, raw_score, pending, canary))

    def resume(self, values: list[dict]) -> None:
        """Keep the `unaudited-decisions` values (read back, oldest first) whose request the
        audit does not hold; a later value of a decision replaces an earlier one."""
        for value in values:
            decision = value.get("decision") if isinstance(value, dict) else None
            if isinstance(decision, dict) and decision.get("request_id") not in self.requests:
                self.unaudited[str(decision.get("event_id"))] = value

    def replay(self, record: dict) -> None:
        """Fold one audit record read back from the topic into this state (not the chain head)."""
        self.unsigned = 0 if record.get("kind") == "checkpoint" else self.unsigned + 1
        if record.get("kind") == "alert":
            alert = (record.get("record") or {}).get("alert") or {}
            if isinstance(alert.get("event_id"), str):
                self.alerts.put(alert["event_id"], True)
        if record.get("kind") == "config":
            self.policy_versions.add(str((record.get("record") or {}).get("policy_version")))
        if record.get("kind") == "state_change":
            change = (record.get("record") or {}).get("budget")
            if isinstance(change, dict) and change.get("scope") and change.get("period_start"):
                key = mark_key(change["scope"], change["period_start"])
                mark = self.marks.get(key) or Mark()
                self.marks.put(key, Mark(max(mark.level, STATUS_RANK.get(change.get("to"), 0)), mark.blocked_since))
        if record.get("kind") == "decision":
            body = record.get("record") or {}
            request, decision = body.get("request") or {}, body.get("decision") or {}
            trust = decision.get("trust") or {}
            if "event_id" in request and "event_id" in decision:
                self.remember(request["event_id"], decision["event_id"], decision.get("tenant", ""),
                              trust.get("raw_score", 0.0), body.get("route_pending"), canary_of(decision))
            budget = decision.get("budget")
            if isinstance(budget, dict) and budget.get("scope") and budget.get("period_start"):
                key = mark_key(budget["scope"], budget["period_start"])
                mark = self.marks.get(key) or Mark()
                since = budget.get("blocked_since")
                self.marks.put(key, Mark(mark.level, ts_to_ms(since) / 1000 if since else None))
            source = body.get("source") or {}
            if isinstance(source.get("offset"), int):
                self.next_offset = max(self.next_offset or 0, source["offset"] + 1)


def recover(records: list[dict], horizon: int) -> PartitionState:
    """The state after the audit records of a partition, oldest first."""
    state = PartitionState(ChainHead.genesis(), RecentMap(horizon), RecentMap(horizon), RecentMap(horizon))
    for record in records:
        state.replay(record)
    if records:
        state.head = head_after(records[-1])  # checks that record's hash before continuing from it
    return state


class PartitionStates:
    """Lazily loaded `PartitionState` per owned partition."""

    def __init__(self, bootstrap: str, audit_topic: str, horizon: int, unaudited_topic: str, in_flight: int) -> None:
        self._bootstrap = bootstrap
        self._audit_topic, self._unaudited_topic = audit_topic, unaudited_topic
        self._horizon, self._in_flight = horizon, in_flight
        self._states: dict[int, PartitionState] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def get(self, partition: int) -> PartitionState:
        state = self._states.get(partition)
        if state is not None:
            return state
        async with self._locks.setdefault(partition, asyncio.Lock()):
            state = self._states.get(partition)
            if state is None:
                state = self._states[partition] = await self._load(partition)
            return state

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self._states.pop(p, None)

    def owned(self) -> list[int]:
        return sorted(self._states)

    async def _load(self, partition: int) -> PartitionState:
        tail = await read_tail(self._bootstrap, self._audit_topic, partition, self._horizon)
        state = recover(tail.records, self._horizon)
        state.resume((await read_tail(self._bootstrap, self._unaudited_topic, partition, self._in_flight)).records)
        log.info(
            "partition state recovered from audit tail",
            extra={"partition": partition, "records": len(tail.records), "seq_next": state.head.seq_next,
                   "unaudited": len(state.unaudited)},
        )
        if state.unaudited:
            log.warning("decisions sent before a crash without their audit records: their redelivered requests "
                        "get them again", extra={"partition": partition, "decisions": len(state.unaudited)})
        return state
