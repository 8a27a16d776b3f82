"""The coordination agent's shell: `coordination-requests` → a team of LLM agents →
`coordination-results` (CONTRACT §3.9), in the core role.

Each request runs as its own task, up to `concurrent_runs` at once across the worker (the
reader waits for a free slot), so one slow API call never holds up the requests behind
it. Per request:

1. the core admits it (`agents.coordination.admit_request`: a bad request is a dead
   letter, a repeated event id dropped) and says whether it may run at all
   (`refusal`: the model's breaker open, the tenant's budget braked or blocked — judged
   on the budget tables, co-partitioned with this topic —, its hourly cap spent);
2. `run_coordination` runs the team through the resilient client
   (`app.clients.messages`), with the cached baselines when the `coordination-baselines`
   table has them;
3. under one lock (the tenant state is read, changed and written), `plan_run` turns the
   report into the result, a `costs` event per call, the state and the alerts, and the
   applier sends and audits them;
4. the request's offset is acknowledged once every earlier request of its partition was
   (`app.engine.inorder`): a crash re-runs what had no result out, under the same result
   and cost ids, so consumers and the budget drop the repeats.

A partition revoked while its runs are in flight: they finish and publish their result
and costs (the next owner's repeat has the same ids) but leave the tables and the audit
chain, which are the next owner's now, alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust

from resontinex.agents import coordination as co
from resontinex.agents.budget import Mark
from resontinex.agents.effects import Effects
from resontinex.schemas import SYSTEM_TENANT
from resontinex.topics import partition_of

from resontinex.app import metrics
from resontinex.app.clients.messages import BASE_URL_ENV, MessagesClient, load_api_key
from resontinex.app.engine.applier import Applier
from resontinex.app.engine.failfast import crash_only
from resontinex.app.engine.inorder import InOrderAcks
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.recent import RecentMap
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.seams import Event, Table
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.budget import BudgetTables

__all__ = ["Coordination", "register"]

log = logging.getLogger(__name__)

RECENT_IDS = 100_000
"""Request ids remembered per partition for dropping repeats (in memory: after a restart a
repeat runs again, under the same result and cost ids)."""
UNCONFIGURED = ("api_unconfigured", "no Anthropic API key: set ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE), or "
                                   "ANTHROPIC_BASE_URL for a local stand-in")
LOCAL_KEY = "local-stand-in"
"""The key sent to `$ANTHROPIC_BASE_URL` when no API key is set (a local stand-in wants one, any one)."""


@dataclass
class Coordination:
    """What the agent holds; `/coordination/status` reads it."""

    client: MessagesClient | None
    tables: dict[str, Any]  # Faust tables by name
    embedder: str | None = None
    """The embedding model's name once loaded; None before, or when none is installed."""
    in_flight: int = 0
    epochs: dict[int, int] = field(default_factory=dict)
    """Partition → how many times it was revoked (a run of an older epoch lost its partition)."""

    def status(self, owned: set[int], partitions: int, now: float) -> dict[str, Any]:
        tenants = {}
        for tenant in list(self.tables[co.STATE_TABLE].keys()):
            if partition_of(tenant, partitions) not in owned:
                continue
            st = co.TenantState.from_dict(self.tables[co.STATE_TABLE].get(tenant))
            tenants[tenant] = {
                "runs": st.runs, "gamma_mean": st.gamma_sum / st.gamma_runs if st.gamma_runs else None,
                "measured_runs": st.gamma_runs, "spent_this_hour_usd": round(st.spent_this_hour(now), 9),
                "strategies": {s: {"samples": len(h["qualities"]), "drifting": h["drifting"],
                                   "ineffective": h["ineffective"]} for s, h in st.history.items()},
            }
        breakers = {} if self.client is None else {m: self.client.breaker_state(m) for m in self.client.breakers}
        return {"tenants": tenants, "breakers": breakers, "runs_in_flight": self.in_flight,
                "api": "unconfigured" if self.client is None else "configured", "embedding_model": self.embedder}


