"""The gate's batch core: decision requests in, a frozen plan of effects out.

`plan_batch` decodes and validates each record of a batch (bad ones become dead letters),
drops repeated request ids, sends text-only requests to be scored first, scores the rest
in one numpy call and decides each: the most restrictive of what the trust gate, a
break-glass override, the budget, the router and the circuit breaker say, with every
reason listed. It reads state only through a `GateView` and returns everything the batch
changes as a `GatePlan`; the shell (`resontinex.app.wiring.gate`) applies it.

Decision ids derive from (tenant, request id). Each decision is written to the internal
topic `unaudited-decisions` before it is sent, so a request redelivered after a crash between
its decision's sending and its audit gets the very decision that may already have been sent.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson

from resontinex.agents.budget import EnergyConfig, Mark
from resontinex.agents.effects import (AuditItem, Effects, EffectsBuilder, Output, Record, TableWrite, audit_item,
                                       auditable)
from resontinex.agents.overlays import OverlaySet
from resontinex.agents.router import RoutingConfig
from resontinex.agents.trajectory import TrajectoryConfig
from resontinex.agents.trust import (TIER_DECISIONS, CalibrationAdapter, TrustConfig, evaluate_batch, evaluate_values,
                                     explain_batch, rejudge, verb_change)
from resontinex.schemas import DecisionRequest, InvalidEvent, decode_keyed, ms_to_ts

from ._budgeting import BudgetJudge, InsightCache
from ._decide import (CIRCUIT_OPEN_REASON, break_glass, decision_event, decision_id, floor_alert, most_restrictive,
                      trust_reasons)
from ._policy import PolicyCanary, arm_of, canary_of, canary_summary
from ._routing import RouteJudge, overlay_for
from ._stats import WindowStats, merge_stats, window_start
from ._text import awaiting_key, needs_text_score, text_reason, trajectory_request, unscored_request
from ._view import GateView

__all__ = ["GateBatch", "GateConfig", "GatePlan", "Remembered", "plan_batch", "STATS_WINDOW_S"]

log = logging.getLogger(__name__)

STATS_WINDOW_S = 60.0
WORST_RISK = 1.0
RETURN_MARGIN = 4096
"""Room a text-only request needs below the size limit to come back with its risk."""
RISK_UNAVAILABLE = {
    "component": "trust",
    "code": "risk_unavailable",
    "message": "no signals.epistemic_risk and no text score: judged at worst-case risk 1.0, so held back "
               "(defer at least)",
}


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Everything the gate decides by (CONTRACT §5's `policy_version` covers it)."""

    trust: TrustConfig
    energy: EnergyConfig
    routing: RoutingConfig
    trajectory: TrajectoryConfig
    overlays: OverlaySet
    policy_version: str
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class GateBatch:
    """A batch of `decision-requests` records of partitions this worker owns, in order.

    `now` is the wall clock the batch is judged at, `monotonic` the clock of the insight
    cache; `circuit_open`: the breaker holds every decision for review; `scorers_absent`:
    the trajectory group has no member, so text-only requests are decided at once.
    `fault` is called with each record's key before decoding (a test's fault point).
    """

    records: Sequence[Record]
    now: float
    monotonic: float
    circuit_open: bool = False
    scorers_absent: bool = False
    fault: Callable[[bytes | None], None] | None = None


@dataclass(frozen=True, slots=True)
class Remembered:
    """A request decided: the partition state keeps it for dedupe and for its outcome."""

    partition: int
    request_id: str
    decision_id: str
    tenant: str
    raw_score: float
    pending: dict[str, Any] | None
    timestamp: float  # the request record's, for the latency metric
    canary: dict[str, Any] | None = None  # the decision's `canary` part and verb: its outcome is judged with the ramp


@dataclass(frozen=True, slots=True)
class GatePlan:
    effects: Effects
    remembered: tuple[Remembered, ...] = ()
    marks: tuple[tuple[int, str, Mark], ...] = ()
    """(partition, key, mark): budget marks after this batch, for the partition state."""
    cache: tuple[tuple[str, float, dict[str, Any]], ...] = ()
    """(key, expiry, decision): new insight-cache entries."""
    failed: int = 0
    """Records that failed processing (not merely invalid): the circuit breaker's errors."""
    lagging: int = 0
    """Decisions judged on budget state that lags: the circuit breaker counts them too."""
    evaluation_s: float = 0.0
    """How long the vectorised trust evaluation of the batch took."""


