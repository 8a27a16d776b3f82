"""The budget agent's shell: `costs` → `agents.budget.plan_costs` → the applier.

Spend lives in three windowed Faust tables (`budget-spend-hour|day|month`, RocksDB store,
one `CalendarWindow` per period), keyed by scope (`tenant` and `tenant/workflow`); the
core folds each batch of costs into them and judges the tripwire (`agents/budget/_plan.py`
says how a replay stays exact). A cost repeated under a new offset (a producer retry) is
dropped by `event_id`: the ids of the partition's last `dedupe_horizon` records are read
back from the topic when the partition is first seen.

Per partition, `budget-progress` holds an offset below which every record was folded,
so a gap Faust skipped around a rebalance is fetched and folded (`app.engine.continuity`). It
trails by one batch: a batch's progress is written after the *next* batch's changelog
writes were flushed, so it never runs ahead of the spend it vouches for. While a worker
runs, the next offset it expects comes from memory (exact); the table is read only for a
partition it has just taken over.

A record on another partition than its tenant's is forwarded there (`app.engine.misrouted`).
`control` commands reset the tripwire (`agents.budget.plan_reset`) or import a router
table (`app.wiring.router_import`); one lock serialises the two agents' batches, whose
tripwire writes span awaits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Awaitable, Callable

import faust
from aiokafka import TopicPartition

from resontinex.agents.budget import PERIODS, CostBatch, Period, period_start, plan_costs, plan_reset, spend_table
from resontinex.agents.effects import Effects, TableWrite
from resontinex.schemas import Control, Cost, InvalidEvent, decode, decode_keyed

from resontinex.app import metrics
from resontinex.app.engine.batching import drain_in_batches
from resontinex.app.engine import continuity
from resontinex.app.engine.continuity import FetchedEvent, fetch_range
from resontinex.app.engine.deadletter import send_dead_letter
from resontinex.app.engine.applier import Applier
from resontinex.app.engine.misrouted import Forwarder
from resontinex.app.engine.recent import RecentMap
from resontinex.app.engine.record_source import Lifecycle, RecordSource
from resontinex.app.engine.seams import Event, Table
from resontinex.app.runtime import Runtime
from resontinex.app.wiring.calendar_window import CalendarWindow
from resontinex.app.wiring.hot import attach_hot
from resontinex.app.wiring.redrive_audit import audit_redrive

log = logging.getLogger(__name__)

KEEP = {"hour": 48, "day": 14, "month": 3}
"""Closed windows kept per period (the tripwire compares the last two)."""


@dataclass(slots=True)
class BudgetTables:
    """The budget state a worker holds; the gate and the web views read it."""

    spend: dict[Period, Any]  # faust WindowWrapper per period
    tripwire: Table
    progress: Table
    app: faust.App
    costs_topic: str
    expected: dict[str, int] = field(default_factory=dict)
    """Progress key (topic/partition) → the next offset, for partitions this worker processed since it took them."""
    costs_source: RecordSource | None = None
    """Reads `costs` (Faust's consumer never fetches it, so only this source knows its end)."""
    commands: dict[str, Callable[[Event, Control], Awaitable[None]]] = field(default_factory=dict)
    """`control` actions other agents handle (by action name); `tripwire_reset` is the budget's."""

    def lag(self, partition: int) -> int | None:
        """Cost records of the partition not folded yet (the spend so far understates by
        them); None before the partition's first fetch, when it is unknown."""
        if self.costs_source is None:
            return None
        highwater = self.costs_source.highwater(TopicPartition(self.costs_topic, partition))
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


class CostsView:
    """`agents.budget.BudgetView` over the budget tables and the recovered cost ids."""

    def __init__(self, tables: BudgetTables) -> None:
        self.tables = tables
        self.ids: dict[int, RecentMap[bool]] = {}

    def seen_cost(self, partition: int, event_id: str) -> bool:
        return event_id in self.ids[partition]

    def spend(self, period: Period, scope: str, start: float) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables.spend[period].relative_to(start)[scope].value()
        return value

    def tripwire(self, tenant: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.tables.tripwire.get(tenant)
        return value


def register(app: faust.App, rt: Runtime, lifecycle: Lifecycle) -> BudgetTables:
    """Declare the budget tables, the `costs` source and the `control` agent; return the tables."""
    s = rt.settings
    tables = BudgetTables(
        spend={p: app.Table(spend_table(p), default=dict, partitions=s.partitions)
               .using_window(CalendarWindow(p, keep=KEEP[p]), key_index=True) for p in PERIODS},
        tripwire=app.Table("budget-tripwire", default=None, partitions=s.partitions),
        progress=app.Table("budget-progress", default=None, partitions=s.partitions),
        app=app,
        costs_topic=s.topic("costs"),
    )
    tables.commands["dead_letter_redrive"] = partial(audit_redrive, rt)
    costs_topic, control_topic, dead_letters = s.topic("costs"), s.topic("control"), s.topic("dead_letters")
    view = CostsView(tables)
    written = {**{spend_table(p): tables.spend[p] for p in PERIODS}, "budget-tripwire": tables.tripwire,
               "budget-progress": tables.progress}
    appliers = {topic: Applier(rt, name, topic, written, app.producer.flush)
                for topic, name in ((costs_topic, "budget"), (control_topic, "control"))}
    trailing: dict[str, tuple[int, int]] = {}  # progress key → (partition, next offset) of the previous batch
    forwarder = Forwarder(rt.sink, s.partitions)
    lock = asyncio.Lock()

    async def load_ids(partition: int, start: int) -> None:
        if partition in view.ids:
            return
        ids = view.ids[partition] = RecentMap(s.dedupe_horizon)
        for event in await fetch_range(s.bootstrap, costs_topic, partition, max(0, start - s.dedupe_horizon), start):
            try:
                ids.put(decode(Cost, event.message.value, max_bytes=s.max_message_bytes).event_id, True)
            except InvalidEvent:
                pass
        log.info("cost ids recovered", extra={"partition": partition, "ids": len(ids), "before_offset": start})

    async def in_order(batch: list, topic: str) -> tuple[list, dict[int, int | None]]:
        """The batch without redeliveries and with skipped gaps fetched (`app.engine.continuity`)."""
        next_offsets = {p: tables.next_offset(topic, p) for p in {e.message.partition for e in batch}}
        return await continuity.in_order(batch, next_offsets, s.bootstrap, topic), next_offsets

    def progress(topic: str, events: list) -> Effects:
        """The previous batch's progress (flushed twice once this batch's writes are); this one's trails."""
        writes = []
        for key, (partition, offset) in list(trailing.items()):
            if key.startswith(topic + "/"):
                writes.append(TableWrite("budget-progress", key, offset, partition))
                del trailing[key]
        for event in events:
            msg = event.message
            trailing[_progress_key(topic, msg.partition)] = (msg.partition, msg.offset + 1)
        return Effects(late_writes=tuple(writes))

    def expect(topic: str, events: list) -> None:
        for event in events:
            tables.expected[_progress_key(topic, event.message.partition)] = event.message.offset + 1

    async def handle(batch: list[FetchedEvent]) -> None:
        started = time.perf_counter()
        events, next_offsets = await in_order(batch, costs_topic)
        if not events:
            return
        firsts: dict[int, int] = {}
        for e in events:
            firsts.setdefault(e.message.partition, e.message.offset)
        for p, first in firsts.items():
            await load_ids(p, first if next_offsets.get(p) is None else next_offsets[p])  # type: ignore[arg-type]
        own = forwarder.keep_own(events)
        async with lock:
            plan = plan_costs(CostBatch([e.message for e in own], time.time()), view, rt.energy,
                              max_message_bytes=s.max_message_bytes, policy_version=rt.policy_version)
            for partition, event_id in plan.seen:
                view.ids[partition].put(event_id, True)
            await appliers[costs_topic].apply(plan.effects + progress(costs_topic, events))
        expect(costs_topic, events)
        metrics.BATCH_SIZE.labels("budget").observe(len(events))
        metrics.BATCH_SECONDS.labels("budget").observe(time.perf_counter() - started)

    async def handle_control(batch: list[Event]) -> None:
        events, _ = await in_order(batch, control_topic)
        async with lock:
            own = forwarder.keep_own(events)
            for event in own:
                command = _decoded(Control, event.message, rt, dead_letters)
                if command is None:
                    continue
                if command.action == "tripwire_reset":
                    await appliers[control_topic].apply(
                        plan_reset(event.message, command, view, rt.energy, rt.policy_version))
                else:
                    await tables.commands[command.action](event, command)
            metrics.EVENTS.labels(control_topic).inc(len(own))
            await appliers[control_topic].apply(progress(control_topic, events))
            await app.producer.flush()  # a Faust agent: its offsets may be committed as soon as it returns
        expect(control_topic, events)

    def forget(partitions: set[int]) -> None:
        for p in partitions:
            view.ids.pop(p, None)
            for topic in (costs_topic, control_topic):
                trailing.pop(_progress_key(topic, p), None)
                tables.expected.pop(_progress_key(topic, p), None)

    async def start_offset(topic: str, partition: int) -> int | None:
        return tables.next_offset(topic, partition)

    lifecycle.forget.append(lambda tps: forget({tp.partition for tp in tps if tp.topic in (costs_topic, control_topic)}))
    tables.costs_source = attach_hot(app, rt, costs_topic, "budget", handle, lifecycle=lifecycle,
                                     start_offset=start_offset)
    _agent(app, rt, control_topic, "control", handle_control)
    return tables


def _agent(app: faust.App, rt: Runtime, topic: str, name: str,
           handle: Callable[[list], Awaitable[None]]) -> None:
    s = rt.settings

    async def consume(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name=name)

    app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=s.partitions), name=name)(consume)


def _decoded(model: type[Control], msg: Any, rt: Runtime, dead_letters: str) -> Control | None:
    """The command in `msg`, or None once it went to the dead letters."""
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
