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

Per partition, `budget-progress` holds the next offset to process, written after the
batch's changelog writes are acknowledged, so a gap Faust skipped around a rebalance is
fetched and folded (see `app.continuity`).

The tripwire runs here too: when a tenant's costs reach a new window, every window closed
since the last check is compared with the one before it (`agents.budget.is_breach`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import faust
import orjson

from agents.gate import alert_event
from app import metrics
from app.audit_writer import append_audit, audit_item
from app.batching import drain_in_batches
from app.continuity import contiguous, fetch_range
from app.deadletter import send_dead_letter
from app.faust_compat import event_context
from app.recent import RecentMap
from app.runtime import Runtime
from schemas import Control, Cost, InvalidEvent, decode, decode_key, ms_to_ts, ts_to_ms

from ._config import EnergyConfig
from ._periods import PERIODS, Period, iso, period_end, period_start, previous_start
from ._rules import TripwireState, is_breach, to_micros, tripwire_step
from ._window import CalendarWindow

log = logging.getLogger(__name__)
M = TypeVar("M", Cost, Control)

KEEP = {"hour": 48, "day": 14, "month": 3}
"""Closed windows kept per period (the tripwire compares the last two)."""
_MAX_WINDOWS_PER_CHECK = 1000  # a tenant idle longer than this many periods counts as one clean window


@dataclass(slots=True)
class BudgetTables:
    """The budget state a worker holds; the gate and the web views read it."""

    spend: dict[Period, Any]  # faust WindowWrapper per period
    tripwire: faust.types.TableT
    progress: faust.types.TableT

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
    )
    costs_topic, control_topic = s.topic("costs"), s.topic("control")
    dead_letters = s.topic("dead_letters")
    seen: dict[int, RecentMap[bool]] = {}

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

    async def handle(batch: list[faust.types.EventT]) -> None:
        started = time.perf_counter()
        parts = {e.message.partition for e in batch}
        next_offsets = {p: tables.progress.get(_progress_key(p)) for p in parts}
        events, redelivered, refetched = await contiguous(batch, next_offsets, refetch)
        if redelivered:
            metrics.REDELIVERED.labels(costs_topic).inc(redelivered)
        if refetched:
            metrics.REFETCHED.labels(costs_topic).inc(refetched)
        if not events:
            return
        firsts: dict[int, int] = {}
        for e in events:
            firsts.setdefault(e.message.partition, e.message.offset)
        ids = {p: await seen_ids(p, firsts[p] if next_offsets.get(p) is None else next_offsets[p]) for p in firsts}
        valid: list[tuple[faust.types.EventT, Cost, float]] = []
        for event in events:
            msg = event.message
            cost = _decoded(Cost, msg, rt, dead_letters)
            if cost is None:
                continue
            if cost.event_id in ids[msg.partition]:
                metrics.DUPLICATES.labels(costs_topic).inc()
                continue
            ids[msg.partition].put(cost.event_id, True)
            valid.append((event, cost, ts_to_ms(cost.ts) / 1000 if cost.ts else msg.timestamp))
        metrics.EVENTS.labels(costs_topic).inc(len(events))
        _fold_spend(tables, valid)
        await _check_tripwires(rt, tables, valid)
        await rt.sink.flush()
        await app.producer.flush()  # the spend is in the changelog before progress says so
        _save_progress(tables, events)
        metrics.BATCH_SIZE.labels("budget").observe(len(events))
        metrics.BATCH_SECONDS.labels("budget").observe(time.perf_counter() - started)

    @app.agent(app.topic(costs_topic, key_serializer="raw", value_serializer="raw", partitions=s.partitions),
               name="budget")
    async def budget(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="budget")

    async def handle_control(events: list[faust.types.EventT]) -> None:
        for event in events:
            command = _decoded(Control, event.message, rt, dead_letters)
            if command is not None:
                await _reset_tripwire(rt, tables, event, command)
        metrics.EVENTS.labels(control_topic).inc(len(events))
        await rt.sink.flush()

    @app.agent(app.topic(control_topic, key_serializer="raw", value_serializer="raw", partitions=s.partitions),
               name="control")
    async def control(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle_control, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="control")

    def forget(partitions: set[int]) -> None:
        for p in partitions:
            seen.pop(p, None)

    return tables, forget