@dataclass(slots=True)
class _Valid:
    record: Record
    tenant: str
    request: DecisionRequest
    raw: dict[str, Any]


@dataclass(slots=True)
class _Out(EffectsBuilder):
    """What a batch accumulates on its way to a plan."""

    evaluation_s: float = 0.0


def plan_batch(batch: GateBatch, view: GateView, cfg: GateConfig) -> GatePlan:
    """The plan for one batch; `view` is read, never changed."""
    out = _Out()
    valid, failed = _valid_requests(batch, view, cfg, out)
    for topic, n in Counter(r.topic for r in batch.records).items():
        out.count("EVENTS", topic, amount=n)
    if any(needs_text_score(v.request) for v in valid):
        valid = _unscored(valid) if batch.scorers_absent else _forward_texts(valid, batch.now, cfg, out)
    judge = BudgetJudge(cfg.energy, view, batch.now)
    cache = InsightCache(cfg.energy.recovery.insight_cache_ttl_s, view, batch.monotonic)
    routes = RouteJudge(cfg.routing, view, batch.now)
    decided = _decide_or_resume(valid, view, cfg, judge, cache, routes, batch.circuit_open, out)
    for tenant, (value, partition) in routes.values().items():
        out.early.append(TableWrite("router-state", tenant, value, partition))
    _audit(valid, decided, out)
    for item in valid:  # decided and audited: the dedupe on request ids covers them from now on
        _forget(item, out)
    for (partition, key), mark in judge.touched.items():
        out.late.append(TableWrite("budget-marks", key, mark.as_dict(), partition))
    _fold_stats(valid, decided, view, out)
    for status, n in judge.statuses.items():
        out.count("BUDGET_DECISIONS", status, amount=n)
    out.count("INSIGHT_CACHE", "hit", amount=cache.hits)
    out.count("INSIGHT_CACHE", "miss", amount=cache.misses)
    out.count("ERRORS", "router_state", amount=routes.unreadable)
    return GatePlan(
        effects=out.effects(),
        remembered=tuple(
            Remembered(v.record.partition, v.request.event_id, d.decision["event_id"], v.tenant,
                       d.decision["trust"]["raw_score"], d.pending, v.record.timestamp, canary_of(d.decision))
            for v, d in zip(valid, decided)),
        marks=tuple((p, key, mark) for (p, key), mark in judge.touched.items()),
        cache=tuple((key, expiry, decision) for key, (expiry, decision) in cache.puts.items()),
        failed=failed,
        lagging=judge.lagging,
        evaluation_s=out.evaluation_s,
    )


def _valid_requests(batch: GateBatch, view: GateView, cfg: GateConfig, out: _Out) -> tuple[list[_Valid], int]:
    """The batch's decodable requests not decided before; the rest are dead letters or dropped."""
    valid: list[_Valid] = []
    kept: dict[tuple[int, str], int] = {}  # (partition, request id) → index in `valid`
    failed = 0
    now_ms = round(batch.now * 1000)
    for record in batch.records:
        try:
            if batch.fault is not None:
                batch.fault(record.key)
            tenant, raw, request = decode_keyed(DecisionRequest, record.key, record.value,
                                                max_bytes=cfg.max_message_bytes)
            _auditable(raw)
        except InvalidEvent as exc:
            out.reject(record, exc.code, exc.message, now_ms)
            continue
        except Exception as exc:  # a bug on one event must not stop the stream
            log.exception("unexpected error decoding an event", extra={"offset": record.offset})
            out.count("ERRORS", "decode")
            out.reject(record, "processing_error", f"{type(exc).__name__}: {exc}", now_ms)
            failed += 1
            continue
        if request.trajectory is not None and not view.waiting(tenant, request.event_id):
            # a `trajectory` block counts only on the copy the fusion agent puts back for a
            # request waiting here; on anything else it is ignored (never trusted from clients)
            log.warning("trajectory block ignored: no such request is waiting for its text's score",
                        extra={"event_id": request.event_id, "tenant": tenant})
            raw = {k: v for k, v in raw.items() if k != "trajectory"}
            request = request.model_copy(update={"trajectory": None})
        item = _Valid(record, tenant, request, raw)
        dedupe_key = (record.partition, request.event_id)
        index = kept.get(dedupe_key)
        if index is not None and request.trajectory is not None and valid[index].request.trajectory is None:
            valid[index] = item  # the copy back from scoring wins over a retry of the original
            continue
        if index is not None or view.seen(record.partition, request.event_id):
            out.count("DUPLICATES", record.topic)
            log.info("repeated request dropped", extra={"event_id": request.event_id, "tenant": tenant})
            _forget(item, out)
            continue
        kept[dedupe_key] = len(valid)
        valid.append(item)
    return valid, failed


