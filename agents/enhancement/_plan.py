"""The enhancement agent's cores: submissions, the feed, operator commands and the
monitor's tick, each a pure function from records and a read-only view to `Effects`.

Where things live. A submission arrives on `enhancements` keyed by its enhancement id; the
enhancement's record lives on its *tenant's* partition, beside the tenant's decisions, so
that a tenant's limit of active enhancements and its policy canaries are judged in one
place. So the partition of the enhancement id keeps a directory entry (id → tenant) and
forwards the submission on the internal feed topic keyed by the tenant; telemetry of an
enhancement (keyed by its source) is folded per batch into partials, sent on the feed keyed
by the enhancement id, and forwarded by the directory to the tenant's partition. Every step
is idempotent: a submission by its event id, a partial by its id.

Order of effects: a submission's directory entry is written after its forward was sent
(a crash in between forwards it again; the tenant's partition drops the repeat), and an
enhancement's record after its events went out and were audited, so a redelivery makes
the same transitions under the same event ids.

Modes: `automatic` makes every transition; `semi_automatic` holds each activation (from
`validated` or after a cooldown) for an operator's approval; `manual` holds every decision
(the preflight's outcome, an activation, a promotion, a deactivation). A held transition
raises an `enhancement_approval_needed` alert once; `approve` on `control` makes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

import orjson

from resontinex.agents.effects import AuditItem, Effects, EffectsBuilder, Output, Record, TableWrite, audit_item
from resontinex.agents.events import alert_event, derived_id
from resontinex.schemas import (Control, EnhancementSubmission, InvalidEvent, decode_json, decode_key, ms_to_ts,
                                payload_json_schema)
from resontinex.topics import partition_of

from ._canary import MetricJudge, judge_canary
from ._config import EnhancementConfig
from ._lifecycle import Awaiting, Enhancement, Transition, move
from ._monitor import Assessment, Step, assess, next_step
from ._preflight import Installed, PayloadCheck, installed_version, preflight
from ._ramp import Ramp, ramp_steps
from ._series import EnhancementSeries
from ._stats import WindowStats

__all__ = ["DIRECTORY_TABLE", "FEED_POLICY", "FEED_ROUTED", "FEED_SUBMISSION", "FEED_TELEMETRY", "INDEX_TABLE",
           "POLICY_KINDS", "POOLS_TABLE", "SERIES_TABLE",
           "STATE_TABLE", "Context", "EnhancementView", "plan_command", "plan_feed", "plan_submissions",
           "plan_tick"]

log = logging.getLogger(__name__)

STATE_TABLE: Final = "enhancement-state"
SERIES_TABLE: Final = "enhancement-series"
POOLS_TABLE: Final = "enhancement-pools"
INDEX_TABLE: Final = "enhancement-tenants"
DIRECTORY_TABLE: Final = "enhancement-directory"
FEED_SUBMISSION: Final = "submission"
FEED_TELEMETRY: Final = "telemetry"
"""A partial keyed by its enhancement id, on its way to the directory."""
FEED_ROUTED: Final = "telemetry_routed"
"""A partial keyed by its tenant, on its way to the enhancement's series."""
FEED_POLICY: Final = "policy_outcomes"
"""Outcomes of decisions a policy under canary took part in (from the outcomes agent)."""
POLICY_KINDS: Final = ("trust_policy", "routing_policy")
"""The kinds the gate applies to live decisions, ramped on their outcomes (`_ramp`); a
tenant has one of them active at a time, so an outcome judges one change."""
COMMANDS_KEPT: Final = 20