def _decoded(model: type[M], msg: Any, rt: Runtime, dead_letters: str) -> M | None:
    """The tenant-keyed event in `msg`, or None once it went to the dead letters."""
    try:
        tenant = decode_key(msg.key)
        event = decode(model, msg.value, max_bytes=rt.settings.max_message_bytes)
        if event.tenant != tenant:
            raise InvalidEvent("key_mismatch", f"key {tenant!r} is not the event's tenant {event.tenant!r}")
        return event
    except InvalidEvent as exc:
        send_dead_letter(rt.sink, dead_letters, msg, exc.code, exc.message)
    except Exception as exc:  # a bug on one event must not stop the stream
        log.exception("unexpected error decoding an event", extra={"topic": msg.topic, "offset": msg.offset})
        send_dead_letter(rt.sink, dead_letters, msg, "processing_error", f"{type(exc).__name__}: {exc}")
    return None


def _progress_key(partition: int) -> str:
    return f"costs/{partition}"


def _save_progress(tables: BudgetTables, events: list) -> None:
    last: dict[int, Any] = {}
    for event in events:
        last[event.message.partition] = event
    for partition, event in last.items():
        with event_context(event):
            tables.progress[_progress_key(partition)] = event.message.offset + 1


def _fold_spend(tables: BudgetTables, valid: list[tuple[Any, Cost, float]]) -> None:
    """Add each cost to its tenant's and its workflow's window of every period, once."""
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
        folded = None
        for event, micros, tokens in items:
            if event.message.offset <= value["offset"]:
                continue  # already in this value: a replay after a crash
            value["micros"] += micros
            value["tokens"] += tokens
            value["n"] += 1
            value["offset"] = event.message.offset
            folded = event
        if folded is not None:
            with event_context(folded):
                window[scope] = value


async def _check_tripwires(rt: Runtime, tables: BudgetTables, valid: list[tuple[Any, Cost, float]]) -> None:
    seen: dict[str, tuple[float, float, Any]] = {}  # tenant → (earliest, latest event time, latest event)
    for event, cost, at in valid:
        first, last, latest = seen.get(cost.tenant, (at, at, event))
        seen[cost.tenant] = (min(first, at), *((at, event) if at >= last else (last, latest)))
    for tenant, (first, last, event) in seen.items():
        scoped = rt.energy.tenant_budget(tenant)
        if scoped is not None:
            await _check_tripwire(rt, tables, tenant, scoped.period, first, last, event)


async def _check_tripwire(rt: Runtime, tables: BudgetTables, tenant: str, period: Period, first: float,
                          last: float, event: Any) -> None:
    """Judge every window of `tenant` closed since the last check (on first sight: since the
    first window with costs), oldest first."""
    cfg: EnergyConfig = rt.energy
    entry = tables.tripwire.get(tenant) or {"checked": None, "consecutive": 0, "downgraded": False}
    newest_closed = previous_start(period, period_start(period, last))
    checked = entry["checked"]
    if checked is None:
        checked = previous_start(period, period_start(period, first))
    if newest_closed <= checked:
        if entry["checked"] is None:
            with event_context(event):
                tables.tripwire[tenant] = {**entry, "checked": checked, "period": period}
        return
    state = TripwireState(entry["consecutive"], entry["downgraded"])
    windows: list[float] = []
    w = newest_closed
    while w > checked and len(windows) < _MAX_WINDOWS_PER_CHECK:
        windows.append(w)
        w = previous_start(period, w)
    changes = []
    if w > checked:  # idle for longer than we look back: one clean window
        state, change = tripwire_step(state, False, cfg.tripwire)
        changes.append((w, None, change, state))
    for w in reversed(windows):
        tokens = tables.spent(period, tenant, w)[1]
        before = tables.spent(period, tenant, previous_start(period, w))[1]
        state, change = tripwire_step(state, is_breach(before, tokens, cfg.tripwire.breach_threshold), cfg.tripwire)
        changes.append((w, (before, tokens), change, state))
    with event_context(event):
        tables.tripwire[tenant] = {**entry, **state.as_dict(), "checked": newest_closed, "period": period}
    metrics.TRIPWIRE_DOWNGRADED.labels(tenant).set(int(state.downgraded))
    for w, counts, change, after in changes:
        if change is not None:
            await _tripwire_change(rt, event.message.partition, tenant, period, w, counts, change, after)