def _forward_texts(valid: list[_Valid], now: float, cfg: GateConfig, out: _Out) -> list[_Valid]:
    """Send the text of each request that needs its risk from it to the trajectory group,
    keep the request waiting, and return the requests to decide now."""
    decide = []
    for item in valid:
        record = item.record
        if not needs_text_score(item.request) or len(record.value or b"") + RETURN_MARGIN > cfg.max_message_bytes:
            decide.append(item)  # (too large to come back with its risk: judged without one now)
            continue
        out.early.append(TableWrite("awaiting-text", awaiting_key(item.tenant, item.request.event_id),
                                    {"raw": item.raw, "since": now, "partition": record.partition},
                                    record.partition))
        out.outputs.append(Output("trajectory_requests", record.partition, record.key,
                                  orjson.dumps(trajectory_request(item.tenant, item.request))))
        out.count("TEXTS_FORWARDED")
        log.info("text sent for scoring before the decision", extra={"event_id": item.request.event_id,
                                                                    "tenant": item.tenant})
    return decide


def _unscored(valid: list[_Valid]) -> list[_Valid]:
    """Requests that need their text scored, marked as having no one to score it."""
    out, unscored = [], 0
    for item in valid:
        if needs_text_score(item.request):
            raw = unscored_request(item.raw)
            item = _Valid(item.record, item.tenant, DecisionRequest.model_validate(raw), raw)
            unscored += 1
        out.append(item)
    log.info("no trajectory group to score texts: %d text-only request(s) decided at once", unscored)
    return out


@dataclass(frozen=True, slots=True)
class _Decided:
    decision: dict[str, Any]
    alerts: list[dict[str, Any]]
    override: dict[str, Any] | None  # the audit body of a break-glass attempt
    change: dict[str, Any] | None  # the audit body of a budget status change
    pending: dict[str, Any] | None  # a routed decision waiting for its outcome
    explanation: dict[str, Any]  # agents.trust.explain_batch's, with the verb changes after the gate
    mark: tuple[str, Mark] | None = None  # its budget period's mark key and the mark after it

    def to_value(self) -> dict[str, Any]:
        """As written to `unaudited-decisions` (plain JSON)."""
        mark = None if self.mark is None else [self.mark[0], self.mark[1].level, self.mark[1].blocked_since]
        return {"decision": self.decision, "alerts": self.alerts, "override": self.override, "change": self.change,
                "pending": self.pending, "explanation": self.explanation, "mark": mark}

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> _Decided | None:
        """The decision `to_value` wrote; None for a value of another shape (logged), which
        is decided anew rather than stopping the stream."""
        try:
            mark = value["mark"]
            return cls(value["decision"], list(value["alerts"]), value["override"], value["change"], value["pending"],
                       value["explanation"], None if mark is None else (str(mark[0]), Mark(int(mark[1]), mark[2])))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            log.error("an unaudited decision of another shape is ignored", extra={"error": repr(exc)})
            return None


def _decide_or_resume(valid: list[_Valid], view: GateView, cfg: GateConfig, judge: BudgetJudge, cache: InsightCache,
                      routes: RouteJudge, circuit_open: bool, out: _Out) -> list[_Decided]:
    """Each request's decision, in the batch's order, with its outputs. A request decided
    before a crash kept its audit record from being written (`GateView.unaudited`) gets
    that decision again, as it may already have been sent: deciding it anew against state
    that moved on since (spend, the router) could send a second, different decision under
    the same id. The others are decided (`_decide_by_policy`). Every decision of the batch
    goes to `unaudited-decisions` ahead of the outputs (`Effects.ahead`), so a crash
    before this batch's audit finds them there too."""
    decided: list[_Decided | None] = []
    for item in valid:
        earlier = view.unaudited(item.record.partition, decision_id(item.tenant, item.request.event_id))
        decided.append(None if earlier is None else _Decided.from_value(earlier))  # None: decided anew
    for item, d in zip(valid, decided):  # in offset order, before the new decisions are judged
        if d is not None and d.mark is not None:
            judge.resume(item.record.partition, *d.mark)
    fresh = [i for i, d in enumerate(decided) if d is None]
    if len(fresh) < len(valid):
        out.count("DECISIONS_RESUMED", amount=len(valid) - len(fresh))
        log.warning("redelivered requests answered with the decisions they got before a crash",
                    extra={"requests": len(valid) - len(fresh)})
    if fresh:
        new = _decide_by_policy([valid[i] for i in fresh], view, cfg, judge, cache, routes, circuit_open, out)
        for i, d in zip(fresh, new):
            decided[i] = d
    done = [d for d in decided if d is not None]
    for item, d in zip(valid, done):
        record = item.record
        out.ahead.append(Output("unaudited_decisions", record.partition, record.key, orjson.dumps(d.to_value())))
        out.outputs.append(Output("decisions", record.partition, record.key, orjson.dumps(d.decision)))
        for alert in d.alerts:
            out.outputs.append(Output("alerts", record.partition, record.key, orjson.dumps(alert)))
            out.count("ALERTS", alert["kind"])
    return done


