"""The gate's shell: decision-requests → `agents.gate.plan_batch` → the applier.

Per batch (record batches straight from the consumer, `app.wiring.hot`): the
records are put in offset order (redeliveries dropped, skipped gaps fetched:
`app.engine.continuity`), records on another partition than their key's are forwarded
(`app.engine.misrouted`), the pure core plans the batch over a view of this worker's tables and
partition state, the partition state keeps what the plan remembered, and the applier
carries out the plan's effects. The record source commits the input offsets only after
the batch returned, so output is at-least-once; a worker taking a partition over starts
after the last request its audit tail holds, and a request redelivered after a crash
between its decision's sending and its audit gets that decision again (`agents.gate._plan`).
"""

from __future__ import annotations

import time
from functools import partial
from collections.abc import Callable, Mapping
from typing import Any

import faust

from resontinex.agents.budget import Mark, Period
from resontinex.agents.gate import (STATS_WINDOW_S, GateBatch, GateConfig, GatePlan, PolicyCanary, awaiting_key,
                                    circuit_effects, plan_batch, rejection_effects)
from resontinex.agents.trust import CalibrationAdapter, CircuitBreaker
from resontinex.schemas import SYSTEM_TENANT, ms_to_ts
from resontinex.topics import partition_of

from resontinex.app import metrics
from resontinex.app.engine.continuity import FetchedEvent, in_order
from resontinex.app.engine.crashpoints import fault_point
from resontinex.app.engine.applier import Applier, event_at
from resontinex.app.engine.faust_compat import event_context
from resontinex.app.engine.group_watch import GroupWatch
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.partition_state import PartitionState
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.recent import RecentMap
from resontinex.app.engine.seams import Table
from resontinex.app.otel import Tracing
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.budget import BudgetTables
from resontinex.app.wiring.hot import attach_hot
from resontinex.app.wiring.router_import import import_router_table

__all__ = ["STATS_RETENTION_S", "TablesView", "held_mark", "register"]

STATS_RETENTION_S = 3600.0
INSIGHT_CACHE_ENTRIES = 10_000


def held_mark(recent: Any, marks: Table, key: str) -> Mark:
    """A budget period's mark: from the partition state's `recent` marks (the audit tail),
    else the `budget-marks` table (older marks), else none yet."""
    mark: Mark | None = recent.get(key)
    if mark is None:
        stored = marks.get(key)
        mark = Mark(stored["level"], stored["blocked_since"]) if stored else Mark()
    return mark


