"""Decision and alert assembly: plain functions over plain values."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from resontinex.agents.events import alert_event, alert_id, derived_id
from resontinex.agents.trust import InvalidOverride, TrustResult, break_glass_override
from resontinex.schemas import SYSTEM_TENANT

__all__ = ["CIRCUIT_OPEN_REASON", "VERB_RANK", "alert_event", "alert_id", "break_glass", "circuit_alert", "decision_event",
           "decision_id", "derived_id", "floor_alert", "most_restrictive", "trust_reasons"]

VERB_RANK = {"execute": 0, "review": 1, "defer": 2, "abort": 3}
_VERBS_BY_RANK = sorted(VERB_RANK, key=VERB_RANK.__getitem__)


def most_restrictive(verbs: Iterable[str]) -> str:
    """abort > defer > review > execute.

    >>> most_restrictive(["execute", "review", "defer"])
    'defer'
    """
    return _VERBS_BY_RANK[max((VERB_RANK[v] for v in verbs), default=0)]


def decision_id(tenant: str, request_id: str) -> str:
    """Deterministic: a redelivered request yields the same decision id, so consumers dedupe on it.

    >>> decision_id("acme", "r-1") == decision_id("acme", "r-1") != decision_id("acme", "r-2")
    True
    """
    return derived_id("d-", tenant, request_id)


def trust_reasons(
    tier: str, tier_decision: str, score: float, floor_violation: bool, entropy_flag: bool,
    trust_floor: float, entropy_threshold: float, confidence_band: float, *, calibrated: bool = False,
) -> list[dict[str, str]]:
    """Why the trust gate said what it said; empty for a clean `pass`. `score` is the one
    that decided: the tenant's calibrated score when `calibrated`.

    >>> [r["code"] for r in trust_reasons("monitor", "execute", 0.55, True, False, 0.6, 0.72, 0.2)]
    ['tier_monitor', 'trust_floor_violation']
    >>> trust_reasons("review", "review", 0.4, True, False, 0.6, 0.72, 0.2, calibrated=True)[0]["message"]
    'calibrated trust score 0.4000 is in tier review (review)'
    """
    reasons = []
    name = "calibrated trust score" if calibrated else "trust score"
    if tier != "pass":
        reasons.append({
            "component": "trust", "code": f"tier_{tier}",
            "message": f"{name} {score:.4f} is in tier {tier} ({tier_decision})",
        })
    if entropy_flag:
        reasons.append({
            "component": "trust", "code": "entropy_flag",
            "message": f"confidence band {confidence_band:.4f} > entropy threshold {entropy_threshold}",
        })
    if floor_violation:
        reasons.append({
            "component": "trust", "code": "trust_floor_violation",
            "message": f"{name} {score:.4f} < trust floor {trust_floor}",
        })
    return reasons


def floor_alert(decision: dict[str, Any], trust_floor: float) -> dict[str, Any]:
    """The `trust_floor_violation` alert for a decision whose score is under the floor."""
    trust = decision["trust"]
    calibrated = trust.get("decided_on") == "calibrated"
    score = round(trust["calibrated_score"], 4) if calibrated else trust["score"]
    return alert_event(
        id_source=decision["event_id"], kind="trust_floor_violation", tenant=decision["tenant"], severity="warning",
        message=f"{'calibrated ' if calibrated else ''}trust score {score:.4f} under the floor {trust_floor}; "
                f"verb {decision['verb']}",
        details={
            "decision_id": decision["event_id"], "score": score, "tier": trust["tier"],
            "trust_floor": trust_floor, "verb": decision["verb"],
        },
        source_event_id=decision["request_id"], ts=decision["ts"],
    )


CIRCUIT_OPEN_REASON = {
    "component": "gate", "code": "circuit_open",
    "message": "this worker's processing error rate opened the circuit breaker: every decision goes to review "
               "until it recovers",
}


def circuit_alert(transition: str, events: int, errors: int, config: Any, worker: str, ts: str) -> dict[str, Any]:
    """The `circuit_open` or `circuit_closed` alert of one worker's breaker (tenant `_system`).

    >>> from resontinex.agents.trust import BreakerConfig
    >>> a = circuit_alert("open", 40, 30, BreakerConfig(), "core-6066", "2026-01-01T00:00:00.000Z")
    >>> a["kind"], a["severity"], a["details"]["error_rate"]
    ('circuit_open', 'critical', 0.75)
    """
    rate = round(errors / events, 4) if events else 0.0
    opened = transition == "open"
    return alert_event(
        id_source=f"{worker}|{ts}", kind=f"circuit_{transition}", tenant=SYSTEM_TENANT,
        severity="critical" if opened else "info",
        message=(f"worker {worker}: processing error rate {rate:.2%} over {config.window_s:g} s "
                 + (f"reached {config.open_rate:.0%}: every decision goes to review" if opened
                    else f"is under {config.close_rate:.0%}: decisions are no longer held for review")),
        details={"worker": worker, "error_rate": rate, "errors": errors, "events": events,
                 "window_s": config.window_s, "open_rate": config.open_rate, "close_rate": config.close_rate},
        source_event_id=None, ts=ts,
    )


def break_glass(result: TrustResult, operator_id: str, reason: str, request_id: str, now: datetime) -> tuple[bool, dict[str, str], dict[str, Any]]:
    """Apply an operator's override: `(applied, reason for the decision, audit record body)`.

    An override that cannot apply (nothing to override, a blank operator) is refused,
    and the attempt is audited all the same.

    >>> from datetime import timezone
    >>> from resontinex.agents.trust import default_config, evaluate_values
    >>> applied, why, body = break_glass(evaluate_values(0.1, 0.9, 0.5, default_config()), "ops-1",
    ...                                  "incident 42", "r-1", datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> applied, why["code"], body["original_decision"]
    (True, 'break_glass', 'abort')
    """
    try:
        record = break_glass_override(result, operator_id=operator_id, reason=reason, request_id=request_id, now=now)
    except InvalidOverride as exc:
        return (
            False,
            {"component": "override", "code": "break_glass_refused", "message": str(exc)},
            {"applied": False, "request_id": request_id, "operator_id": operator_id, "reason": reason, "refused": str(exc)},
        )
    return (
        True,
        {"component": "override", "code": "break_glass",
         "message": f"operator {record.operator_id} overrode {record.original_decision}: {record.reason}"},
        {"applied": True, **record.as_audit_record()["record"]},
    )


def decision_event(
    *, tenant: str, request_id: str, workflow: str, ts: str, verb: str, reasons: list[dict[str, str]],
    policy_version: str, trust: dict[str, Any], budget: dict[str, Any] | None = None,
    route: dict[str, Any] | None = None, overlay: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `decisions` event of CONTRACT §3.2.

    >>> d = decision_event(tenant="acme", request_id="r-1", workflow="default", ts="2026-01-01T00:00:00.000Z",
    ...                    verb="execute", reasons=[], policy_version="p", trust={})
    >>> d["event_id"] == decision_id("acme", "r-1"), d["budget"]
    (True, None)
    """
    return {
        "event_id": decision_id(tenant, request_id),
        "schema_version": 1,
        "request_id": request_id,
        "tenant": tenant,
        "workflow": workflow,
        "ts": ts,
        "verb": verb,
        "reasons": reasons,
        "policy_version": policy_version,
        "trust": trust,
        "budget": budget,
        "route": route,
        "overlay": overlay,
    }