class EnhancementView(Protocol):
    """What the cores read: the tables, on the partitions this worker owns."""

    def enhancement(self, enhancement_id: str) -> Enhancement | None: ...
    def series(self, enhancement_id: str, *, pools: bool = False) -> EnhancementSeries | None:
        """The enhancement's windows (and its pooled samples, when `pools`: a bigger read)."""
        ...
    def tenant_enhancements(self, tenant: str) -> list[str]: ...
    def directory(self, enhancement_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Context:
    cfg: EnhancementConfig
    partitions: int
    policy_version: str
    now: float
    installed: Installed = installed_version
    max_message_bytes: int = 1_048_576
    payload_check: PayloadCheck | None = None
    """What preflight asks beyond the schema (the shell checks a policy against the configuration)."""

    @property
    def ts(self) -> str:
        return ms_to_ts(round(self.now * 1000))


def plan_submissions(records: Sequence[Record], view: EnhancementView, ctx: Context) -> Effects:
    """`enhancements` records → each valid new submission forwarded to its tenant's partition."""
    out = EffectsBuilder()
    taken: dict[str, str] = {}  # enhancement id → submission event id, in this batch
    for record in records:
        out.count("EVENTS", record.topic)
        try:
            key = decode_key(record.key)
            _, sub = decode_json(EnhancementSubmission, record.value, max_bytes=ctx.max_message_bytes)
            if key != sub.enhancement_id:
                raise InvalidEvent("key_mismatch", f"key {key!r} is not the enhancement id {sub.enhancement_id!r}")
        except InvalidEvent as exc:
            out.reject(record, exc.code, exc.message, round(ctx.now * 1000))
            continue
        entry = view.directory(sub.enhancement_id)
        first = taken.get(sub.enhancement_id) or (entry["event_id"] if entry else None)
        if first == sub.event_id:
            out.count("DUPLICATES", record.topic)
            continue
        if first is not None:
            out.reject(record, "enhancement_exists",
                       f"enhancement {sub.enhancement_id!r} was submitted already (event {first!r}); submit a new "
                       "version under a new enhancement id", round(ctx.now * 1000))
            continue
        taken[sub.enhancement_id] = sub.event_id
        feed = {"type": FEED_SUBMISSION, "event_id": sub.event_id, "received_at": ctx.now,
                "submission": sub.model_dump(mode="json")}
        out.outputs.append(Output("enhancement_feed", partition_of(sub.tenant, ctx.partitions), sub.tenant.encode(),
                                  orjson.dumps(feed)))
        out.late.append(TableWrite(DIRECTORY_TABLE, sub.enhancement_id, {"tenant": sub.tenant,
                                                                         "event_id": sub.event_id},
                                   record.partition))
    return out.effects()


class _Plan:
    """One plan's changes: records and series as they stand after the steps so far."""

    def __init__(self, view: EnhancementView, ctx: Context) -> None:
        self.view, self.ctx, self.cfg = view, ctx, ctx.cfg
        self.out = EffectsBuilder()
        self.records: dict[str, Enhancement] = {}
        self.series: dict[str, EnhancementSeries] = {}
        self.with_pools: set[str] = set()
        """Series read (or started) with their pools."""
        self.pools_changed: set[str] = set()
        self.indexes: dict[str, list[str]] = {}
        self.judges = 0
        """Canary judges run by this plan (a tick runs at most `canary.judges_per_tick`)."""

    def get(self, enhancement_id: str) -> Enhancement | None:
        return self.records.get(enhancement_id) or self.view.enhancement(enhancement_id)

    def series_of(self, e: Enhancement, *, pools: bool = False) -> EnhancementSeries:
        i = e.enhancement_id
        s = self.series.get(i)
        if s is None:
            s = self.view.series(i, pools=pools) or EnhancementSeries.start(e.activated_at or self.ctx.now)
        elif pools and i not in self.with_pools:
            stored = self.view.series(i, pools=True)
            s = s.with_pools(stored) if stored is not None else s
        if pools:
            self.with_pools.add(i)
        return s

    def ids(self, tenant: str) -> list[str]:
        return self.indexes.get(tenant) or self.view.tenant_enhancements(tenant)

    def active(self, tenant: str) -> int:
        return sum(1 for i in self.ids(tenant) if (e := self.get(i)) is not None and e.state == "active")

    def emit(self, t: Transition) -> Enhancement:
        e, ctx = t.enhancement, self.ctx
        self.records[e.enhancement_id] = e
        tenant_p = partition_of(e.tenant, ctx.partitions)
        self.out.outputs.append(Output("enhancement_events", partition_of(e.enhancement_id, ctx.partitions),
                                       e.enhancement_id.encode(), orjson.dumps(t.event)))
        self.out.audit.append(AuditItem(tenant_p, audit_item("au-" + t.event["event_id"], "state_change", e.tenant,
                                                             t.event["ts"], ctx.policy_version,
                                                             {"enhancement_event": t.event})))
        self.out.count("ENHANCEMENT_TRANSITIONS", t.event["to_state"])
        if t.alert:
            self.alert(e, t.alert[0], t.alert[1], t.event["reason"]["message"],
                       {"from_state": t.event["from_state"], "to_state": t.event["to_state"],
                        "reason": t.event["reason"]["code"]}, t.event["event_id"])
        return e

    def alert(self, e: Enhancement, kind: str, severity: str, message: str, details: dict[str, Any],
              source_event_id: str) -> None:
        a = alert_event(id_source=source_event_id, kind=kind, tenant=e.tenant, severity=severity,
                        message=f"enhancement {e.enhancement_id}: {message}",
                        details={"enhancement_id": e.enhancement_id, **details}, source_event_id=source_event_id,
                        ts=self.ctx.ts)
        p = partition_of(e.tenant, self.ctx.partitions)
        self.out.outputs.append(Output("alerts", p, e.tenant.encode(), orjson.dumps(a)))
        self.out.audit.append(AuditItem(p, audit_item("au-" + a["event_id"], "alert", e.tenant, a["ts"],
                                                      self.ctx.policy_version, {"alert": a})))
        self.out.count("ALERTS", kind)

    def hold(self, e: Enhancement, awaiting: Awaiting) -> Enhancement:
        """`e` waiting for an operator's approval of `awaiting` (alerted once); a deactivation
        replaces any other transition waiting (a promotion must not hide a regression)."""
        if e.awaiting is not None and (e.awaiting.to_state == "deactivated" or awaiting.to_state != "deactivated"):
            return e
        held = self.records[e.enhancement_id] = replace(e, awaiting=awaiting)
        self.alert(held, "enhancement_approval_needed", "info",
                   f"{e.state} → {awaiting.to_state} waits for approval ({awaiting.message})",
                   {"from_state": e.state, "to_state": awaiting.to_state, "reason": awaiting.code},
                   derived_id("hold-", e.enhancement_id, str(e.transitions), awaiting.to_state))
        return held

    # --- transitions with their follow-ups

    def activate(self, e: Enhancement, code: str, message: str, evidence: dict[str, Any],
                 operator_id: str | None = None) -> Enhancement:
        share = float(e.submission.get("canary_share", 0.1))
        ramp = None
        if e.kind in POLICY_KINDS:
            ramp = Ramp.start(ramp_steps(share, self.cfg.policy), self.ctx.now, activation=e.deactivations)
            share = ramp.share
            evidence = {**evidence, "ramp": list(ramp.steps)}
        canary = share < 1.0
        self.series[e.enhancement_id] = EnhancementSeries.start(self.ctx.now)
        self.with_pools.add(e.enhancement_id)
        self.pools_changed.add(e.enhancement_id)  # the last activation's pools are dropped
        return self.emit(move(e, "active", code, message, evidence, now=self.ctx.now, operator_id=operator_id,
                              phase="canary" if canary else "full", share=share if canary else 1.0,
                              activated_at=self.ctx.now, consecutive=0, monitored_upto=None,
                              judged_at=self.ctx.now, judgement=None, cooldown_until=None, closes_at=None,
                              ramp=ramp.as_dict() if ramp else None))

    def no_slot(self, e: Enhancement) -> str | None:
        """Why `e` cannot become active now (None: it can)."""
        if self.active(e.tenant) >= self.cfg.max_concurrent:
            return (f"tenant {e.tenant!r} has {self.active(e.tenant)} active enhancements (max_concurrent "
                    f"{self.cfg.max_concurrent}): approve again once one is retired or deactivated")
        if (other := self.policy_taken(e)) is not None:
            return (f"{other!r} is the tenant's active policy enhancement (one trust or routing policy at a time): "
                    "approve again once it is not")
        return None

    def policy_taken(self, e: Enhancement) -> str | None:
        """Another active policy enhancement of the tenant, if `e` is one (one decides at a time)."""
        if e.kind not in POLICY_KINDS:
            return None
        return next((i for i in self.ids(e.tenant) if i != e.enhancement_id and (o := self.get(i)) is not None
                     and o.state == "active" and o.kind in POLICY_KINDS), None)

    def try_activate(self, e: Enhancement, code: str, message: str, evidence: dict[str, Any]) -> Enhancement:
        """Activate `e` when its tenant has a free slot and its mode lets it; else hold or wait."""
        if e.mode != "automatic":
            return self.hold(e, Awaiting("active", code, message, evidence))
        if self.no_slot(e):
            return e  # waits in its state; the tick tries again
        return self.activate(e, code, message, evidence)

    def deactivate(self, e: Enhancement, code: str, message: str, evidence: dict[str, Any], cooldown_s: float,
                   operator_id: str | None = None) -> Enhancement:
        now, n = self.ctx.now, e.deactivations + 1
        e = self.emit(move(e, "deactivated", code, message, evidence, now=now, operator_id=operator_id,
                           deactivations=n, phase=None, share=None, consecutive=0, ramp=None))
        if n >= self.cfg.max_deactivations:
            return self.emit(move(e, "permanently_disabled", "max_deactivations",
                                  f"deactivated {n} times (max_deactivations {self.cfg.max_deactivations})",
                                  {"deactivations": n}, now=now, operator_id=operator_id))
        until = now + cooldown_s
        return self.emit(move(e, "cooldown", code, f"cooling down for {cooldown_s:g} s",
                              {"cooldown_s": cooldown_s, "deactivations": n}, now=now, operator_id=operator_id,
                              cooldown_until=until))

    def apply(self, e: Enhancement, a: Awaiting, operator_id: str) -> Enhancement:
        """Make the held transition `a` (approved by `operator_id`)."""
        if a.to_state == "active" and e.state == "active":
            return self.promote(e, a.code, a.message, a.evidence, operator_id)
        if a.to_state == "active":
            return self.activate(e, a.code, a.message, a.evidence, operator_id)
        if a.to_state == "deactivated":
            return self.deactivate(e, a.code, a.message, a.evidence, a.cooldown_s, operator_id)
        e = self.emit(move(e, a.to_state, a.code, a.message, a.evidence, now=self.ctx.now, operator_id=operator_id))
        if e.state == "validated":  # the activation is the next decision (held again in manual mode)
            return self.try_activate(e, "activated", "preflight passed", {})
        return e

    def promote(self, e: Enhancement, code: str, message: str, evidence: dict[str, Any],
                operator_id: str | None = None) -> Enhancement:
        """A canary one step further: a policy's next ramp step, or full."""
        if e.ramp is None:
            return self.emit(move(e, "active", code, message, evidence, now=self.ctx.now, operator_id=operator_id,
                                  phase="full", share=1.0))
        ramp = Ramp.from_dict(e.ramp).next(self.ctx.now)
        e = self.emit(move(e, "active", "canary_promoted" if ramp.last else code, message, evidence, now=self.ctx.now,
                           operator_id=operator_id, phase="full" if ramp.last else "canary", share=ramp.share,
                           ramp=ramp.as_dict()))
        self.alert(e, "enhancement_ramp", "info", f"the candidate policy decides {ramp.share:.0%} of the requests "
                   f"now (step {ramp.step} of {len(ramp.steps) - 1})", {"share": ramp.share, "step": ramp.step},
                   derived_id("ramp-", e.enhancement_id, str(e.transitions)))
        return e

    def effects(self) -> Effects:
        for e in self.records.values():
            self.out.late.append(TableWrite(STATE_TABLE, e.enhancement_id, e.as_dict(),
                                            partition_of(e.tenant, self.ctx.partitions)))
        for enhancement_id, s in self.series.items():
            p = partition_of(self.get(enhancement_id).tenant, self.ctx.partitions)  # type: ignore[union-attr]
            self.out.late.append(TableWrite(SERIES_TABLE, enhancement_id, s.as_dict(), p))
            if enhancement_id in self.pools_changed:
                self.out.late.append(TableWrite(POOLS_TABLE, enhancement_id, s.pools_dict(), p))
        for tenant, ids in self.indexes.items():
            self.out.late.append(TableWrite(INDEX_TABLE, tenant, ids, partition_of(tenant, self.ctx.partitions)))
        return self.out.effects()


def plan_feed(records: Sequence[Record], view: EnhancementView, ctx: Context) -> Effects:
    """The internal feed: submissions and routed partials on the tenant's partition,
    partials to route on the enhancement's."""
    plan = _Plan(view, ctx)
    for record in records:
        item = orjson.loads(record.value or b"{}")
        if item["type"] == FEED_SUBMISSION:
            _submitted(plan, item)
        elif item["type"] == FEED_TELEMETRY:
            _route(plan, item)
        elif item["type"] == FEED_POLICY:
            _tally(plan, item)
        else:
            _merge(plan, item)
    return plan.effects()


def _submitted(plan: _Plan, item: dict[str, Any]) -> None:
    sub, ctx = item["submission"], plan.ctx
    if plan.get(sub["enhancement_id"]) is not None:
        plan.out.count("DUPLICATES", "enhancements")
        return
    e = Enhancement.new(sub["enhancement_id"], sub["tenant"], sub["kind"], sub["mode"], now=ctx.now, submission=sub)
    plan.indexes[e.tenant] = [*plan.ids(e.tenant), e.enhancement_id]
    e = plan.emit(move(e, "pending", "submitted", sub["description"][:200],
                       {"submission_event_id": item["event_id"], "submission": sub}, now=ctx.now))
    semantic = ctx.payload_check
    result = preflight(sub["payload"], payload_json_schema(sub["kind"]), sub["requirements"], sub["thresholds"],
                       ctx.cfg.preflight, ctx.installed,
                       check=None if semantic is None else lambda payload: semantic(sub["kind"], payload))
    e = plan.records[e.enhancement_id] = replace(e, preflight=result.evidence())
    outcome = Awaiting("validated" if result.passed else "rejected",
                       "preflight_passed" if result.passed else "preflight_failed", result.message(),
                       result.evidence())
    if e.mode == "manual":
        plan.hold(e, outcome)
        return
    e = plan.emit(move(e, outcome.to_state, outcome.code, outcome.message, outcome.evidence, now=ctx.now))
    if e.state == "validated":
        plan.try_activate(e, "activated", "preflight passed", {"preflight_score": result.checks[-1].score})


def _route(plan: _Plan, item: dict[str, Any]) -> None:
    """A partial on its enhancement's partition: forwarded to its tenant's (unknown enhancement: dropped)."""
    entry = plan.view.directory(item["enhancement_id"])
    if entry is None:
        plan.out.count("ENHANCEMENT_TELEMETRY_DROPPED", "unknown_enhancement")
        return
    tenant = entry["tenant"]
    plan.out.outputs.append(Output("enhancement_feed", partition_of(tenant, plan.ctx.partitions), tenant.encode(),
                                   orjson.dumps({**item, "type": FEED_ROUTED, "tenant": tenant})))


def _merge(plan: _Plan, item: dict[str, Any]) -> None:
    e = plan.get(item["enhancement_id"])
    if e is None or e.state != "active":
        plan.out.count("ENHANCEMENT_TELEMETRY_DROPPED", "not_active")
        return
    if "source" not in item:  # a partial of the layout before windows-so-far (sent by an older worker)
        plan.out.count("ENHANCEMENT_TELEMETRY_DROPPED", "old_layout")
        return
    stats = {m: WindowStats.from_dict(d) for m, d in item["metrics"].items()}
    samples = {m: [(int(h), float(v)) for h, v in entries] for m, entries in item["samples"].items()}
    judged = e.phase == "canary" and e.ramp is None  # only a telemetry canary's judge reads the pooled samples
    merged = plan.series_of(e, pools=judged).add(item["arm"], float(item["window_start"]), int(item["source"]),
                                                 int(item["upto"]), stats, samples, plan.cfg.canary.sample_size,
                                                 pool=judged)
    if merged is None:
        plan.out.count("ENHANCEMENT_TELEMETRY_DROPPED", "repeat_late_or_before_activation")
        return
    plan.series[e.enhancement_id] = merged
    if judged:
        plan.pools_changed.add(e.enhancement_id)
    t = plan.cfg.telemetry
    closes = float(item["window_start"]) + t.window_s + t.grace_s
    if e.closes_at is None or closes < e.closes_at:
        plan.records[e.enhancement_id] = replace(e, closes_at=closes)


def _tally(plan: _Plan, item: dict[str, Any]) -> None:
    e = plan.get(item["enhancement_id"])
    if e is None or e.state != "active" or e.ramp is None or e.phase != "canary":
        plan.out.count("ENHANCEMENT_TELEMETRY_DROPPED", "outcome_not_ramping")
        return
    plan.records[e.enhancement_id] = replace(e, ramp=Ramp.from_dict(e.ramp).add(item["outcomes"]).as_dict())


def plan_command(record: Record, command: Control, view: EnhancementView, ctx: Context) -> Effects:
    """`enhancement_approve` / `enhancement_retire` on the tenant's partition; a command that
    cannot apply is a dead letter saying why."""
    plan = _Plan(view, ctx)
    e = plan.get(command.enhancement_id or "")
    problem = None
    if e is None or e.tenant != command.tenant:
        problem = f"tenant {command.tenant!r} has no enhancement {command.enhancement_id!r}"
    elif command.event_id in e.commands:
        plan.out.count("DUPLICATES", record.topic)
        return plan.out.effects()
    elif command.action == "enhancement_retire" and e.state == "retired":
        problem = f"enhancement {e.enhancement_id!r} is retired already"
    elif command.action == "enhancement_approve" and e.awaiting is None:
        problem = f"enhancement {e.enhancement_id!r} ({e.state}) has no transition waiting for approval"
    elif command.action == "enhancement_approve" and e.state != "active" and e.awaiting.to_state == "active":  # type: ignore[union-attr]
        problem = plan.no_slot(e)
    if problem is not None or e is None:
        plan.out.reject(record, "invalid_command", problem or "", round(ctx.now * 1000))
        return plan.out.effects()
    evidence = {"operator_id": command.operator_id, "reason": command.reason, "command_event_id": command.event_id}
    e = plan.records[e.enhancement_id] = replace(e, commands=(*e.commands, command.event_id)[-COMMANDS_KEPT:])
    if command.action == "enhancement_retire":
        plan.emit(move(e, "retired", "retired", command.reason, evidence, now=ctx.now,
                       operator_id=command.operator_id, phase=None, share=None))
    else:
        assert e.awaiting is not None
        a = e.awaiting
        plan.apply(e, replace(a, evidence={**a.evidence, "approval": evidence}), command.operator_id)
    return plan.effects()


def plan_tick(tenants: Iterable[str], view: EnhancementView, ctx: Context) -> Effects:
    """One round over the tenants' enhancements: cooldowns ended, activations waiting for
    a slot, the monitor on active ones (once per newly closed window), the canary judge
    (every `canary.interval`)."""
    plan = _Plan(view, ctx)
    for tenant in tenants:
        for enhancement_id in plan.ids(tenant):
            e = plan.get(enhancement_id)
            if e is None:
                continue
            try:
                _tick_one(plan, e)
            except Exception:  # one enhancement's fault must not stop the others' monitoring (nor the worker)
                log.exception("enhancement tick failed; left as it was", extra={"event_id": enhancement_id})
                plan.out.count("ERRORS", "enhancement_tick")
    return plan.effects()


def _tick_one(plan: _Plan, e: Enhancement) -> None:
    now = plan.ctx.now
    if e.state == "cooldown" and e.cooldown_until is not None and now >= e.cooldown_until:
        plan.try_activate(e, "cooldown_over", "cooldown over: active again", {"deactivations": e.deactivations})
    elif e.state == "validated" and e.awaiting is None:
        plan.try_activate(e, "activated", "a slot is free", {"active": plan.active(e.tenant)})
    elif e.state == "active":
        _monitor(plan, e)


def _monitor(plan: _Plan, e: Enhancement) -> None:
    """The monitor once a window of `e` closed, the telemetry canary's judge when due, the
    policy ramp's judge; a series is read only when a window closes or a judge needs it."""
    cfg, now = plan.cfg, plan.ctx.now
    canary_due = e.phase == "canary" and e.ramp is None and (
        e.judged_at is None or now - e.judged_at >= cfg.canary.interval_s)
    if canary_due and plan.judges >= cfg.canary.judges_per_tick:
        canary_due = False  # due still: judged in the next tick
        plan.out.count("ENHANCEMENT_JUDGES_DEFERRED")
    if (e.closes_at is not None and now >= e.closes_at) or canary_due:
        tel = cfg.telemetry
        keep = max(cfg.monitor.stability.window, cfg.monitor.quality.window)
        series, closed = plan.series_of(e, pools=canary_due).close(now, tel.window_s, tel.grace_s, keep)
        if closed:
            plan.series[e.enhancement_id] = series
            e = plan.records[e.enhancement_id] = replace(e, closes_at=series.next_close(tel.window_s, tel.grace_s))
        if _watch(plan, e, series):
            return  # deactivated (or its deactivation held)
        if canary_due:
            plan.judges += 1
            _judge(plan, plan.records.get(e.enhancement_id, e), series)
    if e.phase == "canary" and e.ramp is not None:
        _ramp(plan, plan.records.get(e.enhancement_id, e))


def _watch(plan: _Plan, e: Enhancement, series: EnhancementSeries) -> bool:
    """One round of the monitor's rules per newly closed window of the enhancement arm, in
    order (several close at once after a pause); whether it deactivated `e` (or holds its
    deactivation)."""
    cfg = plan.cfg
    for upto in series.closed_since("enhancement", e.monitored_upto):
        means = series.means("enhancement", upto=upto)
        assessment = assess(means, e.submission.get("baseline"), cfg.monitor)
        for trigger in assessment.triggers:
            plan.out.count("ENHANCEMENT_TRIGGERS", trigger.check, trigger.severity)
        step = next_step(e.consecutive, assessment, cfg.monitor)
        e = plan.records[e.enhancement_id] = replace(e, consecutive=step.consecutive, monitored_upto=upto)
        if step.deactivate:
            _deactivate_for(plan, e, step, assessment, means)
            return True
    return False


def _deactivate_for(plan: _Plan, e: Enhancement, step: Step, assessment: Assessment,
                    means: dict[str, list[float]]) -> None:
    evidence = {**assessment.as_dict(), "consecutive": step.consecutive, "means": means}
    message = "; ".join(t.message for t in assessment.triggers)
    if e.mode == "manual":
        plan.hold(e, Awaiting("deactivated", step.code, message, evidence, step.cooldown_s))
    else:
        plan.deactivate(e, step.code, message, evidence, step.cooldown_s)


def _ramp(plan: _Plan, e: Enhancement) -> None:
    """A policy's step judged on its outcomes: the next step, or rolled back."""
    assert e.ramp is not None
    judgement = Ramp.from_dict(e.ramp).judge(plan.cfg.policy, plan.cfg.monitor.tolerance)
    if judgement.verdict == "wait":
        return
    plan.out.count("ENHANCEMENT_CANARY_JUDGEMENTS", judgement.verdict)
    evidence = judgement.evidence
    if judgement.verdict == "fail":
        cooldown = plan.cfg.monitor.cooldown.canary_failed_s
        if e.mode == "manual":
            plan.hold(e, Awaiting("deactivated", "policy_rolled_back", judgement.reason, evidence, cooldown))
        else:
            plan.deactivate(e, "policy_rolled_back", f"rolled back: {judgement.reason}", evidence, cooldown)
    elif e.mode == "manual":
        plan.hold(e, Awaiting("active", "ramp_step", judgement.reason, evidence))
    else:
        plan.promote(e, "ramp_step", judgement.reason, evidence)


def _judge(plan: _Plan, e: Enhancement, series: EnhancementSeries) -> None:
    cfg, ctx = plan.cfg.canary, plan.ctx
    metrics = _judge_metrics(e, cfg.metrics)
    arms = {arm: series.pooled(arm) for arm in ("enhancement", "baseline")}
    settings = cfg.judge
    if settings.group_weights and not {m.group for m in metrics} <= set(settings.group_weights):
        settings = replace(settings, group_weights={})  # a submission's own groups: weighted equally
    samples = {arm: {m.name: pooled[m.name].values for m in metrics if m.name in pooled}
               for arm, pooled in arms.items()}  # only the metrics judged
    judgement = judge_canary(samples["enhancement"], samples["baseline"], metrics, settings)
    plan.out.count("ENHANCEMENT_CANARY_JUDGEMENTS", judgement.verdict)
    e = plan.records[e.enhancement_id] = replace(e, judged_at=ctx.now, judgement=judgement.as_dict())
    evidence = {"judgement": judgement.as_dict(),
                "samples": {arm: {m: p.count for m, p in pooled.items()} for arm, pooled in arms.items()}}
    if judgement.verdict == "fail":
        if e.mode == "manual":
            plan.hold(e, Awaiting("deactivated", "canary_failed", judgement.reason, evidence,
                                  plan.cfg.monitor.cooldown.canary_failed_s))
        else:
            plan.deactivate(e, "canary_failed", judgement.reason, evidence, plan.cfg.monitor.cooldown.canary_failed_s)
        return
    scored = [m for m in judgement.metrics if m.outcome != "nodata"]
    enough = scored and min(min(m.n_enhancement, m.n_baseline) for m in scored) >= cfg.min_samples
    if judgement.verdict == "pass" and enough:
        message = f"canary passed ({judgement.reason}); promoted to full"
        if e.mode == "manual":
            plan.hold(e, Awaiting("active", "canary_promoted", message, evidence))
        else:
            plan.emit(move(e, "active", "canary_promoted", message, evidence, now=ctx.now, phase="full", share=1.0))


def _judge_metrics(e: Enhancement, default: tuple[MetricJudge, ...]) -> tuple[MetricJudge, ...]:
    named = e.submission.get("judge")
    if not named:
        return default
    return tuple(MetricJudge(j["name"], j["direction"], j["tolerance"], j["group"], j["critical"]) for j in named)

