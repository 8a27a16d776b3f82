"""The router's and the overlays' parts of a decision, for the gate's plan.

Router state lives per tenant in the `router-state` table (Q-values of every state key
the tenant routes, anomaly detectors, counters) on the tenant's partition, next to its
requests and outcomes. The gate and the outcomes agent both update it; each reads it and
writes it back with no `await` in between (the gate's applier writes a plan's table
writes before its first `await`), so neither overwrites the other's.

While a `routing_policy` enhancement of the tenant is under canary, its candidate router
is kept in the same value (`candidate`: the enhancement, its activation, its configuration
and its state), seeded from the current router when the canary starts
(`router.candidate_state`). It routes the requests of its arm; in shadow it only says
where it would have routed. Both routers learn from every outcome of the tenant's routed
decisions (an outcome teaches what a provider did, whichever router chose it), so they
differ in how they choose, which is what the canary judges.

A request redelivered after a crash that sent its decision but not its audit record is
never routed again: the plan answers it with the whole decision it got then (the
`unaudited-decisions` table, `_plan`), so the client keeps the provider it already runs on
even if the router has learnt since.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple


from resontinex.agents import router as rt_
from resontinex.agents.effects import auditable
from resontinex.agents.overlays import OverlayChoice, OverlaySet, select_overlay
from resontinex.schemas import SYSTEM_TENANT, DecisionRequest, Routing

from ._decide import alert_event
from ._policy import PolicyCanary, arm_of
from ._view import GateView


class Routed(NamedTuple):
    route: dict[str, Any]
    verb: str
    reasons: list[dict[str, str]]
    alert: dict[str, Any] | None  # no_feasible_provider
    pending: dict[str, Any] | None  # what the outcome's update needs
    shadow: dict[str, Any] | None = None  # a shadow candidate router's choice


class Candidate(NamedTuple):
    """A tenant's candidate router: whose (enhancement id, activation), under which configuration."""

    enhancement_id: str
    activation: int
    cfg: rt_.RoutingConfig
    state: rt_.RouterState

    def as_dict(self) -> dict[str, Any]:
        return {"enhancement_id": self.enhancement_id, "activation": self.activation, "config": self.cfg.as_dict(),
                "state": self.state.to_dict()}


log = logging.getLogger(__name__)

APPLIED_KEPT = 5_000
"""Decision ids whose outcome was applied, kept per tenant: a redelivered outcome is
recognised within them (redeliveries come from the last uncommitted batch)."""


def router_state_of(stored: Mapping[str, Any] | None, cfg: rt_.RoutingConfig) -> tuple[rt_.RouterState, list[str], bool]:
    """A `router-state` value read back: (state, applied decision ids, whether it was replaced).

    A tenant that never routed gets a fresh state. A stored value that no longer reads back
    (it cannot pass `RouterState.from_dict`) is logged and replaced by a fresh state rather
    than crash-looping the worker.
    """
    if not stored:
        return rt_.RouterState.fresh(cfg), [], False
    try:
        return rt_.RouterState.from_dict(stored["state"], cfg), list(stored["applied"]), False
    except (rt_.RouterError, KeyError, TypeError) as exc:
        log.error("unreadable router state replaced by a fresh one", extra={"error": str(exc)})
        applied = list(stored.get("applied", [])) if isinstance(stored, dict) else []
        return rt_.RouterState.fresh(cfg), applied, True


def candidate_of(stored: Mapping[str, Any] | None) -> Candidate | None:
    """The candidate router kept in a `router-state` value, if any (one that no longer reads
    back is logged and dropped: the gate seeds a new one while its canary lasts)."""
    raw = stored.get("candidate") if isinstance(stored, Mapping) else None
    if not raw:
        return None
    try:
        cfg = rt_.routing_config_from(raw["config"])
        return Candidate(raw["enhancement_id"], raw["activation"], cfg, rt_.RouterState.from_dict(raw["state"], cfg))
    except (rt_.RouterError, KeyError, TypeError) as exc:
        log.error("unreadable candidate router dropped", extra={"error": str(exc)})
        return None


def load_router_state(table: Mapping[str, Any], tenant: str, cfg: rt_.RoutingConfig) -> tuple[rt_.RouterState, list[str]]:
    """The tenant's router state in `table` (fresh when it never routed) and its applied decision ids."""
    state, applied, _ = router_state_of(table.get(tenant), cfg)
    return state, applied