def _decide_by_policy(valid: list[_Valid], view: GateView, cfg: GateConfig, judge: BudgetJudge,
                      cache: InsightCache, routes: RouteJudge, circuit_open: bool, out: _Out) -> list[_Decided]:
    """Decide the batch, each request under the policy of its arm (`_policy`): the
    requests a candidate decides go through `_decide` with the candidate's configuration;
    a shadow trust candidate's verdicts are computed beside the current policy's (a shadow
    router's choice, by the `RouteJudge`). A routing candidate takes part only in requests
    that ask for a route."""
    canaries = {tenant: view.policy(tenant) for tenant in {v.tenant for v in valid}}
    groups: dict[str | None, list[int]] = {}  # the deciding candidate's policy version (None: current) → requests
    parts: list[dict[str, Any] | None] = [None] * len(valid)
    shadowed: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(valid):
        canary = canaries[v.tenant]
        if canary is None or (canary.routing is not None and v.request.routing is None):
            groups.setdefault(None, []).append(i)
            continue
        arm = arm_of(canary, v.request.event_id)
        groups.setdefault(canary.policy_version if arm == "candidate" else None, []).append(i)
        parts[i] = canary_summary(canary, arm)
        if canary.shadow and canary.trust is not None:
            shadowed[v.tenant].append(i)
    for tenant, idx in shadowed.items():
        canary = canaries[tenant]
        assert canary is not None and canary.trust is not None
        for i, verdict in zip(idx, _shadow_verdicts([valid[i] for i in idx], canary, canary.trust,
                                                    view.calibration(tenant))):
            parts[i] = canary_summary(canary, "current", verdict)
    decided: list[_Decided | None] = [None] * len(valid)
    by_version = {c.policy_version: c for c in canaries.values() if c is not None}
    for version, idx in groups.items():
        policy = cfg if version is None else _candidate_config(cfg, by_version[version])
        for i, d in zip(idx, _decide([valid[i] for i in idx], view, policy, judge, cache, routes, circuit_open, out,
                                     [parts[i] for i in idx])):
            decided[i] = d
    return [d for d in decided if d is not None]  # in the batch's order, whichever policy decided


def _signals(valid: list[_Valid]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float | None], list[float]]:
    """The trust inputs of the requests: alignment, risk (worst case when absent), band."""
    n = len(valid)
    a = np.fromiter((v.request.signals.alignment_score for v in valid), np.float64, n)
    risks = [v.request.signals.epistemic_risk for v in valid]
    # Fail safe: a request with no risk (its text got no trajectory result in time) is
    # scored at worst-case risk and deferred.
    r = np.fromiter((WORST_RISK if x is None else x for x in risks), np.float64, n)
    bands = [v.request.signals.confidence_band for v in valid]
    c = np.fromiter(bands, np.float64, n)
    return a, r, c, risks, bands


def _candidate_config(cfg: GateConfig, canary: PolicyCanary) -> GateConfig:
    """The gate's configuration with the candidate's trust or routing settings."""
    return replace(cfg, trust=canary.trust or cfg.trust, routing=canary.routing or cfg.routing,
                   policy_version=canary.policy_version)


def _shadow_verdicts(valid: list[_Valid], canary: PolicyCanary, trust: TrustConfig,
                     calibration: CalibrationAdapter | None) -> list[dict[str, Any]]:
    """What the candidate's trust gate alone would have said (it decides nothing), on the
    score it would decide on (the tenant's calibrated one under `decide_on: calibrated`)."""
    a, r, c, risks, _ = _signals(valid)
    res = evaluate_batch(a, r, c, trust)
    if trust.decide_on == "calibrated" and calibration is not None:
        calibrated = (calibration.predict(x) for x in res.raw_score.tolist())
        res = rejudge(res, np.array([s if p is None else round(p, 4) for p, s in zip(calibrated, res.score.tolist())]),
                      trust)
    verbs = [res.decision_names[i] for i in res.decision.tolist()]
    return [{"verb": most_restrictive((verb, "defer")) if risk is None else verb, "tier": res.tier_names[t],
             "score": score, "policy_version": canary.policy_version}
            for verb, risk, t, score in zip(verbs, risks, res.tier.tolist(), res.score.tolist())]


