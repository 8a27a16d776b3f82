"""The outcomes agent's batch core: outcome records in, `Effects` out.

Per batch: each outcome is decoded and checked against the decision it names (which the
partition state must still remember, for the same tenant); a routed decision's outcome
must come within `pending_ttl_s` and carry finite figures, or it becomes a dead letter (a
late one still counts as an expiry for the tenant's router, once). Each tenant's routed
outcomes are applied to its router state in order, each decision once: the state and the
applied ids land in one early table write, so a redelivered outcome is recognised however
the worker stopped. Anomalies the router sees become `routing_anomaly` alerts, audited.
Labelled outcomes are calibration samples, written once the batch is audited. The outcome
of a decision made while its tenant's trust policy was under canary goes to the
enhancement's ramp (on the internal feed, to the enhancement agent on this partition).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from resontinex.agents import router as rt_
from resontinex.agents.effects import AuditItem, Effects, EffectsBuilder, Output, Record, TableWrite, audit_item
from resontinex.agents.events import alert_event
from resontinex.agents.gate import candidate_of, router_state_of, router_value
from resontinex.agents.trust import TrustConfig
from resontinex.schemas import InvalidEvent, Outcome, decode, decode_key, ms_to_ts

from resontinex.agents.enhancement import FEED_POLICY

from ._calibration import Sample, refit
from ._view import Known, OutcomesView

__all__ = ["OUTCOME_LIMIT", "POLICY_OUTCOMES_PER_ITEM", "OutcomeBatch", "OutcomesConfig", "plan_outcomes"]

log = logging.getLogger(__name__)

POLICY_OUTCOMES_PER_ITEM = 500
"""Outcomes per feed item to a policy ramp (ids of up to 128 characters each: < 200 KB)."""
OUTCOME_LIMIT = 1e9
"""A cost or latency beyond this would make the router's sums overflow to infinity."""


@dataclass(frozen=True, slots=True)
class OutcomesConfig:
    trust: TrustConfig
    routing: rt_.RoutingConfig
    policy_version: str
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class OutcomeBatch:
    records: Sequence[Record]
    now: float
    """Seconds since the epoch: the dead letters' time and the routes' expiry clock."""


@dataclass(slots=True)
class _Routed:
    record: Record
    outcome: Outcome
    pending: dict[str, Any]


def plan_outcomes(batch: OutcomeBatch, view: OutcomesView, cfg: OutcomesConfig) -> Effects:
    """The effects of one batch of outcomes; `view` is read, never changed."""
    out = EffectsBuilder()
    routed: dict[str, list[_Routed]] = defaultdict(list)
    expired: dict[str, list[tuple[Record, str]]] = defaultdict(list)
    labelled: dict[str, list[tuple[Record, Sample]]] = defaultdict(list)
    judged: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)  # (tenant, enhancement) → outcomes
    partitions: dict[str, int] = {}
    now_ms = round(batch.now * 1000)
    for record in batch.records:
        out.count("EVENTS", record.topic)
        try:
            tenant, outcome, known = _checked(record, view, cfg)
        except InvalidEvent as exc:
            out.reject(record, exc.code, exc.message, now_ms)
            continue
        pending = known.pending
        if pending is not None and batch.now > pending["decided_at"] + cfg.routing.pending_ttl_s:
            out.count("ROUTER_EXPIRED")
            expired[tenant].append((record, outcome.decision_id))
            out.reject(record, "expired_decision", f"decision {outcome.decision_id!r} was routed more than "
                       f"{cfg.routing.pending_ttl_s:g} s ago (routing.pending_ttl_s): too late to learn from", now_ms)
            continue
        if pending is not None:
            routed[tenant].append(_Routed(record, outcome, pending))
        if outcome.label is not None:
            labelled[tenant].append((record, Sample(outcome.decision_id, known.raw_score, outcome.label)))
        if known.canary is not None:
            judged[(tenant, known.canary["enhancement_id"])].append(_policy_outcome(outcome, known.canary))
            partitions[tenant] = record.partition
    for (tenant, enhancement_id), outcomes in judged.items():
        for i in range(0, len(outcomes), POLICY_OUTCOMES_PER_ITEM):  # each item well under a message's size
            item = {"type": FEED_POLICY, "tenant": tenant, "enhancement_id": enhancement_id,
                    "outcomes": outcomes[i:i + POLICY_OUTCOMES_PER_ITEM]}
            out.outputs.append(Output("enhancement_feed", partitions[tenant], tenant.encode(), orjson.dumps(item)))
    for tenant in routed.keys() | expired.keys():
        _teach_router(tenant, routed.get(tenant, []), expired.get(tenant, []), view, cfg, out)
    for tenant, samples in labelled.items():
        _calibrate(tenant, samples, view, cfg, out)
    return out.effects()


