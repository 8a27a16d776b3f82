"""The budget agent: `costs` → spend per tenant and tenant/workflow, per calendar period.

Spend lives in three windowed Faust tables (`budget-spend-hour|day|month`, RocksDB store,
one `CalendarWindow` per period), keyed by scope (`tenant` and `tenant/workflow`). Each
value is `{micros, tokens, n, offset}`: money in integer micro-dollars, and the input
offset of the last cost folded in. That offset makes a replay exact: after a crash the
records since the last commit come again, and a value skips every cost at or below its
own offset, whichever of the batch's table writes reached the changelog before the
crash. A cost repeated under a new offset (a producer retry) is dropped by `event_id`:
the ids of the partition's last `dedupe_horizon` records are read back from the topic
when the partition is first seen.

Per partition, `budget-progress` holds an offset below which every record was folded,
so a gap Faust skipped around a rebalance is fetched and folded (`app.continuity`). It
trails by one batch: a batch's progress is written after the *next* batch's changelog
writes were flushed, so it never runs ahead of the spend it vouches for. While a worker
runs, the next offset it expects comes from memory (exact); the table is read only for a
partition it has just taken over.

A record on another partition than its tenant's is forwarded there (`app.misrouted`).

A cost whose time (`ts`, else the record's) is more than `FUTURE_TOLERANCE_S` ahead of
the clock is a dead letter: it would land in a window nobody judges yet.

The tripwire (`app.wiring.tripwire`) runs after each batch; `control` commands reset it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

import faust
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from .. import metrics
from ..batching import drain_in_batches
from ..continuity import contiguous, fetch_range
from ..deadletter import send_dead_letter
from ..faust_compat import event_context
from ..misrouted import Forwarder
from ..recent import RecentMap
from ..runtime import Runtime
from resontinex.schemas import Control, Cost, InvalidEvent, decode, decode_keyed, ts_to_ms

from resontinex.agents.budget import PERIODS, Period, period_start, to_micros

from .calendar_window import CalendarWindow
from .tripwire import Tripwire

log = logging.getLogger(__name__)
M = TypeVar("M", Cost, Control)

KEEP = {"hour": 48, "day": 14, "month": 3}
"""Closed windows kept per period (the tripwire compares the last two)."""
FUTURE_TOLERANCE_S = 300.0


@dataclass(slots=True)
class BudgetTables:
    """The budget state a worker holds; the gate and the web views read it."""

    spend: dict[Period, Any]  # faust WindowWrapper per period
    tripwire: faust.types.TableT
    progress: faust.types.TableT
    app: faust.App
    costs_topic: str
    expected: dict[str, int] = field(default_factory=dict)
    """Progress key (topic/partition) → the next offset, for partitions this worker processed since it took them."""
    commands: dict[str, Callable[[Any, Control], Awaitable[None]]] = field(default_factory=dict)
    """`control` actions other agents handle (by action name); `tripwire_reset` is the budget's."""

    def lag(self, partition: int) -> int | None:
        """Cost records of the partition not folded yet (the spend so far understates by
        them); None before the partition's first fetch, when it is unknown."""
        try:
            highwater = self.app.consumer.highwater(TP(self.costs_topic, partition))
        except ConsumerNotStarted:
            return None
        if highwater is None:
            return None
        return max(0, highwater - (self.next_offset(self.costs_topic, partition) or 0))

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The first offset of `topic[partition]` not processed yet: exact while this worker
        runs; after a takeover the stored progress, which trails by a batch (None: never)."""
        key = _progress_key(topic, partition)
        return self.expected[key] if key in self.expected else self.progress.get(key)

    def spent(self, period: Period, scope: str, at: float) -> tuple[int, int]:
        """(micro-dollars, tokens) spent by `scope` in the `period` window holding time `at`."""
        value = self.spend[period].relative_to(period_start(period, at))[scope].value()
        return (value["micros"], value["tokens"]) if value else (0, 0)

    def downgraded(self, tenant: str) -> bool:
        state = self.tripwire.get(tenant)
        return bool(state and state["downgraded"])


def register(app: faust.App, rt: Runtime) -> tuple[BudgetTables, Callable[[set[int]], None]]:
    """Declare the budget tables and the `costs` and `control` agents; return the tables
    and the hook that forgets revoked partitions."""
    s = rt.settings
    tables = BudgetTables(
        spend={p: app.Table(f"budget-spend-{p}", default=dict, partitions=s.partitions)
               .using_window(CalendarWindow(p, keep=KEEP[p]), key_index=True) for p in PERIODS},
        tripwire=app.Table("budget-tripwire", default=None, partitions=s.partitions),
        progress=app.Table("budget-progress", default=None, partitions=s.partitions),
        app=app,
        costs_topic=s.topic("costs"),
    )
    tripwire = Tripwire(rt, tables)
    costs_topic, control_topic, dead_letters = s.topic("costs"), s.topic("control"), s.topic("dead_letters")
    seen: dict[int, RecentMap[bool]] = {}
    trailing: dict[str, Any] = {}  # progress key → the last event of the previous batch
    forwarder = Forwarder(rt.sink, s.partitions)

    async def refetch(topic: str, partition: int, start: int, end: int) -> list:
        return await fetch_range(s.bootstrap, topic, partition, start, end)

    async def seen_ids(partition: int, start: int) -> RecentMap[bool]:
        ids = seen.get(partition)
        if ids is None:
            ids = seen[partition] = RecentMap(s.dedupe_horizon)
            for event in await refetch(costs_topic, partition, max(0, start - s.dedupe_horizon), start):
                try:
                    ids.put(decode(Cost, event.message.value, max_bytes=s.max_message_bytes).event_id, True)
                except InvalidEvent:
                    pass
            log.info("cost ids recovered", extra={"partition": partition, "ids": len(ids), "before_offset": start})
        return ids

    async def in_order(batch: list, topic: str) -> tuple[list, dict[int, int | None]]:
        """The batch without redeliveries and with skipped gaps fetched (`app.continuity`)."""
        next_offsets = {p: tables.next_offset(topic, p) for p in {e.message.partition for e in batch}}
        events, redelivered, refetched = await contiguous(batch, next_offsets, refetch)
        if redelivered:
            metrics.REDELIVERED.labels(topic).inc(redelivered)
        if refetched:
            metrics.REFETCHED.labels(topic).inc(refetched)
        return events, next_offsets

    def save_progress(topic: str, events: list) -> None:
        """Record the previous batch's progress (now flushed twice); this one's trails."""
        for key, event in list(trailing.items()):
            if key.startswith(topic + "/"):
                with event_context(event):
                    tables.progress[key] = event.message.offset + 1
                del trailing[key]
        for event in events:
            trailing[_progress_key(topic, event.message.partition)] = event
        for key, event in trailing.items():
            tables.expected[key] = event.message.offset + 1

    async def handle(batch: list[faust.types.EventT]) -> None:
        started = time.perf_counter()
        events, next_offsets = await in_order(batch, costs_topic)
        if not events:
            return
        firsts: dict[int, int] = {}
        for e in events:
            firsts.setdefault(e.message.partition, e.message.offset)
        ids = {p: await seen_ids(p, firsts[p] if next_offsets.get(p) is None else next_offsets[p]) for p in firsts}
        valid: list[tuple[faust.types.EventT, Cost, float]] = []
        horizon = time.time() + FUTURE_TOLERANCE_S
        for event in forwarder.keep_own(events):
            msg = event.message
            cost = _decoded(Cost, msg, rt, dead_letters)
            if cost is None:
                continue
            if cost.event_id in ids[msg.partition]:
                metrics.DUPLICATES.labels(costs_topic).inc()
                continue
            at = ts_to_ms(cost.ts) / 1000 if cost.ts else msg.timestamp
            if at > horizon:
                send_dead_letter(rt.sink, dead_letters, msg, "out_of_range",
                                 f"ts is more than {FUTURE_TOLERANCE_S:g} s in the future")
                continue
            ids[msg.partition].put(cost.event_id, True)
            valid.append((event, cost, at))
        metrics.EVENTS.labels(costs_topic).inc(len(events))
        _fold_spend(tables, valid)
        await rt.sink.flush()
        await _check_tripwires(rt, tripwire, valid)
        await app.producer.flush()  # this batch's spend, then the previous batch's progress
        save_progress(costs_topic, events)
        metrics.BATCH_SIZE.labels("budget").observe(len(events))
        metrics.BATCH_SECONDS.labels("budget").observe(time.perf_counter() - started)

    async def handle_control(batch: list[faust.types.EventT]) -> None:
        events, _ = await in_order(batch, control_topic)
        for event in forwarder.keep_own(events):
            command = _decoded(Control, event.message, rt, dead_letters)
            if command is None:
                continue
            if command.action == "tripwire_reset":
                await tripwire.reset(event, command)
            else:
                await tables.commands[command.action](event, command)
        metrics.EVENTS.labels(control_topic).inc(len(events))
        await rt.sink.flush()
        await app.producer.flush()
        save_progress(control_topic, events)

    _agent(app, rt, costs_topic, "budget", handle)
    _agent(app, rt, control_topic, "control", handle_control)

    def forget(partitions: set[int]) -> None:
        for p in partitions:
            seen.pop(p, None)
            for topic in (costs_topic, control_topic):
                trailing.pop(_progress_key(topic, p), None)
                tables.expected.pop(_progress_key(topic, p), None)

    return tables, forget


def _agent(app: faust.App, rt: Runtime, topic: str, name: str,
           handle: Callable[[list], Awaitable[None]]) -> None:
    s = rt.settings

    async def consume(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name=name)

    app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=s.partitions), name=name)(consume)


def _decoded(model: type[M], msg: Any, rt: Runtime, dead_letters: str) -> M | None:
    """The tenant-keyed event in `msg`, or None once it went to the dead letters."""
    try:
        return decode_keyed(model, msg.key, msg.value, max_bytes=rt.settings.max_message_bytes)[2]
    except InvalidEvent as exc:
        send_dead_letter(rt.sink, dead_letters, msg, exc.code, exc.message)
    except Exception as exc:  # a bug on one event must not stop the stream
        log.exception("unexpected error decoding an event", extra={"topic": msg.topic, "offset": msg.offset})
        send_dead_letter(rt.sink, dead_letters, msg, "processing_error", f"{type(exc).__name__}: {exc}")
    return None


def _progress_key(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def _fold_spend(tables: BudgetTables, valid: list[tuple[Any, Cost, float]]) -> None:
    """Add each cost to its tenant's and its workflow's window of every period, once.

    A value whose costs were all folded before (a replay) is written again all the same:
    after a crash the local store can hold a value its changelog never received, and this
    write is what carries it there.
    """
    groups: dict[tuple[Period, str, float], list[tuple[Any, int, int]]] = defaultdict(list)
    for event, cost, at in valid:
        micros, tokens = to_micros(cost.cost_usd), cost.input_tokens + cost.output_tokens
        for period in PERIODS:
            start = period_start(period, at)
            for scope in (cost.tenant, f"{cost.tenant}/{cost.workflow}"):
                groups[(period, scope, start)].append((event, micros, tokens))
    for (period, scope, start), items in groups.items():
        window = tables.spend[period].relative_to(start)
        value = dict(window[scope].value() or {"micros": 0, "tokens": 0, "n": 0, "offset": -1})
        for event, micros, tokens in items:
            if event.message.offset <= value["offset"]:
                continue  # already in this value
            value["micros"] += micros
            value["tokens"] += tokens
            value["n"] += 1
            value["offset"] = event.message.offset
        with event_context(items[-1][0]):
            window[scope] = value


async def _check_tripwires(rt: Runtime, tripwire: Tripwire, valid: list[tuple[Any, Cost, float]]) -> None:
    seen: dict[str, tuple[float, float, Any]] = {}  # tenant → (earliest, latest event time, latest event)
    for event, cost, at in valid:
        first, last, latest = seen.get(cost.tenant, (at, at, event))
        seen[cost.tenant] = (min(first, at), *((at, event) if at >= last else (last, latest)))
    for tenant, (first, last, event) in seen.items():
        scoped = rt.energy.tenant_budget(tenant)
        if scoped is not None:
            await tripwire.check(tenant, scoped.period, first, last, event)