def register(app: faust.App, rt: Runtime, budgets: BudgetTables, marks: Table, lifecycle: Lifecycle) -> Coordination:
    """Declare the coordination topic, tables and agent on `app`; `marks` is the gate's
    `budget-marks` table (a brake engaged this period holds)."""
    s, cfg = rt.settings, rt.coordination
    source_name = s.topic("coordination_requests")
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions)
    tables: dict[str, Any] = {name: app.Table(name, default=None, partitions=s.partitions)
                                for name in (co.BASELINES_TABLE, co.STATE_TABLE)}
    pending_transitions: list[tuple[str, co.Transition, co.ModelBreaker]] = []
    client = _client(cfg, lambda model, t, b: pending_transitions.append((model, t, b)))
    state = Coordination(client, tables)
    applier = Applier(rt, "coordination", source_name, tables, app.producer.flush)
    forwarder = Forwarder(rt.sink, s.partitions)
    acks = InOrderAcks()
    seen: dict[int, RecentMap[bool]] = {}
    running: set[tuple[int, str]] = set()
    slots = asyncio.Semaphore(cfg.concurrent_runs)
    finishing = asyncio.Lock()
    embed = _LazyEmbed(state)
    system_partition = partition_of(SYSTEM_TENANT, s.partitions)
    for result in ("hit", "miss"):
        metrics.COORDINATION_BASELINE_CACHE.labels(result)

    def was_seen(partition: int, event_id: str) -> bool:
        """Answered here already, or running now."""
        recent = seen.get(partition)
        return (partition, event_id) in running or (recent is not None and event_id in recent)

    def hour_left(tenant: str, now: float) -> float:
        st = co.TenantState.from_dict(tables[co.STATE_TABLE].get(tenant))
        return cfg.tenant_hourly_cap_usd - st.spent_this_hour(now)

    async def run_one(event: Event) -> None:
        record = event.message
        p, epoch = record.partition, state.epochs.get(record.partition, 0)
        now = time.time()
        effects, admitted = co.admit_request(record, seen=was_seen, now=now, max_message_bytes=s.max_message_bytes)
        if admitted is None:
            await applier.apply(effects)
            return
        request = admitted.request
        running.add((p, request.event_id))
        try:
            left = hour_left(request.tenant, now)
            run = co.run_request(request, cfg, hour_left_usd=left)
            partition_state = await rt.states.get(p)  # the budget marks the gate's audit tail holds

            def mark(key: str) -> Mark:
                held = partition_state.marks.get(key)
                stored = marks.get(key) if held is None else None
                return held or (Mark(stored["level"], stored["blocked_since"]) if stored else Mark())

            status = co.budget_status(rt.energy, request.tenant, request.workflow, spent=budgets.spent, mark=mark,
                                      now=now)
            refused = co.refusal(run, breaker_open=not client.allows(run.model), budget_status=status,
                                 hour_left_usd=left, cfg=cfg) if client is not None else UNCONFIGURED
            key = co.baseline_key(run.task, run.agents, run.model)
            if refused is not None:
                report = co.refused_report(*refused)
            else:
                assert client is not None
                cached = tables[co.BASELINES_TABLE].get(key)
                report = await co.run_coordination(
                    run, client, await embed(), criteria=cfg.judge.criteria, max_tokens=cfg.max_tokens,
                    judge_max_tokens=cfg.judge.max_tokens, price=cfg.cost_usd,
                    cached_baselines=cached["qualities"] if cached else None)
            async with finishing:
                now = time.time()
                tenant_state = co.TenantState.from_dict(tables[co.STATE_TABLE].get(request.tenant))
                planned, _ = co.plan_run(admitted, run, report, tenant_state, cfg=cfg, baseline_key=key,
                                         policy_version=rt.policy_version, now=now)
                effects += planned
                effects += _transitions(pending_transitions, p, system_partition, rt.policy_version, now)
                if state.epochs.get(p, 0) != epoch:  # revoked meanwhile: only what the next owner repeats
                    effects = Effects(outputs=tuple(o for o in effects.outputs if o.topic in ("coordination_results",
                                                                                              "costs")))
                await applier.apply(effects)
            seen.setdefault(p, RecentMap(RECENT_IDS)).put(request.event_id, True)
            log.info("coordination run", extra={"event_id": request.event_id, "tenant": request.tenant,
                                                "strategy": run.strategy, "status": report.status,
                                                "calls": len(report.calls), "cost_usd": report.cost_usd})
        finally:
            running.discard((p, request.event_id))

    async def task(event: Event) -> None:
        state.in_flight += 1
        metrics.COORDINATION_IN_FLIGHT.set(state.in_flight)
        try:
            async with crash_only("coordination"):
                await run_one(event)
            acks.done(event)
        finally:
            state.in_flight -= 1
            metrics.COORDINATION_IN_FLIGHT.set(state.in_flight)
            slots.release()

    @app.agent(source, name="coordination")
    async def coordination(stream: Any) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async for event in stream.noack().events():
            own = forwarder.keep_own([event])
            if not own:
                await rt.sink.flush()  # forwarded to its key's partition before the offset is acknowledged
                acks.started(event)
                acks.done(event)
                continue
            await slots.acquire()
            acks.started(event)
            t = asyncio.ensure_future(task(event))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    def forget(revoked: set[Any]) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == source_name}
        for p in lost:
            state.epochs[p] = state.epochs.get(p, 0) + 1
            seen.pop(p, None)
        acks.forget(lost)

    lifecycle.forget.append(forget)
    return state


def _transitions(pending: list[tuple[str, co.Transition, co.ModelBreaker]], partition: int, system_partition: int,
                 policy_version: str, now: float) -> Effects:
    effects = Effects()
    for model, transition, breaker in pending:
        effects += co.breaker_effects(model, transition, breaker, partition=partition,
                                      system_partition=system_partition, policy_version=policy_version, now=now)
    pending.clear()
    return effects


def _client(cfg: co.CoordinationConfig, on_transition: Callable[[str, co.Transition, co.ModelBreaker], None]
            ) -> MessagesClient | None:
    key = load_api_key()
    base_url = os.environ.get(BASE_URL_ENV) or None
    if key is None and base_url is None:
        log.warning("coordination: no Anthropic API key (ANTHROPIC_API_KEY or ANTHROPIC_API_KEY_FILE) and no "
                    "ANTHROPIC_BASE_URL: coordination requests are answered failed (api_unconfigured)")
        return None
    return MessagesClient(cfg, api_key=key or LOCAL_KEY, base_url=base_url, on_transition=on_transition)


class _LazyEmbed:
    """The sentence-embedding model, loaded on a worker thread at the first run (a few
    seconds; the worker starts without waiting); None when none is installed."""

    def __init__(self, state: Coordination) -> None:
        self.state = state
        self._loading: asyncio.Future[Any] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    async def __call__(self) -> co.Embed | None:
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        embedder = await asyncio.shield(self._loading)
        if embedder is None:
            return None
        from resontinex.app.clients.embedding import async_embedder
        return async_embedder(embedder, self._executor)

    def _load(self) -> Any:
        from resontinex.app.clients.embedding import EmbeddingUnavailable, SentenceEmbedder
        try:
            embedder = SentenceEmbedder.load()
        except EmbeddingUnavailable as exc:
            log.warning("coordination: consensus is not measured: %s", exc)
            return None
        self.state.embedder = embedder.name
        return embedder