def _policy_outcome(outcome: Outcome, canary: dict[str, Any]) -> dict[str, Any]:
    """What the policy ramp of the decision's enhancement learns from its outcome."""
    shadow = canary.get("shadow")
    return {"outcome_id": outcome.event_id, "decision_id": outcome.decision_id, "arm": canary["arm"],
            "step": canary["step"], "activation": canary.get("activation", 0), "verb": canary.get("verb"),
            "part_verb": canary.get("part_verb"), "shadow_verb": shadow and shadow["verb"],
            "label": outcome.label, "success": outcome.success}


def _checked(record: Record, view: OutcomesView, cfg: OutcomesConfig) -> tuple[str, Outcome, Known]:
    tenant = decode_key(record.key)
    outcome = decode(Outcome, record.value, max_bytes=cfg.max_message_bytes)
    known = view.decision(record.partition, outcome.decision_id)
    if known is None or known.tenant != tenant:
        raise InvalidEvent("unknown_decision", f"decision_id {outcome.decision_id!r} is unknown or expired")
    if known.pending is not None and max(outcome.actual_cost_usd, outcome.actual_latency_ms) > OUTCOME_LIMIT:
        raise InvalidEvent("out_of_range", f"actual_cost_usd and actual_latency_ms must be at most "
                                           f"{OUTCOME_LIMIT:g} to teach the router")
    return tenant, outcome, known


def _teach_router(tenant: str, routed: list[_Routed], expired: list[tuple[Record, str]], view: OutcomesView,
                  cfg: OutcomesConfig, out: EffectsBuilder) -> None:
    """Apply the tenant's outcomes, in order, and its expiries (each decision once, like an
    update). A candidate router (a routing policy under canary) learns from each outcome
    too; its anomalies raise no alert (the current router's do)."""
    stored = view.router_value(tenant)
    state, applied, unreadable = router_state_of(stored, cfg.routing)
    candidate = candidate_of(stored)
    if unreadable:
        out.count("ERRORS", "router_state")
    done = set(applied)
    late = {decision_id for _, decision_id in expired if decision_id not in done}
    if late:
        state = rt_.expire(state, len(late))
        done |= late
        applied.extend(sorted(late))
    for r in routed:
        outcome, record = r.outcome, r.record
        if outcome.decision_id in done:
            out.count("DUPLICATES", record.topic)
            continue
        learn = partial(rt_.feedback, pending=rt_.PendingDecision.from_dict(r.pending), success=outcome.success,
                        cost_usd=outcome.actual_cost_usd, latency_ms=outcome.actual_latency_ms,
                        reputation=outcome.actual_reputation)
        state, fb = learn(state)
        if candidate is not None:
            candidate = candidate._replace(state=learn(candidate.state)[0])
        done.add(outcome.decision_id)
        applied.append(outcome.decision_id)
        out.observe("ROUTER_REWARDS", fb.reward, r.pending["provider_id"])
        ts = outcome.ts or ms_to_ts(round(record.timestamp * 1000))
        for anomaly in fb.anomalies:
            alert = alert_event(id_source=f"{outcome.decision_id}|{anomaly.kind}", tenant=tenant,
                                source_event_id=outcome.event_id, ts=ts, **anomaly.alert())
            out.outputs.append(Output("alerts", record.partition, record.key, orjson.dumps(alert)))
            out.audit.append(AuditItem(record.partition, audit_item("au-" + alert["event_id"][2:], "alert", tenant,
                                                                    ts, cfg.policy_version, {"alert": alert})))
            out.count("ALERTS", "routing_anomaly")
            log.warning(alert["message"], extra={"event_id": outcome.event_id, "tenant": tenant})
    last = routed[-1].record if routed else expired[-1][0]  # a tenant's records share one partition
    imports = list((stored or {}).get("imports", [])) if isinstance(stored, dict) else []
    out.early.append(TableWrite("router-state", tenant, router_value(state, applied, imports, candidate),
                                last.partition, last.timestamp))


def _calibrate(tenant: str, samples: list[tuple[Record, Sample]], view: OutcomesView, cfg: OutcomesConfig,
               out: EffectsBuilder) -> None:
    entry, fitted = refit(view.calibration(tenant), [s for _, s in samples],
                          min_samples=cfg.trust.calibration_min_samples, method=cfg.trust.calibration_method)
    if fitted is not None:
        out.count("CALIBRATION_FITS", "fitted" if fitted else "refused")
        log.log(logging.INFO if fitted else logging.DEBUG, "calibration fitted" if fitted else "calibration not fitted",
                extra={"tenant": tenant, "n": len(entry["samples"])})
    last = samples[-1][0]
    out.late.append(TableWrite("trust-calibration", tenant, entry, last.partition, last.timestamp))
