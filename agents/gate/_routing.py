"""The router's and the overlays' parts of a decision, for the gate agent.

Router state lives per tenant in the `router-state` table (Q-values of every state key
the tenant routes, anomaly detectors, counters) on the tenant's partition, next to its
requests and outcomes. The gate and the outcomes agent both update it; each does its
read-modify-write with no `await` in between, so neither overwrites the other's.

Each route chosen is also kept by request id in the `router-routes` table, written
before the decision is sent and removed once the decision's audit record is out: a
request redelivered after a crash that published its decision but not its audit record
gets the same provider again rather than a fresh draw from a router that has learnt
since (the client is already running on the first). Once audited, a redelivered request
is dropped by the dedupe on request ids, so the route is no longer needed.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from agents import router as rt_
from agents.overlays import OverlayChoice, OverlaySet, select_overlay
from app import metrics
from app.faust_compat import event_context
from schemas import SYSTEM_TENANT, DecisionRequest, Routing

from ._decide import alert_event


class Routed(NamedTuple):
    route: dict[str, Any]
    verb: str
    reasons: list[dict[str, str]]
    alert: dict[str, Any] | None  # no_feasible_provider
    pending: dict[str, Any] | None  # what the outcome's update needs


log = logging.getLogger(__name__)

APPLIED_KEPT = 5_000
"""Decision ids whose outcome was applied, kept per tenant: a redelivered outcome is
recognised within them (redeliveries come from the last uncommitted batch)."""


def load_router_state(table: Any, tenant: str, cfg: rt_.RoutingConfig) -> tuple[rt_.RouterState, list[str]]:
    """The tenant's router state (fresh when it never routed) and its applied decision ids.

    A stored value that no longer reads back (it cannot pass `RouterState.from_dict`) is
    logged, counted and replaced by a fresh state rather than crash-looping the worker.
    """
    stored = table.get(tenant)
    if not stored:
        return rt_.RouterState.fresh(cfg), []
    try:
        return rt_.RouterState.from_dict(stored["state"], cfg), list(stored["applied"])
    except (rt_.RouterError, KeyError, TypeError) as exc:
        log.error("unreadable router state replaced by a fresh one", extra={"tenant": tenant, "error": str(exc)})
        metrics.ERRORS.labels("router_state").inc()
        return rt_.RouterState.fresh(cfg), list(stored.get("applied", [])) if isinstance(stored, dict) else []


def store_router_state(table: Any, tenant: str, state: rt_.RouterState, applied: list[str], event: Any,
                       imports: list[str] | None = None) -> None:
    """Write the tenant's value: the state, the applied decision ids and the ids of the
    imports applied (kept as they were unless given)."""
    if imports is None:
        imports = (table.get(tenant) or {}).get("imports", [])
    with event_context(event):
        table[tenant] = {"state": state.to_dict(), "applied": applied[-APPLIED_KEPT:], "imports": imports}


class RouteJudge:
    """One per batch: routes each request that carries `routing`, at the batch's time.

    `routes` is the `router-routes` table: a request routed before (and not yet audited)
    is answered with the route it got then, and the router state is left as it is.
    """

    def __init__(self, cfg: rt_.RoutingConfig, table: Any, routes: Any, now: float) -> None:
        self.cfg, self.table, self.routes, self.now = cfg, table, routes, now
        self._states: dict[str, tuple[rt_.RouterState, list[str]]] = {}
        self._last: dict[str, Any] = {}
        self.routed = 0

    def __call__(self, tenant: str, request: DecisionRequest, decision_id: str, event: Any, ts: str) -> Routed | None:
        if request.routing is None:
            return None
        with event_context(event):
            earlier = self.routes.get(request.event_id)
            if earlier:
                metrics.ROUTES_REUSED.inc()
                log.info("redelivered request keeps its earlier route",
                         extra={"event_id": request.event_id, "tenant": tenant})
                return Routed(**earlier)
            routed = self._decide(tenant, request, request.routing, decision_id, event, ts)
            self.routes[request.event_id] = routed._asdict()
        self.routed += 1
        return routed

    def _decide(self, tenant: str, request: DecisionRequest, routing: Routing, decision_id: str, event: Any,
                ts: str) -> Routed:
        state, applied = self._states.get(tenant) or load_router_state(self.table, tenant, self.cfg)
        state, route = rt_.decide(state, context=routing.context, providers=routing.providers or (),
                                  constraints=routing.constraints, psi=request.psi,
                                  rng=rt_.decision_rng(self.cfg.seed, tenant, request.event_id))
        self._states[tenant], self._last[tenant] = (state, applied), event
        pending = route.pending(decision_id, self.now)
        parts = route.alert()
        alert = None if parts is None else alert_event(
            id_source=decision_id, tenant=tenant, source_event_id=request.event_id, ts=ts, **parts)
        return Routed(route.summary(), route.verb, route.reasons(), alert,
                      None if pending is None else pending.to_dict())

    def save(self) -> None:
        """Write the batch's router states; call before the next `await`."""
        for tenant, (state, applied) in self._states.items():
            store_router_state(self.table, tenant, state, applied, self._last[tenant])
        self._states.clear()


def overlay_for(request: DecisionRequest, overlays: OverlaySet) -> dict[str, Any] | None:
    """The decision's `overlay` (CONTRACT §3.2) for a request with a `scenario`."""
    if request.scenario is None:
        return None
    choice: OverlayChoice | None = select_overlay(request.scenario, overlays)
    return None if choice is None else choice.as_dict()


def rejection_alerts(rejections: Any, started_at: float, ts: str) -> list[dict[str, Any]]:
    """One `overlay_rejected` alert (tenant `_system`) per overlay file skipped at start;
    ids derive from the file, the reason and the process start, so each start reports once."""
    return [alert_event(id_source=f"{r.path}|{r.reason_code}|{started_at}", kind="overlay_rejected",
                        tenant=SYSTEM_TENANT, severity="warning",
                        message=f"overlay file skipped ({r.reason_code}): {r.as_dict()['message']}",
                        details=r.as_dict(), source_event_id=None, ts=ts) for r in rejections]
