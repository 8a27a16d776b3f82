"""The tripwire on the stream: closed windows judged, downgrades alerted, resets applied.

`budget-tripwire` holds per tenant `{consecutive, downgraded, checked, period, resets}`:
`checked` is the start of the newest closed window judged, `resets` the ids of the last
reset commands applied. Every change is alerted and audited *before* the table records
it, so a crash in between re-sends the same alert and audit record (deterministic ids)
instead of losing them. One lock serialises the costs and control agents' updates of an
entry, which span awaits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from resontinex.agents.gate import alert_event
from .. import metrics
from ..audit_writer import append_audit, audit_item
from ..faust_compat import event_context
from ..runtime import Runtime
from resontinex.schemas import Control, ms_to_ts

from resontinex.agents.budget import Period, TripwireState, is_breach, iso, period_end, period_start, previous_start, tripwire_step

log = logging.getLogger(__name__)

MAX_WINDOWS_PER_CHECK = 1000  # a tenant idle longer than this many periods counts as one clean window
RESETS_REMEMBERED = 50


@dataclass(slots=True)
class _Change:
    window: float
    counts: tuple[int, int] | None  # (tokens of the window before, tokens of the window)
    change: str
    state: TripwireState


@dataclass(slots=True)
class Tripwire:
    """The tripwire of one worker, over the spend tables (`BudgetTables`)."""

    rt: Runtime
    tables: Any
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _pending: list[dict[str, Any]] = field(default_factory=list)  # audit items not sealed yet

    def entry(self, tenant: str) -> dict[str, Any]:
        return self.tables.tripwire.get(tenant) or {"checked": None, "consecutive": 0, "downgraded": False}

    async def check(self, tenant: str, period: Period, first: float, last: float, event: Any) -> None:
        """Judge every window of `tenant` closed by `last` since the last check (on first
        sight: since the window of `first`, the earliest cost seen), oldest first."""
        cfg = self.rt.energy.tripwire
        async with self.lock:
            entry = self.entry(tenant)
            newest_closed = previous_start(period, period_start(period, last))
            checked = entry["checked"]
            if checked is None:
                checked = previous_start(period, period_start(period, first))
            state = TripwireState(entry["consecutive"], entry["downgraded"])
            changes: list[_Change] = []
            if newest_closed > checked:
                windows = []
                w = newest_closed
                while w > checked and len(windows) < MAX_WINDOWS_PER_CHECK:
                    windows.append(w)
                    w = previous_start(period, w)
                if w > checked:  # idle for longer than we look back: one clean window
                    state, change = tripwire_step(state, False, cfg)
                    changes.append(_Change(w, None, change, state))
                for w in reversed(windows):
                    tokens = self.tables.spent(period, tenant, w)[1]
                    before = self.tables.spent(period, tenant, previous_start(period, w))[1]
                    state, change = tripwire_step(state, is_breach(before, tokens, cfg.breach_threshold), cfg)
                    changes.append(_Change(w, (before, tokens), change, state))
            elif entry["checked"] is not None:
                return
            for c in changes:
                if c.change is not None:
                    self._alert_change(event.message.partition, tenant, period, c)
            if any(c.change is not None for c in changes):
                await self._audit_and_flush(event.message.partition)
            with event_context(event):
                self.tables.tripwire[tenant] = {**entry, **state.as_dict(), "checked": max(newest_closed, checked),
                                                "period": period}

    async def reset(self, event: Any, command: Control) -> None:
        """Lift `command.tenant`'s downgrade; a command applied before is recognised by id."""
        tenant = command.tenant
        async with self.lock:
            entry = self.entry(tenant)
            resets = list(entry.get("resets", []))
            if command.event_id in resets:
                metrics.DUPLICATES.labels(event.message.topic).inc()
                return
            ts = command.ts or ms_to_ts(round(event.message.timestamp * 1000))
            details = {"operator_id": command.operator_id, "reason": command.reason,
                       "was_downgraded": bool(entry["downgraded"])}
            self._emit(event.message.partition, tenant, "tripwire_reset", "info",
                       f"operator {command.operator_id} reset the tripwire of {tenant}: {command.reason}",
                       details, command.event_id, ts, {"tripwire": {"tenant": tenant, "change": "reset", **details}},
                       source_event_id=command.event_id)
            await self._audit_and_flush(event.message.partition)
            with event_context(event):
                self.tables.tripwire[tenant] = {**entry, "consecutive": 0, "downgraded": False,
                                                "resets": [*resets, command.event_id][-RESETS_REMEMBERED:]}
        log.info("tripwire reset", extra={"event_id": command.event_id, "tenant": tenant})

    def _alert_change(self, partition: int, tenant: str, period: Period, c: _Change) -> None:
        cfg = self.rt.energy.tripwire
        ts = ms_to_ts(round(period_end(period, c.window) * 1000))
        details: dict[str, Any] = {
            "period": period, "window_start": iso(c.window), "consecutive": c.state.consecutive,
            "breach_threshold": cfg.breach_threshold, "mode": cfg.downgrade_mode if c.change == "downgraded" else None,
        }
        if c.counts is not None:
            details["previous_tokens"], details["tokens"] = c.counts
        if c.change == "downgraded":
            kind, severity = "tripwire_downgrade", "warning"
            message = (f"{c.state.consecutive} windows in a row grew token use by more than {cfg.breach_threshold}%: "
                       f"tenant {tenant} runs in {cfg.downgrade_mode} mode until reset")
        else:
            kind, severity = "tripwire_recovered", "info"
            message = f"window {iso(c.window)} came in under the tripwire threshold: {tenant} is no longer downgraded"
        self._emit(partition, tenant, kind, severity, message, details, f"{tenant}|{period}|{c.window}", ts,
                   {"tripwire": {"tenant": tenant, "change": c.change, **details}})

    def _emit(self, partition: int, tenant: str, kind: str, severity: str, message: str, details: dict[str, Any],
              id_source: str, ts: str, change: dict[str, Any], source_event_id: str | None = None) -> None:
        """Queue an alert and its audit records (the state change, then the alert)."""
        rt = self.rt
        alert = alert_event(id_source=id_source, kind=kind, tenant=tenant, severity=severity, message=message,
                            details=details, source_event_id=source_event_id, ts=ts)
        rt.sink.add(rt.settings.topic("alerts"), partition, tenant.encode(), orjson.dumps(alert))
        self._pending.append(audit_item("sc-" + alert["event_id"][2:], "state_change", tenant, ts,
                                        rt.policy_version, change))
        self._pending.append(audit_item("au-" + alert["event_id"][2:], "alert", tenant, ts, rt.policy_version,
                                        {"alert": alert}))
        metrics.ALERTS.labels(kind).inc()
        log.warning(message, extra={"event_id": alert["event_id"], "tenant": tenant})

    async def _audit_and_flush(self, partition: int) -> None:
        items, self._pending = self._pending, []
        await append_audit(self.rt, partition, items)
        await self.rt.sink.flush()
