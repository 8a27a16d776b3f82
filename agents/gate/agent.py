"""The gate agent: decision-requests → decisions, alerts, audit, dead-letters.

Per batch (`app.batching`: whatever arrived while the previous batch was handled): decode and validate each event (bad ones become dead
letters), drop repeated request ids, score the rest in one numpy call, assemble
decisions and alerts, seal the audit records onto each partition's chain, send
everything as one record batch per partition and wait for the acks, then fold the batch
into the windowed statistics table. Faust commits the input offsets only after the
batch returns, so output is at-least-once; decision ids are deterministic, so a
redelivered request reproduces the same decision id.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from functools import partial
from typing import Any, NamedTuple

import faust
import numpy as np
import orjson

from agents.budget.agent import BudgetTables
from agents.trust import (TIER_DECISIONS, CalibrationAdapter, CircuitBreaker, evaluate_batch, evaluate_values,
                          explain_batch, rejudge, verb_change)
from app import metrics
from app.audit_writer import append_audit, audit_item
from app.batching import drain_in_batches
from app.continuity import FetchedEvent, contiguous, fetch_range
from app.crashpoints import crash_point, fault_point
from app.deadletter import send_dead_letter
from app.faust_compat import event_context
from app.group_watch import GroupWatch
from app.misrouted import Forwarder
from app.runtime import Runtime
from schemas import SYSTEM_TENANT, DecisionRequest, InvalidEvent, decode_keyed, ms_to_ts
from topics import partition_of

from ._budgeting import BudgetJudge, InsightCache
from ._decide import (CIRCUIT_OPEN_REASON, break_glass, circuit_alert, decision_event, decision_id, floor_alert,
                      most_restrictive, trust_reasons)
from ._import import import_router_table
from ._routing import RouteJudge, overlay_for, rejection_alerts
from ._stats import WindowStats, merge_stats, window_start
from ._text import awaiting_key, needs_text_score, text_reason, trajectory_request, unscored_request

log = logging.getLogger(__name__)

STATS_WINDOW_S = 60.0
STATS_RETENTION_S = 3600.0
WORST_RISK = 1.0
RETURN_MARGIN = 4096
"""Room a text-only request needs below the size limit to come back with its risk."""
RISK_UNAVAILABLE = {
    "component": "trust",
    "code": "risk_unavailable",
    "message": "no signals.epistemic_risk and no text score: judged at worst-case risk 1.0, so held back "
               "(defer at least)",
}


class _Decided(NamedTuple):
    decision: dict[str, Any]
    alerts: list[dict[str, Any]]
    override: dict[str, Any] | None  # the audit body of a break-glass attempt
    change: dict[str, Any] | None  # the audit body of a budget status change
    pending: dict[str, Any] | None  # a routed decision waiting for its outcome
    explanation: dict[str, Any]  # agents.trust.explain_batch's, with the verb changes after the gate


class _Parts(NamedTuple):
    """The per-batch judges of the parts beyond trust."""

    budget: BudgetJudge
    cache: InsightCache
    route: RouteJudge


class _Valid:
    __slots__ = ("event", "tenant", "request", "raw")

    def __init__(self, event: faust.types.EventT, tenant: str, request: DecisionRequest, raw: dict) -> None:
        self.event, self.tenant, self.request, self.raw = event, tenant, request, raw


def register(app: faust.App, rt: Runtime, budgets: BudgetTables, scorers: GroupWatch) -> dict[str, Any]:
    """Declare the gate's topic, tables and agent on `app`; return the tables by name.
    `scorers` watches the trajectory group: with no member, text-only requests are decided at once."""
    s = rt.settings
    source = app.topic(
        s.topic("decision_requests"), key_serializer="raw", value_serializer="raw", partitions=s.partitions
    )
    stats = app.Table("trust-stats", default=dict, partitions=s.partitions).tumbling(
        STATS_WINDOW_S, expires=STATS_RETENTION_S, key_index=True
    )
    calibration = app.Table("trust-calibration", default=None, partitions=s.partitions)
    names = {k: s.topic(k) for k in ("decision_requests", "decisions", "alerts", "audit", "dead_letters",
                                     "trajectory_requests")}
    awaiting = app.Table("awaiting-text", default=None, partitions=s.partitions)
    adapters: dict[str, tuple[int, CalibrationAdapter]] = {}
    cache = InsightCache(rt.energy.recovery.insight_cache_ttl_s)
    marks = app.Table("budget-marks", default=None, partitions=s.partitions)
    routers = app.Table("router-state", default=None, partitions=s.partitions)
    routes = app.Table("router-routes", default=None, partitions=s.partitions)
    budgets.commands["router_import"] = partial(import_router_table, rt, routers)
    unreported = list(rt.overlay_rejections)  # reported by the owner of `_system`'s partition
    system_partition = partition_of(SYSTEM_TENANT, s.partitions)
    forwarder = Forwarder(rt.sink, s.partitions)
    breaker = CircuitBreaker(rt.trust.circuit_breaker)
    worker = f"{s.advertised_host}:{app.conf.web_port}"

    def calibrator(tenant: str) -> CalibrationAdapter | None:
        entry = calibration.get(tenant)
        if not entry or not entry.get("model"):
            return None
        fits = entry["fits"]
        cached = adapters.get(tenant)
        if cached is None or cached[0] != fits:
            cached = adapters[tenant] = (fits, CalibrationAdapter.from_dict(entry["model"]))
        return cached[1]

    async def refetch(topic: str, partition: int, start: int, end: int) -> list[FetchedEvent]:
        return await fetch_range(s.bootstrap, topic, partition, start, end)

    async def handle(batch: list[faust.types.EventT]) -> None:
        started = time.perf_counter()
        sink = rt.sink
        states = {p: await rt.states.get(p) for p in {e.message.partition for e in batch}}
        events, redelivered, refetched = await contiguous(batch, {p: st.next_offset for p, st in states.items()}, refetch)
        if redelivered:
            metrics.REDELIVERED.labels(names["decision_requests"]).inc(redelivered)
        if refetched:
            metrics.REFETCHED.labels(names["decision_requests"]).inc(refetched)
        valid: list[_Valid] = []
        batch_ids: dict[tuple[int, str], int] = {}  # → index in `valid`
        own, failed = forwarder.keep_own(events), 0
        for event in own:
            msg = event.message
            try:
                fault_point("gate.decode", msg.key)
                tenant, raw, request = decode_keyed(DecisionRequest, msg.key, msg.value, max_bytes=s.max_message_bytes)
                _auditable(raw)
            except InvalidEvent as exc:
                send_dead_letter(sink, names["dead_letters"], msg, exc.code, exc.message)
                continue
            except Exception as exc:  # a bug on one event must not stop the stream
                log.exception("unexpected error decoding an event", extra={"offset": msg.offset})
                metrics.ERRORS.labels("decode").inc()
                send_dead_letter(sink, names["dead_letters"], msg, "processing_error", f"{type(exc).__name__}: {exc}")
                failed += 1
                continue
            if request.trajectory is not None and not _waiting(awaiting, tenant, request, event):
                # a `trajectory` block counts only on the copy the fusion agent puts back for a
                # request waiting here; on anything else it is ignored (never trusted from clients)
                log.warning("trajectory block ignored: no such request is waiting for its text's score",
                            extra={"event_id": request.event_id, "tenant": tenant})
                raw = {k: v for k, v in raw.items() if k != "trajectory"}
                request = request.model_copy(update={"trajectory": None})
            dedupe_key = (msg.partition, request.event_id)
            item = _Valid(event, tenant, request, raw)
            kept = batch_ids.get(dedupe_key)
            if kept is not None and request.trajectory is not None and valid[kept].request.trajectory is None:
                valid[kept] = item  # the copy back from scoring wins over a retry of the original
                continue
            if request.event_id in states[msg.partition].requests or kept is not None:
                metrics.DUPLICATES.labels(names["decision_requests"]).inc()
                log.info("repeated request dropped", extra={"event_id": request.event_id, "tenant": tenant})
                _forget(item, awaiting, routes)
                continue
            batch_ids[dedupe_key] = len(valid)
            valid.append(item)

        metrics.EVENTS.labels(names["decision_requests"]).inc(len(events))
        now = time.time()
        forwarded = any(needs_text_score(v.request) for v in valid)
        if forwarded and scorers.absent:
            unscored = sum(needs_text_score(v.request) for v in valid)
            valid, forwarded = [_unscored(v) if needs_text_score(v.request) else v for v in valid], False
            log.info("no trajectory group to score texts: %d text-only request(s) decided at once", unscored)
        elif forwarded:
            valid = _forward_texts(valid, awaiting, sink, names, now, s.max_message_bytes)
        judge = BudgetJudge(rt.energy, budgets, states, marks, now)
        parts = _Parts(judge, cache, RouteJudge(rt.routing, routers, routes, now))
        aged = breaker.record(now, events=0, errors=0)  # what left the window since the last batch
        decided = _decide(rt, valid, calibrator, parts, sink, names, breaker.is_open) if valid else []
        # errors: inputs that failed processing, and decisions taken on budget state that lags
        tripped = breaker.record(now, events=len(own), errors=failed + judge.lagging)  # holds from the next batch on
        metrics.CIRCUIT_ERROR_RATE.set(breaker.error_rate())
        parts.route.save()  # no await since the router states were read
        for item, d in zip(valid, decided):  # before the flush: outcomes may follow at once
            states[item.event.message.partition].remember(
                item.request.event_id, d.decision["event_id"], item.tenant, d.decision["trust"]["raw_score"], d.pending)
        if parts.route.routed or forwarded:
            # routes chosen and requests left waiting reach their changelogs before anything of
            # this batch is out: a crash after that finds them, one before it redelivers the batch
            await app.producer.flush()
        await sink.flush()  # dead letters and decisions are acknowledged before the audit
        crash_point("gate.decisions_sent")
        await _audit(rt, valid, decided, sink, names)
        for transition in filter(None, (aged, tripped)):
            await _report_circuit(rt, breaker, transition, worker, set(states), names)
        if unreported and _owns(app, names["decision_requests"], system_partition):
            await _report_rejections(rt, unreported, system_partition, names)
            unreported.clear()
        await sink.flush()
        for item in valid:  # decided and audited: the dedupe on request ids covers them from now on
            _forget(item, awaiting, routes)
        judge.save()
        now = time.time()
        for item in valid:
            metrics.DECISION_LATENCY.observe(max(0.0, now - item.event.message.timestamp))
        for event in events:
            states[event.message.partition].next_offset = event.message.offset + 1
        _fold_stats(stats, valid, decided)
        metrics.BATCH_SIZE.labels("gate").observe(len(events))
        metrics.BATCH_SECONDS.labels("gate").observe(time.perf_counter() - started)

    @app.agent(source, name="gate")
    async def gate(stream: faust.StreamT) -> None:
        await drain_in_batches(stream, handle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name="gate")

    return {"trust-stats": stats, "trust-calibration": calibration, "budget-marks": marks, "router-state": routers,
            "router-routes": routes, "awaiting-text": awaiting}


def _decide(rt: Runtime, valid: list[_Valid], calibrator, parts: _Parts, sink, names,
            circuit_open: bool) -> list[_Decided]:
    """Decide the batch; with the circuit breaker open, every decision is held for review
    (and the insight cache, which could hand back an earlier verb, is not used)."""
    cfg = rt.trust
    n = len(valid)
    a = np.fromiter((v.request.signals.alignment_score for v in valid), np.float64, n)
    risks = [v.request.signals.epistemic_risk for v in valid]
    # Fail safe: a request with no risk (its text got no trajectory result in time) is
    # scored at worst-case risk and deferred.
    r = np.fromiter((WORST_RISK if x is None else x for x in risks), np.float64, n)
    bands = [v.request.signals.confidence_band for v in valid]
    c = np.fromiter(bands, np.float64, n)
    started = time.perf_counter()
    res = evaluate_batch(a, r, c, cfg)
    metrics.observe_evaluation(time.perf_counter() - started, n)
    raw, score = res.raw_score.tolist(), res.score.tolist()
    models = {tenant: calibrator(tenant) for tenant in {v.tenant for v in valid}}  # one table read per tenant
    calibrated = [None if (m := models[v.tenant]) is None else m.predict(raw[i]) for i, v in enumerate(valid)]
    on_calibrated = [cfg.decide_on == "calibrated" and x is not None for x in calibrated]
    deciding = [round(x, 4) if on else s for x, s, on in zip(calibrated, score, on_calibrated)]
    if any(on_calibrated):
        res = rejudge(res, np.array(deciding), cfg)
    tiers = [res.tier_names[i] for i in res.tier.tolist()]
    tier_verbs = [TIER_DECISIONS[t] for t in tiers]  # what the tier alone says, for the reasons
    verbs = [res.decision_names[i] for i in res.decision.tolist()]
    for i, risk in enumerate(risks):
        if risk is None:
            verbs[i] = most_restrictive((verbs[i], "defer"))
    floors, flags = res.floor_violation.tolist(), res.entropy_flag.tolist()
    explained = explain_batch(a, r, c, res, cfg, deciding)
    out: list[_Decided] = []
    debug = log.isEnabledFor(logging.DEBUG)
    for i, item in enumerate(valid):
        req, msg = item.request, item.event.message
        reasons = trust_reasons(
            tiers[i], tier_verbs[i], deciding[i], floors[i], flags[i],
            cfg.trust_floor, cfg.entropy_threshold, bands[i], calibrated=on_calibrated[i],
        )
        text = text_reason(req, rt.trajectory)
        expl = explained[i]
        if risks[i] is None:
            reasons.append(text or RISK_UNAVAILABLE)
            verb_change(expl, reasons[-1:], verbs[i])
        elif text is not None:
            reasons.append(text)
        trust = {
            "score": score[i], "raw_score": raw[i], "tier": tiers[i], "decision": verbs[i],
            "floor_violation": floors[i], "entropy_flag": flags[i], "calibrated_score": calibrated[i],
            "decided_on": "calibrated" if on_calibrated[i] else "raw",
        }
        verb, override = verbs[i], None
        if req.override is not None:
            result = evaluate_values(a[i].item(), r[i].item(), bands[i], cfg)
            applied, why, override = break_glass(
                result, req.override.operator_id, req.override.reason, req.event_id,
                datetime.fromtimestamp(msg.timestamp, timezone.utc),
            )
            reasons.append(why)
            verb = verb_change(expl, [why], "execute" if applied else verb)
        ts = req.ts or ms_to_ts(round(msg.timestamp * 1000))
        judged = parts.budget(item.tenant, req, item.event, ts, floors[i], deciding[i])
        alerts: list[dict[str, Any]] = []
        change = None
        if judged is not None:
            reasons.extend(judged.reasons)
            verb = verb_change(expl, judged.reasons, most_restrictive((verb, judged.verb)))
            if judged.alert is not None:
                alerts.append(judged.alert)
                change = judged.change
        the_id = decision_id(item.tenant, req.event_id)
        routed = parts.route(item.tenant, req, the_id, item.event, ts)
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
            policy_version=rt.policy_version, trust=trust, budget=judged and judged.budget,
            route=routed and routed.route, overlay=overlay_for(req, rt.overlays),
        )
        if not circuit_open:
            decision = parts.cache.reuse(item.raw, decision)
        verbs[i] = verb_change(expl, decision["reasons"][-1:], decision["verb"])  # changed by an insight-cache reuse
        if req.explain:
            decision["explanation"] = expl
        if floors[i]:
            alerts.insert(0, floor_alert(decision, cfg.trust_floor))
        sink.add(names["decisions"], msg.partition, msg.key, orjson.dumps(decision))
        for alert in alerts:
            sink.add(names["alerts"], msg.partition, msg.key, orjson.dumps(alert))
            metrics.ALERTS.labels(alert["kind"]).inc()
        out.append(_Decided(decision, alerts, override, change, routed and routed.pending, expl))
        if debug:
            log.debug("decided", extra={"event_id": req.event_id, "decision_id": decision["event_id"],
                                        "tenant": item.tenant, "verb": decision["verb"]})
    metrics.SCORES.observe_many(res.score)
    for name, count in Counter(verbs).items():
        metrics.DECISIONS.labels(name).inc(count)
    for name, count in Counter(tiers).items():
        metrics.TIERS.labels(name).inc(count)
    metrics.FLOOR_VIOLATIONS.inc(sum(floors))
    metrics.ENTROPY_FLAGS.inc(sum(flags))
    return out


async def _audit(rt: Runtime, valid: list[_Valid], decided, sink, names) -> None:
    per_partition: dict[int, list[dict]] = defaultdict(list)
    pv = rt.policy_version
    for item, (decision, alerts, override, change, pending, explanation) in zip(valid, decided):
        items = per_partition[item.event.message.partition]
        body = {"request": item.raw, "decision": decision, "explanation": explanation,
                "source": _source(item.event.message)}
        if pending is not None:
            body["route_pending"] = pending
        items.append(audit_item("au-" + decision["event_id"][2:], "decision", item.tenant, decision["ts"], pv, body))
        if change is not None:  # the budget's alert is the last
            items.append(audit_item("sc-" + alerts[-1]["event_id"][2:], "state_change", item.tenant, decision["ts"],
                                    pv, change))
        for alert in alerts:
            items.append(audit_item("au-" + alert["event_id"][2:], "alert", item.tenant, alert["ts"], pv,
                                    {"alert": alert}))
        if override is not None:
            items.append(audit_item("ov-" + decision["event_id"][2:], "override", item.tenant, decision["ts"], pv,
                                    {**override, "decision_id": decision["event_id"]}))
    for partition, items in per_partition.items():
        await append_audit(rt, partition, items)


def _forward_texts(valid: list[_Valid], awaiting, sink, names: dict[str, str], now: float,
                   max_bytes: int) -> list[_Valid]:
    """Send the text of each request that needs its risk from it to the trajectory group,
    keep the request in `awaiting`, and return the requests to decide now."""
    decide = []
    for item in valid:
        msg = item.event.message
        if not needs_text_score(item.request) or len(msg.value) + RETURN_MARGIN > max_bytes:
            decide.append(item)  # (too large to come back with its risk: judged without one now)
            continue
        with event_context(item.event):
            awaiting[awaiting_key(item.tenant, item.request.event_id)] = {
                "raw": item.raw, "since": now, "partition": msg.partition}
        sink.add(names["trajectory_requests"], msg.partition, msg.key,
                 orjson.dumps(trajectory_request(item.tenant, item.request)))
        metrics.TEXTS_FORWARDED.inc()
        log.info("text sent for scoring before the decision", extra={"event_id": item.request.event_id,
                                                                    "tenant": item.tenant})
    return decide


def _unscored(item: _Valid) -> _Valid:
    """A request that needs its text scored, marked as having no one to score it."""
    log.debug("no trajectory group to score the text", extra={"event_id": item.request.event_id,
                                                               "tenant": item.tenant})
    raw = unscored_request(item.raw)
    return _Valid(item.event, item.tenant, DecisionRequest.model_validate(raw), raw)


def _waiting(awaiting, tenant: str, request: DecisionRequest, event) -> bool:
    with event_context(event):
        return awaiting.get(awaiting_key(tenant, request.event_id)) is not None


def _forget(item: _Valid, awaiting, routes) -> None:
    """Drop what a request kept while it was being decided: its waiting copy (once it came
    back from scoring) and its route."""
    with event_context(item.event):
        if item.request.trajectory is not None:
            key = awaiting_key(item.tenant, item.request.event_id)
            if awaiting.get(key) is not None:
                del awaiting[key]
        if item.request.routing is not None and routes.get(item.request.event_id) is not None:
            del routes[item.request.event_id]


async def _report_circuit(rt: Runtime, breaker: CircuitBreaker, transition: str, worker: str, partitions: set[int],
                          names: dict[str, str]) -> None:
    """Raise the breaker's alert once and audit it on every partition of the batch that tripped it."""
    events, errors = breaker.counts()
    ts = ms_to_ts(round(time.time() * 1000))
    alert = circuit_alert(transition, events, errors, rt.trust.circuit_breaker, worker, ts)
    rt.sink.add(names["alerts"], partition_of(SYSTEM_TENANT, rt.settings.partitions), SYSTEM_TENANT.encode(),
                orjson.dumps(alert))
    metrics.ALERTS.labels(alert["kind"]).inc()
    metrics.CIRCUIT_OPEN.set(transition == "open")
    (log.error if transition == "open" else log.warning)(alert["message"], extra={"event_id": alert["event_id"]})
    for partition in sorted(partitions):
        await append_audit(rt, partition, [audit_item("au-" + alert["event_id"][2:], "alert", SYSTEM_TENANT, ts,
                                                      rt.policy_version, {"alert": alert})])