def _decide(valid: list[_Valid], view: GateView, cfg: GateConfig, judge: BudgetJudge, cache: InsightCache,
            routes: RouteJudge, circuit_open: bool, out: _Out, canaries: list[dict[str, Any] | None]) -> list[_Decided]:
    """Decide the requests under `cfg`; with the circuit breaker open, every decision is held for review
    (and the insight cache, which could hand back an earlier verb, is not used). `canaries`:
    each decision's `canary` part, if its tenant has a policy under canary."""
    trust = cfg.trust
    a, r, c, risks, bands = _signals(valid)
    started = time.perf_counter()
    res = evaluate_batch(a, r, c, trust)
    evaluation_s = time.perf_counter() - started
    raw, score = res.raw_score.tolist(), res.score.tolist()
    models = {tenant: view.calibration(tenant) for tenant in {v.tenant for v in valid}}  # one read per tenant
    calibrated = [None if (m := models[v.tenant]) is None else m.predict(raw[i]) for i, v in enumerate(valid)]
    on_calibrated = [trust.decide_on == "calibrated" and x is not None for x in calibrated]
    deciding = [round(x, 4) if on and x is not None else s for x, s, on in zip(calibrated, score, on_calibrated)]
    if any(on_calibrated):
        res = rejudge(res, np.array(deciding), trust)
    tiers = [res.tier_names[i] for i in res.tier.tolist()]
    tier_verbs = [TIER_DECISIONS[t] for t in tiers]  # what the tier alone says, for the reasons
    verbs = [res.decision_names[i] for i in res.decision.tolist()]
    for i, risk in enumerate(risks):
        if risk is None:
            verbs[i] = most_restrictive((verbs[i], "defer"))
    floors, flags = res.floor_violation.tolist(), res.entropy_flag.tolist()
    explained = explain_batch(a, r, c, res, trust, deciding)
    decided: list[_Decided] = []
    for i, item in enumerate(valid):
        req, record = item.request, item.record
        reasons = trust_reasons(
            tiers[i], tier_verbs[i], deciding[i], floors[i], flags[i],
            trust.trust_floor, trust.entropy_threshold, bands[i], calibrated=on_calibrated[i],
        )
        text = text_reason(req, cfg.trajectory)
        expl = explained[i]
        if risks[i] is None:
            reasons.append(text or RISK_UNAVAILABLE)
            verb_change(expl, reasons[-1:], verbs[i])
        elif text is not None:
            reasons.append(text)
        trust_part = {
            "score": score[i], "raw_score": raw[i], "tier": tiers[i], "decision": verbs[i],
            "floor_violation": floors[i], "entropy_flag": flags[i], "calibrated_score": calibrated[i],
            "decided_on": "calibrated" if on_calibrated[i] else "raw",
        }
        verb, override = verbs[i], None
        if req.override is not None:
            result = evaluate_values(a[i].item(), r[i].item(), bands[i], trust)
            applied, why, override = break_glass(
                result, req.override.operator_id, req.override.reason, req.event_id,
                datetime.fromtimestamp(record.timestamp, timezone.utc),
            )
            reasons.append(why)
            verb = verb_change(expl, [why], "execute" if applied else verb)
        ts = req.ts or ms_to_ts(round(record.timestamp * 1000))
        judged = judge(item.tenant, req, record.partition, ts, floors[i], deciding[i])
        alerts: list[dict[str, Any]] = []
        change = None
        if judged is not None:
            reasons.extend(judged.reasons)
            verb = verb_change(expl, judged.reasons, most_restrictive((verb, judged.verb)))
            if judged.alert is not None:
                alerts.append(judged.alert)
                change = judged.change
        the_id = decision_id(item.tenant, req.event_id)
        routed = routes(item.tenant, req, the_id, record.partition, ts)
        if routed is not None:
            reasons.extend(routed.reasons)
            verb = verb_change(expl, routed.reasons, most_restrictive((verb, routed.verb)))
            if routed.alert is not None:
                alerts.insert(0, routed.alert)
        if circuit_open:
            reasons.append(CIRCUIT_OPEN_REASON)
            verb = verb_change(expl, reasons[-1:], most_restrictive((verb, "review")))
        decision = decision_event(
            tenant=item.tenant, request_id=req.event_id, workflow=req.workflow, ts=ts, verb=verb, reasons=reasons,
            policy_version=cfg.policy_version, trust=trust_part, budget=judged and judged.budget,
            route=routed and routed.route, overlay=overlay_for(req, cfg.overlays),
        )
        if (part := canaries[i]) is not None:
            shadow_route = routed and routed.shadow
            decision["canary"] = {**part, "shadow": shadow_route} if shadow_route else part
        elif not circuit_open:  # (a reused decision could come from the other arm of a canary)
            decision = cache.reuse(item.raw, decision)
        verbs[i] = verb_change(expl, decision["reasons"][-1:], decision["verb"])  # changed by an insight-cache reuse
        if req.explain:
            decision["explanation"] = expl
        if floors[i]:
            alerts.insert(0, floor_alert(decision, trust.trust_floor))
        decided.append(_Decided(decision, alerts, override, change, routed and routed.pending, expl,
                                judged and judged.mark))
    for name, count in Counter(verbs).items():
        out.count("DECISIONS", name, amount=count)
    for name, count in Counter(tiers).items():
        out.count("TIERS", name, amount=count)
    out.count("FLOOR_VIOLATIONS", amount=sum(floors))
    out.count("ENTROPY_FLAGS", amount=sum(flags))
    out.evaluation_s += evaluation_s
    if len(score):
        out.observed.setdefault(("SCORES", ()), []).extend(score)
    return decided