def router_value(state: rt_.RouterState, applied: list[str], imports: list[str],
                 candidate: Candidate | None = None) -> dict[str, Any]:
    """A tenant's `router-state` value: the state, the applied decision ids (the last
    `APPLIED_KEPT`), the ids of the router imports applied and its candidate router, if any."""
    value = {"state": state.to_dict(), "applied": applied[-APPLIED_KEPT:], "imports": imports}
    if candidate is not None:
        value["candidate"] = candidate.as_dict()
    return value


class RouteJudge:
    """One per batch: routes each request that carries `routing`, at the batch's time.

    A request of a tenant with a
    routing policy under canary is routed by the router of its arm (`_policy.arm_of`).
    `states` and `candidates` hold what the batch changed, for the plan's table writes.
    """

    def __init__(self, cfg: rt_.RoutingConfig, view: GateView, now: float) -> None:
        self.cfg, self.view, self.now = cfg, view, now
        self.states: dict[str, tuple[rt_.RouterState, list[str], int]] = {}
        """tenant → (state, applied decision ids, the partition of its last request)."""
        self.candidates: dict[str, Candidate] = {}
        """tenant → its candidate router, while it has a routing policy under canary."""
        self.unreadable = 0

    def __call__(self, tenant: str, request: DecisionRequest, decision_id: str, partition: int, ts: str) -> Routed | None:
        if request.routing is None:
            return None
        return self._decide(tenant, request, request.routing, decision_id, partition, ts)

    def _decide(self, tenant: str, request: DecisionRequest, routing: Routing, decision_id: str, partition: int,
                ts: str) -> Routed:
        if tenant in self.states:
            state, applied, _ = self.states[tenant]
        else:
            state, applied, replaced = router_state_of(self.view.router_value(tenant), self.cfg)
            self.unreadable += replaced
        canary = self.view.policy(tenant)
        candidate = self._candidate(tenant, canary, state) if canary is not None and canary.routing else None
        arm = "current" if canary is None or candidate is None else arm_of(canary, request.event_id)
        shadow = None
        if candidate is not None and arm == "candidate":
            cand_state, route = self._route(candidate.state, tenant, request, routing)
            self.candidates[tenant] = candidate._replace(state=cand_state)
        else:
            state, route = self._route(state, tenant, request, routing)
            if candidate is not None and canary is not None and canary.shadow:
                _, would = self._route(candidate.state, tenant, request, routing)  # it decides nothing
                shadow = {"verb": would.verb, "provider_id": would.summary()["provider_id"],
                          "policy": would.policy, "policy_version": canary.policy_version}
        self.states[tenant] = (state, applied, partition)
        pending = route.pending(decision_id, self.now)
        parts = route.alert()
        alert = None if parts is None else alert_event(
            id_source=decision_id, tenant=tenant, source_event_id=request.event_id, ts=ts, **parts)
        return Routed(route.summary(), route.verb, route.reasons(), alert,
                      None if pending is None else pending.to_dict(), shadow)

    def _route(self, state: rt_.RouterState, tenant: str, request: DecisionRequest,
               routing: Routing) -> tuple[rt_.RouterState, rt_.RouteDecision]:
        return rt_.decide(state, context=routing.context, providers=routing.providers or (),
                          constraints=routing.constraints, psi=request.psi,
                          rng=rt_.decision_rng(self.cfg.seed, tenant, request.event_id))

    def _candidate(self, tenant: str, canary: PolicyCanary, current: rt_.RouterState) -> Candidate:
        """The tenant's candidate router for `canary`: this batch's, the stored one when it is
        the same canary's, else a new one seeded from the current router."""
        assert canary.routing is not None
        if tenant in self.candidates:
            return self.candidates[tenant]
        stored = candidate_of(self.view.router_value(tenant))
        if stored is None or (stored.enhancement_id, stored.activation, stored.cfg) != (
                canary.enhancement_id, canary.activation, canary.routing):
            stored = Candidate(canary.enhancement_id, canary.activation, canary.routing,
                               rt_.candidate_state(current, canary.routing))
        self.candidates[tenant] = stored
        return stored

    def values(self) -> dict[str, tuple[dict[str, Any], int]]:
        """tenant → (its new `router-state` value, partition), keeping its imports; a
        candidate router is kept only while its canary lasts."""
        return {tenant: (router_value(state, applied, (self.view.router_value(tenant) or {}).get("imports", []),
                                      self.candidates.get(tenant)), partition)
                for tenant, (state, applied, partition) in self.states.items()}


def auditable_table(document: Any) -> None:
    """Refuse a router table the audit cannot hold (`effects.auditable`)."""
    if not auditable(document):
        raise rt_.TableError("q_table", "an integer beyond ±(2^53 − 1) cannot be audited (RFC 8785)")


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