def _owns(app: faust.App, topic: str, partition: int) -> bool:
    return any(tp.topic == topic and tp.partition == partition for tp in app.consumer.assignment())


async def _report_rejections(rt: Runtime, rejections: list, partition: int, names: dict[str, str]) -> None:
    ts = ms_to_ts(round(time.time() * 1000))
    items = []
    for alert in rejection_alerts(rejections, rt.started_at, ts):
        rt.sink.add(names["alerts"], partition, SYSTEM_TENANT.encode(), orjson.dumps(alert))
        items.append(audit_item("au-" + alert["event_id"][2:], "alert", SYSTEM_TENANT, ts, rt.policy_version,
                                {"alert": alert}))
        metrics.ALERTS.labels("overlay_rejected").inc()
        log.warning(alert["message"], extra={"event_id": alert["event_id"]})
    await append_audit(rt, partition, items)


def _auditable(raw: dict[str, Any]) -> None:
    """Refuse a request the audit cannot hold: RFC 8785 has no integers beyond ±(2^53 − 1)."""
    try:
        orjson.dumps(raw, option=orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        raise InvalidEvent(
            "out_of_range", "an integer beyond ±(2^53 − 1) cannot be written to the audit (RFC 8785)"
        ) from None


def _source(msg: Any) -> dict[str, Any]:
    return {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset}


def _fold_stats(stats, valid: list[_Valid], decided) -> None:
    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for i, item in enumerate(valid):
        groups[(item.tenant, window_start(item.event.message.timestamp, STATS_WINDOW_S))].append(i)
    for (tenant, _), idx in groups.items():
        trusts = [decided[i].decision["trust"] for i in idx]
        new = WindowStats.of(
            [t["tier"] for t in trusts], [decided[i].decision["verb"] for i in idx], [t["score"] for t in trusts],
            sum(t["floor_violation"] for t in trusts), sum(t["entropy_flag"] for t in trusts),
        )
        with event_context(valid[idx[-1]].event):
            stats[tenant] = merge_stats(stats[tenant].current(), new)
