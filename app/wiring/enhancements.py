"""The enhancement agents' shell (core role): telemetry windows, submissions, the feed,
operator commands and the monitor's tick, each from a pure core in `agents.enhancement`
to the applier.

- `telemetry` records come in batches straight from the consumer (`app.wiring.hot`);
  `plan_telemetry` folds them into the windowed tables `telemetry-sources` and
  `telemetry-arms` and sends each enhancement's partials on the internal feed. The
  windows' `upto` offsets make a redelivered batch fold once.
- `enhancements` and the internal `enhancement-feed` are read by one Faust agent in
  batches: `plan_submissions` keeps the directory (enhancement id → tenant) and forwards
  each submission to its tenant's partition; `plan_feed` creates the enhancement there
  (preflight, activation) and merges partials into its series.
- `enhancement_approve` / `enhancement_retire` on `control` arrive through the budget
  agent's control handler (`BudgetTables.commands`) and are planned by `plan_command`.
- A timer runs `plan_tick` over the tenants of the partitions this worker owns, every
  `monitor.interval` (or `canary.interval`, if shorter).

One lock serialises all of them: each reads an enhancement's record, plans, and writes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted

from resontinex.agents import enhancement as en
from resontinex.agents.gate import PolicyCanary
from resontinex.agents.router import RoutingConfig
from resontinex.agents.trust import TrustConfig, policy_version_of
from resontinex.agents.effects import Effects
from resontinex.schemas import Control
from resontinex.topics import partition_of

from resontinex.app import metrics
from resontinex.app.engine.applier import Applier, event_at
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine.continuity import FetchedEvent
from resontinex.app.engine.faust_compat import event_context
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.seams import Event
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.budget import BudgetTables
from resontinex.app.wiring.hot import attach_hot

__all__ = ["Enhancements", "register"]

log = logging.getLogger(__name__)

WINDOWS_SHOWN = 60
"""Windows `GET /telemetry/{source}` shows by default (the newest)."""


class TablesView:
    """`EnhancementView` and `TelemetryView` over this worker's tables."""

    def __init__(self, tables: dict[str, Any], telemetry_topic: str) -> None:
        self.tables, self.telemetry_topic = tables, telemetry_topic

    def enhancement(self, enhancement_id: str) -> en.Enhancement | None:
        d = self.tables[en.STATE_TABLE].get(enhancement_id)
        return en.Enhancement.from_dict(d) if d else None

    def series(self, enhancement_id: str, *, pools: bool = False) -> en.EnhancementSeries | None:
        d = self.tables[en.SERIES_TABLE].get(enhancement_id)
        if not d:
            return None
        stored_pools = self.tables[en.POOLS_TABLE].get(enhancement_id) if pools else None
        return en.EnhancementSeries.from_dict(d, pools=stored_pools)

    def tenant_enhancements(self, tenant: str) -> list[str]:
        return list(self.tables[en.INDEX_TABLE].get(tenant) or [])

    def directory(self, enhancement_id: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables[en.DIRECTORY_TABLE].get(enhancement_id)
        return value

    def window(self, table: str, key: str, partition: int, start: float) -> dict[str, Any] | None:
        with event_context(event_at(self.telemetry_topic, partition, start)):  # type: ignore[arg-type]
            value: dict[str, Any] = self.tables[table][key].current()
        return value or None


class PolicyBook:
    """Each tenant's policy under canary, for the gate: read from the enhancement records
    once, kept until the enhancement agent changes one of the tenant's records.

    A candidate's configuration is the runtime's with the payload's trust or routing
    settings; its policy version is registered in `Runtime.configurations`, so the audit
    writer records that configuration (`config`) before the first decision it made, and
    `audit reproduce` finds it like any other."""

    def __init__(self, rt: Runtime, view: TablesView) -> None:
        self.rt, self.view = rt, view
        self._tenants: dict[str, PolicyCanary | None] = {}
        self._candidates: dict[str, tuple[TrustConfig | RoutingConfig, str]] = {}
        """enhancement id → (its candidate configuration, its policy version)."""

    def policy(self, tenant: str) -> PolicyCanary | None:
        if tenant not in self._tenants:
            self._tenants[tenant] = self._read(tenant)
        return self._tenants[tenant]

    def changed(self, effects: Effects) -> None:
        """Forget what `effects` changed (the tenants whose enhancement records they write)."""
        for w in effects.late_writes:
            if w.table == en.STATE_TABLE and w.value:
                self._tenants.pop(w.value["tenant"], None)

    def clear(self) -> None:
        self._tenants.clear()

    def check(self, kind: str, payload: Any) -> str | None:
        """Preflight's payload check: a policy must make a valid configuration."""
        return en.candidate_problem(kind, payload, self.rt.trust, self.rt.routing)

    def _read(self, tenant: str) -> PolicyCanary | None:
        for enhancement_id in self.view.tenant_enhancements(tenant):
            e = self.view.enhancement(enhancement_id)
            if e is None or e.state != "active" or e.kind not in en.POLICY_KINDS or e.ramp is None:
                continue
            if enhancement_id not in self._candidates:
                try:
                    candidate = en.candidate_config(e.kind, e.submission["payload"], self.rt.trust, self.rt.routing)
                except en.CandidateError as exc:  # trust_gate.yaml or routing.yaml changed since its preflight
                    log.error("a policy under canary no longer makes a valid configuration with this worker's "
                              "files: the current policy decides", extra={"event_id": enhancement_id,
                                                                          "error": str(exc)})
                    return None
                section = "trust" if isinstance(candidate, TrustConfig) else "routing"
                configuration = {**self.rt.configuration, section: candidate.as_dict()}
                version = policy_version_of(configuration)
                self.rt.configurations[version] = configuration
                self._candidates[enhancement_id] = (candidate, version)
            candidate, version = self._candidates[enhancement_id]
            trust, routing = (candidate, None) if isinstance(candidate, TrustConfig) else (None, candidate)
            return PolicyCanary(enhancement_id, e.share or 0.0, e.ramp["step"], version, e.ramp.get("activation", 0),
                                trust=trust, routing=routing)
        return None


@dataclass
class Enhancements:
    """What the agents hold; the web views and the gate read it."""

    app: faust.App
    rt: Runtime
    view: TablesView
    feed_topic: str
    policies: PolicyBook

    def owned(self) -> set[int]:
        try:
            assignment = self.app.consumer.assignment()
        except ConsumerNotStarted:  # early in start-up
            return set()
        return {tp.partition for tp in assignment if tp.topic == self.feed_topic}

    def settled(self) -> bool:
        """No rebalance or table recovery under way: the tables hold what this worker owns."""
        return not (self.app.rebalancing or getattr(self.app, "in_recovery", False))

    def tenants(self) -> list[str]:
        """The tenants with enhancements on the partitions this worker owns."""
        owned, partitions = self.owned(), self.rt.settings.partitions
        return sorted(t for t in list(self.view.tables[en.INDEX_TABLE].keys()) if partition_of(t, partitions) in owned)

    def status(self) -> dict[str, Any]:
        """Per tenant, its enhancements (state, phase, share, counts, what waits for approval)."""
        out: dict[str, Any] = {}
        for tenant in self.tenants():
            rows = [e.status() for i in self.view.tenant_enhancements(tenant) if (e := self.view.enhancement(i))]
            out[tenant] = {"active": sum(r["state"] == "active" for r in rows), "enhancements": rows}
        return out

    def telemetry(self, source: str, windows: int = WINDOWS_SHOWN) -> list[dict[str, Any]] | None:
        """`source`'s newest windows, newest first (None: its partition is not this worker's)."""
        s = self.rt.settings
        partition = partition_of(source, s.partitions)
        if partition not in self.owned():
            return None
        t = self.rt.enhancements.telemetry
        now = time.time()
        out = []
        for i in range(min(windows, int(t.keep_s // t.window_s))):
            start = en.window_start(now, t.window_s) - i * t.window_s
            value = self.view.window(en.SOURCES_TABLE, source, partition, start)
            if value:
                out.append({"start": start, "end": start + t.window_s, "metrics": _described(value["metrics"])})
        return out


def _described(metrics_: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, d in metrics_.items():
        st = en.WindowStats.from_dict(d)
        out[name] = {"count": st.count, "mean": st.mean, "variance": st.variance, "sd": st.sd,
                     "min": st.min, "max": st.max, "sample": list(st.values)}
    return out


def register(app: faust.App, rt: Runtime, budgets: BudgetTables, lifecycle: Lifecycle) -> Enhancements:
    s, cfg = rt.settings, rt.enhancements
    telemetry_topic, submissions_topic, feed_topic = (s.topic("telemetry"), s.topic("enhancements"),
                                                      s.topic("enhancement_feed"))
    windows = {name: app.Table(name, default=dict, partitions=s.partitions).tumbling(
        cfg.telemetry.window_s, expires=cfg.telemetry.keep_s, key_index=True)
        for name in (en.SOURCES_TABLE, en.ARMS_TABLE)}
    tables: dict[str, Any] = {**windows, **{name: app.Table(name, default=None, partitions=s.partitions)
                                            for name in (en.STATE_TABLE, en.SERIES_TABLE, en.POOLS_TABLE,
                                                         en.INDEX_TABLE, en.DIRECTORY_TABLE)}}
    view = TablesView(tables, telemetry_topic)
    appliers = {topic: Applier(rt, name, topic, tables, app.producer.flush) for topic, name in (
        (telemetry_topic, "telemetry"), (submissions_topic, "enhancements"), (feed_topic, "enhancement_feed"),
        (s.topic("control"), "enhancement_control"))}
    forwarder = Forwarder(rt.sink, s.partitions)
    lock = asyncio.Lock()
    policies = PolicyBook(rt, view)
    state = Enhancements(app, rt, view, feed_topic, policies)

    def context() -> en.Context:
        return en.Context(cfg, s.partitions, rt.policy_version, time.time(), max_message_bytes=s.max_message_bytes,
                          payload_check=policies.check)

    async def apply(topic: str, effects: Effects) -> None:
        await appliers[topic].apply(effects)
        policies.changed(effects)

    async def handle_telemetry(batch: list[FetchedEvent]) -> None:
        started = time.perf_counter()
        own = forwarder.keep_own(batch)
        async with lock:
            plan = en.plan_telemetry([e.message for e in own], view, cfg, partitions=s.partitions, now=time.time(),
                                     max_message_bytes=s.max_message_bytes)
            await appliers[telemetry_topic].apply(plan.effects)
        metrics.BATCH_SIZE.labels("telemetry").observe(len(batch))
        metrics.BATCH_SECONDS.labels("telemetry").observe(time.perf_counter() - started)

    async def handle(batch: list[Event]) -> None:
        submissions = [e.message for e in forwarder.keep_own([e for e in batch if e.message.topic == submissions_topic])]
        feed = [e.message for e in batch if e.message.topic == feed_topic]
        async with lock:
            if submissions:
                await apply(submissions_topic, en.plan_submissions(submissions, view, context()))
            if feed:
                await apply(feed_topic, en.plan_feed(feed, view, context()))
        await app.producer.flush()  # a Faust agent: its offsets may be committed as soon as it returns

    async def command(event: Event, control: Control) -> None:
        async with lock:
            await apply(s.topic("control"), en.plan_command(event.message, control, view, context()))

    async def consume(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="enhancements")

    app.agent(app.topic(submissions_topic, feed_topic, key_serializer="raw", value_serializer="raw",
                        partitions=s.partitions), name="enhancements")(consume)
    attach_hot(app, rt, telemetry_topic, "telemetry", handle_telemetry, lifecycle=lifecycle)
    budgets.commands["enhancement_approve"] = budgets.commands["enhancement_retire"] = command
    # series the Prometheus rules select exist from the start: increase() misses a series' first increment
    metrics.ENHANCEMENT_TRANSITIONS.labels("deactivated")
    metrics.ENHANCEMENT_TRANSITIONS.labels("permanently_disabled")
    metrics.ALERTS.labels("enhancement_approval_needed")
    lifecycle.forget.append(lambda _: policies.clear())

    @app.timer(min(cfg.monitor.interval_s, cfg.canary.interval_s))
    async def tick() -> None:
        """Skipped during a rebalance or a recovery (records may be stale or no longer ours);
        the partitions are read under the lock, which a revocation waits for."""
        if not state.settled():
            return
        async with lock:
            tenants = state.tenants()
            if tenants and state.settled():
                await apply(feed_topic, en.plan_tick(tenants, view, context()))
        metrics.set_enhancement_gauges(state.status())

    async def finish_in_flight() -> None:
        async with lock:  # a tick's effects in flight go out before its partitions are handed over
            pass

    lifecycle.revoking.append(finish_in_flight)

    return state
