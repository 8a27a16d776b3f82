"""The budget's batch cores: `costs` records in, spend folds and tripwire changes out.

`plan_costs` decodes each cost (bad ones become dead letters; one dated more than
`FUTURE_TOLERANCE_S` ahead of the clock too: it would land in a window nobody judges
yet), drops repeated event ids, folds each cost into its tenant's and its workflow's
window of every period, and judges the tripwire of each tenant whose budget has a period
closed since it was last judged. `plan_reset` applies an operator's `tripwire_reset`.
Both read state only through a `BudgetView` and return `Effects` for the shell's applier
(`resontinex.app.wiring.budget`).

A spend value is `{micros, tokens, n, offset}`: money in integer micro-dollars and the
input offset of the last cost folded in. That offset makes a replay exact: after a crash
the records since the last commit come again, and a value skips every cost at or below
its own offset, whichever of the batch's table writes reached the changelog before the
crash. A value whose costs were all folded before is written again all the same: after a
crash the local store can hold a value its changelog never received, and this write is
what carries it there.

Tripwire changes are alerted and audited before the `budget-tripwire` entry records them
(a late write), so a crash in between re-sends the same alert and audit records
(deterministic ids) instead of losing them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from resontinex.agents.effects import AuditItem, Count, Effects, Output, Record, TableWrite, audit_item, rejected
from resontinex.agents.events import alert_event
from resontinex.schemas import Control, Cost, InvalidEvent, decode_keyed, ms_to_ts, ts_to_ms

from ._usage import tokens_observations
from ._config import EnergyConfig
from ._periods import PERIODS, Period, iso, period_end, period_start, previous_start
from ._rules import TripwireState, is_breach, to_micros, tripwire_step

__all__ = ["BudgetView", "CostBatch", "CostsPlan", "FUTURE_TOLERANCE_S", "plan_costs", "plan_reset", "spend_table"]

log = logging.getLogger(__name__)

FUTURE_TOLERANCE_S = 300.0
MAX_WINDOWS_PER_CHECK = 1000
"""A tenant idle longer than this many periods counts as one clean window."""
RESETS_REMEMBERED = 50
EMPTY = {"micros": 0, "tokens": 0, "n": 0, "offset": -1}


def spend_table(period: Period) -> str:
    """The windowed table holding spend per scope for `period`."""
    return f"budget-spend-{period}"


class BudgetView(Protocol):
    def seen_cost(self, partition: int, event_id: str) -> bool:
        """Whether a cost with this id was folded on `partition` (the last `dedupe_horizon` ids)."""
        ...

    def spend(self, period: Period, scope: str, start: float) -> dict[str, Any] | None:
        """The spend value of `scope` in the `period` window starting at `start`."""
        ...

    def tripwire(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's `budget-tripwire` entry."""
        ...


@dataclass(frozen=True, slots=True)
class CostBatch:
    """`costs` records of partitions this worker owns, in order; `now`: the wall clock."""

    records: Sequence[Record]
    now: float


@dataclass(frozen=True, slots=True)
class CostsPlan:
    effects: Effects
    seen: tuple[tuple[int, str], ...] = ()
    """(partition, event id) of every cost folded: the shell keeps them for dedupe."""


def plan_costs(batch: CostBatch, view: BudgetView, cfg: EnergyConfig, *, max_message_bytes: int,
               policy_version: str) -> CostsPlan:
    """The plan for one batch of costs; `view` is read, never changed."""
    outputs: list[Output] = []
    counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
    valid: list[tuple[Record, Cost, float]] = []
    seen: dict[tuple[int, str], None] = {}
    horizon = batch.now + FUTURE_TOLERANCE_S
    now_ms = round(batch.now * 1000)
    for record in batch.records:
        counts[("EVENTS", (record.topic,))] += 1
        try:
            cost = decode_keyed(Cost, record.key, record.value, max_bytes=max_message_bytes)[2]
            at = ts_to_ms(cost.ts) / 1000 if cost.ts else record.timestamp
            if at > horizon:
                raise InvalidEvent("out_of_range", f"ts is more than {FUTURE_TOLERANCE_S:g} s in the future")
        except InvalidEvent as exc:
            outputs.append(_dead_letter(record, exc.code, exc.message, now_ms, counts))
            continue
        except Exception as exc:  # a bug on one event must not stop the stream
            log.exception("unexpected error decoding an event", extra={"topic": record.topic, "offset": record.offset})
            outputs.append(_dead_letter(record, "processing_error", f"{type(exc).__name__}: {exc}", now_ms, counts))
            continue
        key = (record.partition, cost.event_id)
        if key in seen or view.seen_cost(*key):
            counts[("DUPLICATES", (record.topic,))] += 1
            continue
        seen[key] = None
        valid.append((record, cost, at))
    folded = _fold(valid, view)
    spend_writes = tuple(TableWrite(spend_table(period), scope, value, partition, at=start)
                         for (period, scope, start), (value, partition) in folded.items())
    tripwire = _Tripwire(cfg, view, folded, policy_version)
    for tenant, (first, last, partition) in _spans(valid).items():
        scoped = cfg.tenant_budget(tenant)
        if scoped is not None:
            tripwire.check(tenant, scoped.period, first, last, partition)
    effects = Effects(early_writes=spend_writes, outputs=(*outputs, *tripwire.outputs), audit=tuple(tripwire.audit),
                      late_writes=tuple(tripwire.writes),
                      counts=tuple(Count(m, labels, n) for (m, labels), n in (counts + tripwire.counts).items()),
                      observations=tokens_observations((c.provider, c.model, c.input_tokens, c.output_tokens)
                                                       for _, c, _ in valid))
    return CostsPlan(effects, tuple(seen))