class TablesView:
    """`agents.gate.GateView` over this worker's tables and the batch's partition states."""

    def __init__(self, tables: Mapping[str, Table], budgets: BudgetTables, source_topic: str,
                 policies: Callable[[str], PolicyCanary | None]) -> None:
        self.tables, self.budgets, self.source_topic = tables, budgets, source_topic
        self.policy = policies
        self.states: dict[int, PartitionState] = {}
        self.cache: RecentMap[tuple[float, dict[str, Any]]] = RecentMap(INSIGHT_CACHE_ENTRIES)
        self._adapters: dict[str, tuple[int, CalibrationAdapter]] = {}

    def seen(self, partition: int, request_id: str) -> bool:
        return request_id in self.states[partition].requests

    def waiting(self, tenant: str, request_id: str) -> bool:
        return self.tables["awaiting-text"].get(awaiting_key(tenant, request_id)) is not None

    def calibration(self, tenant: str) -> CalibrationAdapter | None:
        entry = self.tables["trust-calibration"].get(tenant)
        if not entry or not entry.get("model"):
            return None
        fits = entry["fits"]
        cached = self._adapters.get(tenant)
        if cached is None or cached[0] != fits:
            cached = self._adapters[tenant] = (fits, CalibrationAdapter.from_dict(entry["model"]))
        return cached[1]

    def spent(self, period: Period, scope: str, at: float) -> tuple[int, int]:
        return self.budgets.spent(period, scope, at)

    def downgraded(self, tenant: str) -> bool:
        return self.budgets.downgraded(tenant)

    def budget_lag(self, partition: int) -> int | None:
        return self.budgets.lag(partition)

    def mark(self, partition: int, key: str) -> Mark:
        return held_mark(self.states[partition].marks, self.tables["budget-marks"], key)

    def router_value(self, tenant: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables["router-state"].get(tenant)
        return value

    def unaudited(self, partition: int, decision_id: str) -> dict[str, Any] | None:
        return self.states[partition].unaudited.get(decision_id)

    def cached(self, key: str) -> tuple[float, dict[str, Any]] | None:
        return self.cache.get(key)

    def window_stats(self, tenant: str, at: float, partition: int) -> dict[str, Any] | None:
        with event_context(event_at(self.source_topic, partition, at)):  # type: ignore[arg-type]
            value: dict[str, Any] | None = self.tables["trust-stats"][tenant].current()
        return value

    def keep(self, plan: GatePlan) -> None:
        """Keep in memory what the plan remembered (before its outputs: outcomes may follow at once)."""
        for r in plan.remembered:
            self.states[r.partition].remember(r.request_id, r.decision_id, r.tenant, r.raw_score, r.pending, r.canary)
            self.states[r.partition].unaudited.pop(r.decision_id, None)
        for partition, key, mark in plan.marks:
            self.states[partition].marks.put(key, mark)
        for key, expiry, decision in plan.cache:
            self.cache.put(key, (expiry, decision))


def register(app: faust.App, rt: Runtime, budgets: BudgetTables, scorers: GroupWatch,
             lifecycle: Lifecycle, policies: Callable[[str], PolicyCanary | None],
             tracing: Tracing | None = None) -> dict[str, Any]:
    """Declare the gate's topic, tables and agent on `app`; return the tables by name.
    `scorers` watches the trajectory group: with no member, text-only requests are decided at once;
    `policies` gives a tenant's trust policy under canary (the enhancement agents'); with
    `tracing` (`app.otel.setup`: an OTLP endpoint is configured), each decision applied
    makes a `resontinex.decide` span."""
    s = rt.settings
    source_topic = s.topic("decision_requests")
    tables: dict[str, Any] = {
        "trust-stats": app.Table("trust-stats", default=dict, partitions=s.partitions).tumbling(
            STATS_WINDOW_S, expires=STATS_RETENTION_S, key_index=True),
        **{name: app.Table(name, default=None, partitions=s.partitions)
           for name in ("trust-calibration", "awaiting-text", "budget-marks", "router-state")},
    }
    budgets.commands["router_import"] = partial(import_router_table, rt, tables["router-state"])
    cfg = GateConfig(rt.trust, rt.energy, rt.routing, rt.trajectory, rt.overlays, rt.policy_version,
                     s.max_message_bytes)
    view = TablesView(tables, budgets, source_topic, policies)
    applier = Applier(rt, "gate", source_topic, tables, app.producer.flush)
    unreported = list(rt.overlay_rejections)  # reported by the owner of `_system`'s partition
    system_partition = partition_of(SYSTEM_TENANT, s.partitions)
    forwarder = Forwarder(rt.sink, s.partitions)
    breaker = CircuitBreaker(rt.trust.circuit_breaker)
    worker = f"{s.advertised_host}:{app.conf.web_port}"
    fault = partial(fault_point, "gate.decode")
    traced_topics = {"decision_requests": source_topic, "audit": s.topic("audit")}
    if tracing is not None:
        tracing.watch_audit(rt.sink, traced_topics["audit"])

    async def handle(batch: list[FetchedEvent]) -> None:
        started = time.perf_counter()
        view.states = {p: await rt.states.get(p) for p in {e.message.partition for e in batch}}
        events = await in_order(batch, {p: st.next_offset for p, st in view.states.items()}, s.bootstrap,
                                source_topic)
        own = forwarder.keep_own(events)
        now = time.time()
        aged = breaker.record(now, events=0, errors=0)  # what left the window since the last batch
        plan = plan_batch(GateBatch([e.message for e in own], now, time.monotonic(), breaker.is_open,
                                    scorers.absent, fault), view, cfg)
        # errors: inputs that failed processing, and decisions taken on budget state that lags
        tripped = breaker.record(now, events=len(own), errors=plan.failed + plan.lagging)  # holds from the next batch on
        metrics.CIRCUIT_ERROR_RATE.set(breaker.error_rate())
        view.keep(plan)
        effects = plan.effects
        ts = ms_to_ts(round(now * 1000))
        for transition in filter(None, (aged, tripped)):
            events_seen, errors = breaker.counts()
            effects += circuit_effects(transition, events_seen, errors, rt.trust.circuit_breaker, worker, ts,
                                       sorted(view.states), system_partition, rt.policy_version)
            metrics.CIRCUIT_OPEN.set(transition == "open")
        if unreported and _owns(app, source_topic, system_partition):
            effects += rejection_effects(unreported, system_partition, rt.started_at, ts, rt.policy_version)
            unreported.clear()
        trace = tracing.gate_batch(own, traced_topics) if tracing is not None else None  # the decisions queued now
        await applier.apply(effects)
        if trace is not None:
            trace.finish(effects)
        if plan.remembered:
            metrics.observe_evaluation(plan.evaluation_s, len(plan.remembered))
        done = time.time()
        for r in plan.remembered:
            metrics.DECISION_LATENCY.observe(max(0.0, done - r.timestamp))
        for event in events:
            view.states[event.message.partition].next_offset = event.message.offset + 1
        metrics.BATCH_SIZE.labels("gate").observe(len(events))
        metrics.BATCH_SECONDS.labels("gate").observe(time.perf_counter() - started)

    async def start_offset(topic: str, partition: int) -> int | None:
        return (await rt.states.get(partition)).next_offset  # after the last request the audit holds

    lifecycle.forget.append(lambda tps: rt.states.drop({tp.partition for tp in tps if tp.topic == source_topic}))
    attach_hot(app, rt, source_topic, "gate", handle, lifecycle=lifecycle, start_offset=start_offset)
    return tables


def _owns(app: faust.App, topic: str, partition: int) -> bool:
    return any(tp.topic == topic and tp.partition == partition for tp in app.consumer.assignment())