async def _tripwire_change(rt: Runtime, partition: int, tenant: str, period: Period, window: float,
                           counts: tuple[int, int] | None, change: str, state: TripwireState) -> None:
    cfg = rt.energy.tripwire
    ts = ms_to_ts(round(period_end(period, window) * 1000))
    details = {"period": period, "window_start": iso(window), "consecutive": state.consecutive,
               "breach_threshold": cfg.breach_threshold, "mode": cfg.downgrade_mode if change == "downgraded" else None}
    if counts is not None:
        details["previous_tokens"], details["tokens"] = counts
    if change == "downgraded":
        kind, severity = "tripwire_downgrade", "warning"
        message = (f"{state.consecutive} windows in a row grew token use by more than {cfg.breach_threshold}%: "
                   f"tenant {tenant} runs in {cfg.downgrade_mode} mode until reset")
    else:
        kind, severity = "tripwire_recovered", "info"
        message = f"window {iso(window)} came in under the tripwire threshold: tenant {tenant} is no longer downgraded"
    await _emit(rt, partition, tenant, kind, severity, message, details, f"{tenant}|{period}|{window}", ts,
                {"tripwire": {"tenant": tenant, "change": change, **details}})

async def _reset_tripwire(rt: Runtime, tables: BudgetTables, event: Any, command: Control) -> None:
    """Lift the tenant's downgrade: audited and alerted first, then recorded with the
    command's id, so a redelivered command is recognised and a crash in between re-audits
    (same ids) rather than loses the record."""
    tenant = command.tenant
    entry = tables.tripwire.get(tenant) or {"checked": None, "consecutive": 0, "downgraded": False}
    if entry.get("reset_by") == command.event_id:
        metrics.DUPLICATES.labels(event.message.topic).inc()
        return
    ts = command.ts or ms_to_ts(round(event.message.timestamp * 1000))
    details = {"operator_id": command.operator_id, "reason": command.reason, "was_downgraded": bool(entry["downgraded"])}
    await _emit(rt, event.message.partition, tenant, "tripwire_reset", "info",
                f"operator {command.operator_id} reset the tripwire of {tenant}: {command.reason}",
                details, command.event_id, ts, {"tripwire": {"tenant": tenant, "change": "reset", **details}},
                source_event_id=command.event_id)
    await rt.sink.flush()
    with event_context(event):
        tables.tripwire[tenant] = {**entry, "consecutive": 0, "downgraded": False, "reset_by": command.event_id}
    metrics.TRIPWIRE_DOWNGRADED.labels(tenant).set(0)


async def _emit(rt: Runtime, partition: int, tenant: str, kind: str, severity: str, message: str,
                details: dict[str, Any], id_source: str, ts: str, change: dict[str, Any],
                source_event_id: str | None = None) -> None:
    """An alert and its audit records (the alert, and the state change it reports)."""
    alert = alert_event(id_source=id_source, kind=kind, tenant=tenant, severity=severity, message=message,
                        details=details, source_event_id=source_event_id, ts=ts)
    rt.sink.add(rt.settings.topic("alerts"), partition, tenant.encode(), orjson.dumps(alert))
    await append_audit(rt, partition, [
        audit_item("sc-" + alert["event_id"][2:], "state_change", tenant, ts, rt.policy_version, change),
        audit_item("au-" + alert["event_id"][2:], "alert", tenant, ts, rt.policy_version, {"alert": alert}),
    ])
    metrics.ALERTS.labels(kind).inc()
    log.warning(message, extra={"event_id": alert["event_id"], "tenant": tenant})