def _audit(valid: list[_Valid], decided: list[_Decided], out: _Out) -> None:
    for item, d in zip(valid, decided):
        partition, decision, tenant = item.record.partition, d.decision, item.tenant
        policy_version = decision["policy_version"]  # a candidate's, for the decisions it made
        body = {"request": item.raw, "decision": decision, "explanation": d.explanation,
                "source": {"topic": item.record.topic, "partition": partition, "offset": item.record.offset}}
        if d.pending is not None:
            body["route_pending"] = d.pending
        items = [audit_item("au-" + decision["event_id"][2:], "decision", tenant, decision["ts"], policy_version, body)]
        if d.change is not None:  # the budget's alert is the last
            items.append(audit_item("sc-" + d.alerts[-1]["event_id"][2:], "state_change", tenant, decision["ts"],
                                    policy_version, d.change))
        items += [audit_item("au-" + alert["event_id"][2:], "alert", tenant, alert["ts"], policy_version,
                             {"alert": alert}) for alert in d.alerts]
        if d.override is not None:
            items.append(audit_item("ov-" + decision["event_id"][2:], "override", tenant, decision["ts"],
                                    policy_version, {**d.override, "decision_id": decision["event_id"]}))
        out.audit += [AuditItem(partition, x) for x in items]


def _forget(item: _Valid, out: _Out) -> None:
    """Drop what a request kept while it was being decided: its waiting copy, once it came
    back from scoring (a delete of an absent key is a no-op)."""
    partition = item.record.partition
    if item.request.trajectory is not None:
        out.late.append(TableWrite("awaiting-text", awaiting_key(item.tenant, item.request.event_id), None, partition,
                                   delete=True))


def _fold_stats(valid: list[_Valid], decided: list[_Decided], view: GateView, out: _Out) -> None:
    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for i, item in enumerate(valid):
        groups[(item.tenant, window_start(item.record.timestamp, STATS_WINDOW_S))].append(i)
    for (tenant, _), idx in groups.items():
        trusts = [decided[i].decision["trust"] for i in idx]
        new = WindowStats.of(
            [t["tier"] for t in trusts], [decided[i].decision["verb"] for i in idx], [t["score"] for t in trusts],
            sum(t["floor_violation"] for t in trusts), sum(t["entropy_flag"] for t in trusts),
        )
        last = valid[idx[-1]].record
        merged = merge_stats(view.window_stats(tenant, last.timestamp, last.partition), new)
        out.late.append(TableWrite("trust-stats", tenant, merged, last.partition, at=last.timestamp))


def _auditable(raw: dict[str, Any]) -> None:
    """Refuse a request the audit cannot hold."""
    if not auditable(raw):
        raise InvalidEvent("out_of_range", "an integer beyond ±(2^53 − 1) cannot be written to the audit (RFC 8785)")
