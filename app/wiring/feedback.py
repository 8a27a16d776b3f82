"""Outcomes of routed decisions: one Q-update per decision, however often redelivered.

The tenant's `router-state` value holds the policy and the ids of the decisions whose
outcome was applied; an outcome's update and its id land in one table write, so a crash
either loses both (the redelivered outcome is applied then) or keeps both (it is
recognised and dropped). The whole read-modify-write runs with no `await`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import orjson

from resontinex.agents import router as rt_
from resontinex.app import metrics
from resontinex.app.engine.audit_writer import audit_item
from resontinex.app.runtime import Runtime
from resontinex.schemas import Outcome, ms_to_ts

from resontinex.agents.gate import alert_event, load_router_state

from resontinex.app.wiring.router_tables import store_router_state

log = logging.getLogger(__name__)


def apply_outcomes(rt: Runtime, table: Any, routed: dict[str, list[tuple[Any, Outcome, dict]]],
                   expired: dict[str, list[tuple[Any, str]]] | None = None) -> dict[int, list[dict[str, Any]]]:
    """Apply each tenant's routed outcomes, in order, and count its decisions whose outcome
    came too late (`expired`: event, decision id; each decision counted once, like an
    update); queue `routing_anomaly` alerts on the sink and return their audit items per
    partition (to be sealed by the caller)."""
    audit: dict[int, list[dict[str, Any]]] = defaultdict(list)
    expired = expired or {}
    for tenant in routed.keys() | expired.keys():
        items = routed.get(tenant, [])
        state, applied = load_router_state(table, tenant, rt.routing)
        done = set(applied)
        late = {decision_id for _, decision_id in expired.get(tenant, ()) if decision_id not in done}
        if late:
            state = rt_.expire(state, len(late))
            done |= late
            applied.extend(sorted(late))
        for event, outcome, pending in items:
            if outcome.decision_id in done:
                metrics.DUPLICATES.labels(event.message.topic).inc()
                continue
            state, fb = rt_.feedback(state, rt_.PendingDecision.from_dict(pending), success=outcome.success,
                                     cost_usd=outcome.actual_cost_usd, latency_ms=outcome.actual_latency_ms,
                                     reputation=outcome.actual_reputation)
            done.add(outcome.decision_id)
            applied.append(outcome.decision_id)
            metrics.ROUTER_REWARDS.labels(pending["provider_id"]).observe(fb.reward)
            ts = outcome.ts or ms_to_ts(round(event.message.timestamp * 1000))
            for anomaly in fb.anomalies:
                alert = alert_event(id_source=f"{outcome.decision_id}|{anomaly.kind}", tenant=tenant,
                                    source_event_id=outcome.event_id, ts=ts, **anomaly.alert())
                rt.sink.add(rt.settings.topic("alerts"), event.message.partition, tenant.encode(), orjson.dumps(alert))
                audit[event.message.partition].append(
                    audit_item("au-" + alert["event_id"][2:], "alert", tenant, ts, rt.policy_version, {"alert": alert}))
                metrics.ALERTS.labels("routing_anomaly").inc()
                log.warning(alert["message"], extra={"event_id": outcome.event_id, "tenant": tenant})
        event = items[-1][0] if items else expired[tenant][-1][0]  # a tenant's events share one partition
        store_router_state(table, tenant, state, applied, event)
    return audit