def plan_reset(record: Record, command: Control, view: BudgetView, cfg: EnergyConfig, policy_version: str) -> Effects:
    """Lift `command.tenant`'s downgrade; a command applied before is recognised by id."""
    tenant = command.tenant
    entry = _entry(view, tenant)
    resets = list(entry.get("resets", []))
    if command.event_id in resets:
        return Effects(counts=(Count("DUPLICATES", (record.topic,)),))
    tripwire = _Tripwire(cfg, view, {}, policy_version)
    ts = command.ts or ms_to_ts(round(record.timestamp * 1000))
    details = {"operator_id": command.operator_id, "reason": command.reason,
               "was_downgraded": bool(entry["downgraded"])}
    tripwire.emit(record.partition, tenant, "tripwire_reset", "info",
                  f"operator {command.operator_id} reset the tripwire of {tenant}: {command.reason}",
                  details, command.event_id, ts, {"tripwire": {"tenant": tenant, "change": "reset", **details}},
                  source_event_id=command.event_id)
    log.info("tripwire reset", extra={"event_id": command.event_id, "tenant": tenant})
    value = {**entry, "consecutive": 0, "downgraded": False, "resets": [*resets, command.event_id][-RESETS_REMEMBERED:]}
    return Effects(outputs=tuple(tripwire.outputs), audit=tuple(tripwire.audit),
                   late_writes=(TableWrite("budget-tripwire", tenant, value, record.partition),),
                   counts=tuple(Count(m, labels, n) for (m, labels), n in tripwire.counts.items()))


Folded = dict[tuple[Period, str, float], tuple[dict[str, Any], int]]
"""(period, scope, window start) → (the new spend value, its partition)."""


def _fold(valid: list[tuple[Record, Cost, float]], view: BudgetView) -> Folded:
    """Add each cost to its tenant's and its workflow's window of every period, once."""
    groups: dict[tuple[Period, str, float], list[tuple[Record, int, int]]] = defaultdict(list)
    for record, cost, at in valid:
        micros, tokens = to_micros(cost.cost_usd), cost.input_tokens + cost.output_tokens
        for period in PERIODS:
            start = period_start(period, at)
            for scope in (cost.tenant, f"{cost.tenant}/{cost.workflow}"):
                groups[(period, scope, start)].append((record, micros, tokens))
    folded: Folded = {}
    for (period, scope, start), items in groups.items():
        value = dict(view.spend(period, scope, start) or EMPTY)
        for record, micros, tokens in items:
            if record.offset <= value["offset"]:
                continue  # already in this value
            value["micros"] += micros
            value["tokens"] += tokens
            value["n"] += 1
            value["offset"] = record.offset
        folded[(period, scope, start)] = (value, items[-1][0].partition)
    return folded


def _spans(valid: list[tuple[Record, Cost, float]]) -> dict[str, tuple[float, float, int]]:
    """tenant → (earliest, latest cost time, partition)."""
    spans: dict[str, tuple[float, float, int]] = {}
    for record, cost, at in valid:
        first, last, _ = spans.get(cost.tenant, (at, at, record.partition))
        spans[cost.tenant] = (min(first, at), max(last, at), record.partition)
    return spans


def _entry(view: BudgetView, tenant: str) -> dict[str, Any]:
    return view.tripwire(tenant) or {"checked": None, "consecutive": 0, "downgraded": False}


