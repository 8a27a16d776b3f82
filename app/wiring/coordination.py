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
4. the partition's offset is committed past the request once every earlier request of
   the partition was answered too (`app.engine.inorder`), by the agent itself: the topic
   is declared without Faust's acks, because Faust skips and acknowledges an event fetched
   in a generation that has just ended, which would commit a request nobody answered. A
   crash or a rebalance re-runs what had no result out, under the same result and cost
   ids, so consumers and the budget drop the repeats. A partition not committed yet is
   read from its beginning after every rebalance (`faust_compat.rewind_uncommitted`), and a
   record Faust consumed but never delivered to the agent (its flow stopping between the
   two) is found and read again (`app.engine.skips`, counted in `resontinex_refetched`).

Faust does not wait for these events at a rebalance (a run can take minutes, a
rebalance allows seconds). A partition revoked while its runs are in flight: they finish and publish their result, costs and alerts (the next owner runs the
request again under the same ids, so both the API calls and a repeated result are paid
for once more, but counted once) and leave the tables and the audit chain, which are the
next owner's now, alone. A crashed worker's runs leave nothing: their calls were paid
but are not on `costs` (a run's costs go out with its result).

The tenant's hourly cap is shared by its runs in flight (`agents.coordination.SharedCap`):
a call goes out only while its worst case fits in what the cap has left after every
run's spend and calls in flight. The baseline cache is read and written on the request's
partition, so a task's baselines are shared by the tenants of a partition.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import faust
from faust.types import TP

from resontinex.agents import coordination as co
from resontinex.agents.effects import Effects
from resontinex.schemas import SYSTEM_TENANT
from resontinex.topics import partition_of

from resontinex.app import metrics
from resontinex.app.clients.credentials import BASE_URL_ENV, load_api_key
from resontinex.app.engine.applier import Applier
from resontinex.app.engine.failfast import crash_only
from resontinex.app.engine.faust_compat import (commit_offsets, positions_past, read_again, recovery_pending,
                                                 rewind_uncommitted)
from resontinex.app.engine.inorder import InOrderCommits
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.recent import RecentMap
from resontinex.app.engine.record_source import Lifecycle
from resontinex.app.engine.seams import Event, Table
from resontinex.app.engine.skips import SkipWatch
from resontinex.app.otel import Tracing
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.budget import BudgetTables
from resontinex.app.wiring.gate import held_mark

if TYPE_CHECKING:
    from resontinex.app.clients.messages import MessagesClient

__all__ = ["Coordination", "register"]

log = logging.getLogger(__name__)

RECENT_IDS = 100_000
"""Request ids remembered per partition for dropping repeats while the worker runs; after a
restart the tenant state's `answered` ids (the last 1,000 per tenant) drop them."""
UNCONFIGURED = ("api_unconfigured", "no Anthropic API key: set ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE), or "
                                   "ANTHROPIC_BASE_URL for a local stand-in")
SKIP_CHECK_S = 5.0
"""How often records consumed but never delivered are looked for (two checks in a row find them)."""
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
    waiting: bool = True
    """The agent is waiting for the stream's next event (not starting a run, nor waiting for a slot)."""
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


def register(app: faust.App, rt: Runtime, budgets: BudgetTables, marks: Table, lifecycle: Lifecycle,
             tracing: Tracing | None = None) -> Coordination:
    """Declare the coordination topic, tables and agent on `app`; `marks` is the gate's
    `budget-marks` table (a brake engaged this period holds); with `tracing`, each run
    applied makes an `invoke_agent` span (GenAI semconv) from the request's arrival."""
    s, cfg = rt.settings, rt.coordination
    source_name = s.topic("coordination_requests")
    # acks=False: Faust neither waits for these events at a rebalance (a run takes minutes, a
    # rebalance allows seconds) nor commits them; the agent commits each partition itself,
    # only past requests answered (and the recovery re-reads every partition from there)
    source = app.topic(source_name, key_serializer="raw", value_serializer="raw", partitions=s.partitions,
                       acks=False)
    tables: dict[str, Any] = {name: app.Table(name, default=None, partitions=s.partitions)
                                for name in (co.BASELINES_TABLE, co.STATE_TABLE)}
    pending_transitions: list[tuple[str, co.Transition, co.ModelBreaker]] = []
    client = _client(cfg, lambda model, t, b: pending_transitions.append((model, t, b)))
    state = Coordination(client, tables)
    applier = Applier(rt, "coordination", source_name, tables, app.producer.flush)
    forwarder = Forwarder(rt.sink, s.partitions)
    commits = InOrderCommits()
    skips = SkipWatch()
    committing = asyncio.Lock()
    seen: dict[int, RecentMap[bool]] = {}
    running: set[tuple[int, str]] = set()
    caps: dict[str, tuple[co.SharedCap, int]] = {}  # tenant → its hourly cap while it has runs, and how many
    slots = asyncio.Semaphore(cfg.concurrent_runs)
    finishing = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()
    embed = _LazyEmbed(state)
    system_partition = partition_of(SYSTEM_TENANT, s.partitions)
    for result in ("hit", "miss"):
        metrics.COORDINATION_BASELINE_CACHE.labels(result)

    def tenant_state(tenant: str) -> co.TenantState:
        return co.TenantState.from_dict(tables[co.STATE_TABLE].get(tenant))

    def was_seen(partition: int, tenant: str, event_id: str) -> bool:
        """Running now, answered here already, or answered before a crash (the tenant state keeps the ids)."""
        recent = seen.get(partition)
        return ((partition, event_id) in running or (recent is not None and event_id in recent)
                or event_id in tenant_state(tenant).answered)

    def take_cap(tenant: str, now: float) -> co.SharedCap:
        cap, runs = caps.get(tenant) or (co.SharedCap(cfg.tenant_hourly_cap_usd
                                                      - tenant_state(tenant).spent_this_hour(now)), 0)
        caps[tenant] = (cap, runs + 1)
        return cap

    def give_cap(tenant: str, charged_usd: float) -> None:
        """A run of `tenant` ended; what it spent is in the tenant state now (or was never spent)."""
        cap, runs = caps[tenant]
        cap.left -= charged_usd
        cap.spent -= charged_usd
        if runs > 1:
            caps[tenant] = (cap, runs - 1)
        else:
            del caps[tenant]

    def budget_state(request: co.Admitted, partition_marks: Any, now: float) -> str | None:
        return co.budget_status(rt.energy, request.request.tenant, request.request.workflow, spent=budgets.spent,
                                mark=partial(held_mark, partition_marks, marks), now=now)

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
        cap = take_cap(request.tenant, now)
        charged = 0.0
        try:
            run = co.run_request(request, cfg)
            status = budget_state(admitted, (await rt.states.get(p)).marks, now)  # marks: the gate's audit tail
            refused = co.refusal(run, breaker_open=not client.allows(run.model), budget_status=status,
                                 hour_left_usd=cap.available, cfg=cfg) if client is not None else UNCONFIGURED
            key = co.baseline_key(run.task, run.agents, run.model, cfg.judge.criteria)
            if refused is not None:
                report = co.refused_report(*refused)
            else:
                assert client is not None
                cached = tables[co.BASELINES_TABLE].get(key)
                report = await co.run_coordination(
                    run, client, await embed(), criteria=cfg.judge.criteria, max_tokens=cfg.max_tokens,
                    judge_max_tokens=cfg.judge.max_tokens, price=cfg.cost_usd,
                    cached_baselines=cached["qualities"] if cached else None, shared_cap=cap)
            async with finishing:
                now = time.time()
                planned, after = co.plan_run(admitted, run, report, tenant_state(request.tenant), cfg=cfg,
                                             baseline_key=key, policy_version=rt.policy_version, now=now)
                effects += planned
                effects += _transitions(pending_transitions, p, system_partition, rt.policy_version, now)
                if state.epochs.get(p, 0) != epoch:
                    # revoked meanwhile: the tables and the audit chain are the next owner's now; it runs the
                    # request again, under the same result, cost and alert ids
                    effects = Effects(outputs=effects.outputs, counts=effects.counts)
                await applier.apply(effects)
                await app.producer.flush()  # the tenant state (answered ids) is durable before the offset
                charged = report.cost_usd
            if tracing is not None:
                tracing.coordination_run(request=request, report=report, model=run.model, partition=p,
                                         offset=record.offset, started_s=record.timestamp, topic=source_name,
                                         headers=getattr(record, "headers", None) or ())
            if state.epochs.get(p, 0) == epoch:
                seen.setdefault(p, RecentMap(RECENT_IDS)).put(request.event_id, True)
            log.info("coordination run", extra={"event_id": request.event_id, "tenant": request.tenant,
                                                "strategy": run.strategy, "status": report.status,
                                                "calls": len(report.calls), "cost_usd": report.cost_usd,
                                                "gamma": after.gamma_runs and after.gamma_sum / after.gamma_runs})
        finally:
            running.discard((p, request.event_id))
            give_cap(request.tenant, charged)

    async def finished(event: Event) -> None:
        """Commit the event's partition as far as every request before it is answered too."""
        p = event.message.partition
        upto = commits.done(p, event.message.offset)
        if upto is not None:
            async with committing:  # in order: a later commit never lands before an earlier one
                await commit_offsets(app, {TP(source_name, p): upto})

    async def task(event: Event) -> None:
        state.in_flight += 1
        metrics.COORDINATION_IN_FLIGHT.set(state.in_flight)
        try:
            async with crash_only("coordination"):
                await run_one(event)
                await finished(event)
        finally:
            state.in_flight -= 1
            metrics.COORDINATION_IN_FLIGHT.set(state.in_flight)
            slots.release()

    async def take(event: Event) -> None:
        commits.started(event.message.partition, event.message.offset)
        skips.arrived(event.message.partition, event.message.offset)
        if not forwarder.keep_own([event]):
            await rt.sink.flush()  # forwarded to its key's partition before the offset is committed
            await finished(event)
            return
        await slots.acquire()
        t = asyncio.ensure_future(task(event))
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    @app.agent(source, name="coordination")
    async def coordination(stream: Any) -> None:
        async for event in stream.events():
            state.waiting = False
            await take(event)
            state.waiting = True

    @app.timer(SKIP_CHECK_S)
    async def read_skipped_again() -> None:
        """Records the stream consumed but never delivered (`app.engine.skips`) are read again."""
        busy = not state.waiting or app.rebalancing or recovery_pending(app)
        lost = skips.confirm({} if busy else await positions_past(app, source_name, skips.next))
        if lost:
            log.warning("coordination: records consumed but never delivered to the agent: reading them again",
                        extra={"partitions": {p: f"{first}..{position - 1}" for p, (first, position) in lost.items()}})
            metrics.REFETCHED.labels(source_name).inc(sum(position - first for first, position in lost.values()))
            await read_again(app, source_name, {p: first for p, (first, _) in lost.items()})

    def forget(revoked: set[Any]) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == source_name}
        for p in lost:
            state.epochs[p] = state.epochs.get(p, 0) + 1
            seen.pop(p, None)
        running.difference_update({(p, i) for p, i in running if p in lost})  # given back here, they run again
        commits.forget(lost)
        skips.forget(lost)

    async def stop() -> None:
        """Runs in flight end unanswered (their requests are not acknowledged: the next owner runs them)."""
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if client is not None:
            await client.aclose()

    async def rewind(sender: faust.App, **_: Any) -> None:
        starts, sought = await rewind_uncommitted(sender, source_name)
        skips.restart(starts)
        if sought:
            log.info("coordination: partitions without a commit read from their beginning",
                     extra={"partitions": sought})

    app.on_rebalance_complete.connect(rewind)  # type: ignore[arg-type]

    lifecycle.forget.append(forget)
    lifecycle.stopping.append(stop)
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
    from resontinex.app.clients.messages import MessagesClient  # the SDK takes a second to import: only here

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
            import torch
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # its bar would land in the worker's log as warnings
            # a few short answers per run: more threads only take cores from the worker's event loop
            # (bench/coordination.py at 6,000 requests/min: runs 1.4–2.7× slower with torch's default)
            torch.set_num_threads(1)
        except ImportError:
            pass  # SentenceEmbedder.load says what is missing
        try:
            embedder = SentenceEmbedder.load()
        except EmbeddingUnavailable as exc:
            log.warning("coordination: consensus is not measured: %s", exc)
            return None
        except Exception:  # a broken install must not stop the runs: they go on without consensus
            log.exception("coordination: the embedding model failed to load; consensus is not measured")
            return None
        self.state.embedder = embedder.name
        return embedder