def _dead_letter(record: Record, code: str, message: str, now_ms: int,
                 counts: Counter[tuple[str, tuple[str, ...]]]) -> Output:
    letter, count = rejected(record, code, message, now_ms)
    counts[(count.metric, count.labels)] += 1
    return letter


class _Tripwire:
    """The tripwire judged over the view and the batch's own folds."""

    def __init__(self, cfg: EnergyConfig, view: BudgetView, folded: Folded, policy_version: str) -> None:
        self.cfg, self.view, self.folded, self.policy_version = cfg, view, folded, policy_version
        self.outputs: list[Output] = []
        self.audit: list[AuditItem] = []
        self.writes: list[TableWrite] = []
        self.counts: Counter[tuple[str, tuple[str, ...]]] = Counter()

    def tokens(self, period: Period, tenant: str, start: float) -> int:
        value = self.folded[(period, tenant, start)][0] if (period, tenant, start) in self.folded else \
            self.view.spend(period, tenant, start)
        return int(value["tokens"]) if value else 0

    def check(self, tenant: str, period: Period, first: float, last: float, partition: int) -> None:
        """Judge every window of `tenant` closed by `last` since the last check (on first
        sight: since the window of `first`, the earliest cost seen), oldest first."""
        cfg = self.cfg.tripwire
        entry = _entry(self.view, tenant)
        newest_closed = previous_start(period, period_start(period, last))
        checked = entry["checked"]
        if checked is None:
            checked = previous_start(period, period_start(period, first))
        elif newest_closed <= checked:
            return
        state = TripwireState(entry["consecutive"], entry["downgraded"])
        windows: list[float] = []
        w = newest_closed
        while w > checked and len(windows) < MAX_WINDOWS_PER_CHECK:
            windows.append(w)
            w = previous_start(period, w)
        if w > checked:  # idle for longer than we look back: one clean window
            state, change = tripwire_step(state, False, cfg)
            self.alert_change(partition, tenant, period, w, None, change, state)
        for w in reversed(windows):
            counts = (self.tokens(period, tenant, previous_start(period, w)), self.tokens(period, tenant, w))
            state, change = tripwire_step(state, is_breach(*counts, cfg.breach_threshold), cfg)
            self.alert_change(partition, tenant, period, w, counts, change, state)
        value = {**entry, **state.as_dict(), "checked": max(newest_closed, checked), "period": period}
        self.writes.append(TableWrite("budget-tripwire", tenant, value, partition))

    def alert_change(self, partition: int, tenant: str, period: Period, window: float, counts: tuple[int, int] | None,
                     change: str | None, state: TripwireState) -> None:
        if change is None:
            return
        cfg = self.cfg.tripwire
        ts = ms_to_ts(round(period_end(period, window) * 1000))
        details: dict[str, Any] = {
            "period": period, "window_start": iso(window), "consecutive": state.consecutive,
            "breach_threshold": cfg.breach_threshold, "mode": cfg.downgrade_mode if change == "downgraded" else None,
        }
        if counts is not None:
            details["previous_tokens"], details["tokens"] = counts
        if change == "downgraded":
            kind, severity = "tripwire_downgrade", "warning"
            message = (f"{state.consecutive} windows in a row grew token use by more than {cfg.breach_threshold}%: "
                       f"tenant {tenant} runs in {cfg.downgrade_mode} mode until reset")
        else:
            kind, severity = "tripwire_recovered", "info"
            message = f"window {iso(window)} came in under the tripwire threshold: {tenant} is no longer downgraded"
        self.emit(partition, tenant, kind, severity, message, details, f"{tenant}|{period}|{window}", ts,
                  {"tripwire": {"tenant": tenant, "change": change, **details}})

    def emit(self, partition: int, tenant: str, kind: str, severity: str, message: str, details: dict[str, Any],
             id_source: str, ts: str, change: dict[str, Any], source_event_id: str | None = None) -> None:
        """An alert and its audit records (the state change, then the alert)."""
        alert = alert_event(id_source=id_source, kind=kind, tenant=tenant, severity=severity, message=message,
                            details=details, source_event_id=source_event_id, ts=ts)
        self.outputs.append(Output("alerts", partition, tenant.encode(), orjson.dumps(alert)))
        pv = self.policy_version
        self.audit.append(AuditItem(partition, audit_item("sc-" + alert["event_id"][2:], "state_change", tenant, ts,
                                                          pv, change)))
        self.audit.append(AuditItem(partition, audit_item("au-" + alert["event_id"][2:], "alert", tenant, ts, pv,
                                                          {"alert": alert})))
        self.counts[("ALERTS", (kind,))] += 1
        log.warning(message, extra={"event_id": alert["event_id"], "tenant": tenant})
