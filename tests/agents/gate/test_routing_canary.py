"""A tenant's routing policy under canary on live decisions (`PolicyCanary.routing`).

The candidate here routes in `lenient` mode where the current router is `strict`; every
offer breaks `max_price` (a soft constraint), so the current router finds no provider
(`defer`) and the candidate routes to one and flags it (`execute`): which router decided
shows in the route as well as in `policy_version`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from resontinex.agents import router as rt_
from resontinex.agents.enhancement import candidate_routing
from resontinex.agents.gate import PolicyCanary, arm_of, canary_of, candidate_of

from .test_plan import CFG, PASS, PV, ROUTING, body, rec
from .test_policy_canary import plan
from .views import DictView, Rec

CANDIDATE_PV = "pv-lenient"
EID = "lenient-routing"
LENIENT = candidate_routing(CFG.routing, {"mode": "lenient"})
TIGHT = {**ROUTING, "constraints": {"max_price": 1.0}}
N = 40


def canary(share: float = 0.5, step: int = 2, activation: int = 0, routing: rt_.RoutingConfig = LENIENT) -> PolicyCanary:
    return PolicyCanary(EID, share, step, CANDIDATE_PV, activation, routing=routing)


def batch(n: int = N, prefix: str = "r", routing: dict[str, Any] | None = TIGHT) -> list[Rec]:
    extra = {} if routing is None else {"routing": routing}
    return [rec(body(f"{prefix}-{i}", PASS, **extra), offset=i) for i in range(n)]


def router_writes(p: Any) -> dict[str, Any]:
    return {w.key: w.value for w in p.plan.effects.early_writes if w.table == "router-state"}


def test_the_candidate_router_routes_its_arm_and_the_current_router_the_rest() -> None:
    c = canary(0.5)
    p = plan(batch(), DictView(policies={"acme": c}))
    arms = {d["request_id"]: arm_of(c, d["request_id"]) for d in p.decisions}
    assert set(arms.values()) == {"candidate", "current"}
    for rid, d in p.by_request().items():
        assert d["canary"]["kind"] == "routing_policy" and d["canary"]["arm"] == arms[rid]
        assert d["canary"]["shadow"] is None
        if arms[rid] == "candidate":
            assert d["policy_version"] == CANDIDATE_PV
            assert d["verb"] == "execute" and d["route"]["provider_id"] and d["route"]["violations"] == ["price_exceeded"]
        else:
            assert d["policy_version"] == PV
            assert d["verb"] == "defer" and d["route"]["provider_id"] is None
    # each audited under the policy version that decided it
    assert {a["record"]["decision"]["request_id"]: a["policy_version"] for a in p.audit("decision")} == {
        rid: CANDIDATE_PV if arm == "candidate" else PV for rid, arm in arms.items()}


def test_both_routers_are_kept_in_the_tenants_router_value() -> None:
    c = canary(0.5)
    p = plan(batch(), DictView(policies={"acme": c}))
    value = router_writes(p)["acme"]
    candidate = candidate_of(value)
    assert candidate is not None
    assert (candidate.enhancement_id, candidate.activation, candidate.cfg) == (EID, 0, LENIENT)
    routed_by_candidate = sum(arm_of(c, d["request_id"]) == "candidate" for d in p.decisions)
    assert candidate.state.stats.routed == routed_by_candidate
    current = rt_.RouterState.from_dict(value["state"], CFG.routing)
    assert current.stats.decisions == N - routed_by_candidate and current.stats.routed == 0


def test_the_stored_candidate_carries_on_and_a_new_activation_starts_afresh() -> None:
    c = canary(0.5)
    first = router_writes(plan(batch(), DictView(policies={"acme": c})))["acme"]
    again = router_writes(plan(batch(prefix="s"), DictView(policies={"acme": c}, routers={"acme": first})))["acme"]
    before, after = candidate_of(first), candidate_of(again)
    assert before is not None and after is not None
    assert after.state.stats.decisions > before.state.stats.decisions  # the same candidate, counting on
    renewed = router_writes(plan(batch(prefix="s"), DictView(policies={"acme": canary(0.5, activation=1)},
                                                             routers={"acme": first})))["acme"]
    fresh = candidate_of(renewed)
    assert fresh is not None and fresh.activation == 1
    assert fresh.state.stats.decisions < after.state.stats.decisions  # seeded anew from the current router


def test_no_canary_drops_a_stored_candidate() -> None:
    stored = router_writes(plan(batch(), DictView(policies={"acme": canary(0.5)})))["acme"]
    value = router_writes(plan(batch(prefix="s"), DictView(routers={"acme": stored})))["acme"]
    assert "candidate" not in value and value["applied"] == stored["applied"]


def test_requests_without_routing_take_no_part() -> None:
    p = plan(batch(routing=None), DictView(policies={"acme": canary(1.0)}))
    assert all("canary" not in d and d["policy_version"] == PV for d in p.decisions)
    assert not router_writes(p)


def test_shadow_routes_with_the_current_router_and_records_where_the_candidate_would_have() -> None:
    c = canary(0.0, step=0)
    p = plan(batch(), DictView(policies={"acme": c}))
    for d in p.decisions:
        assert (d["policy_version"], d["verb"], d["route"]["provider_id"]) == (PV, "defer", None)
        shadow = d["canary"]["shadow"]
        assert shadow["verb"] == "execute" and shadow["provider_id"] in {"akash", "vast"}
        assert (shadow["policy"], shadow["policy_version"]) == ("epsilon_greedy", CANDIDATE_PV)
        judged = canary_of(d)
        assert judged is not None and (judged["part_verb"], judged["shadow"]["verb"]) == ("defer", "execute")
    candidate = candidate_of(router_writes(p)["acme"])
    assert candidate is not None and candidate.state.stats.decisions == 0  # it decided nothing


def test_a_redelivered_request_keeps_its_route_and_its_shadow() -> None:
    c = canary(0.0, step=0)
    first = plan(batch(1), DictView(policies={"acme": c}))
    made = [orjson.loads(o.value) for o in first.plan.effects.ahead]
    again = plan(batch(1), DictView(policies={"acme": c}, unaudited_decisions={v["decision"]["event_id"]: v
                                                                               for v in made}))
    assert again.decisions[0]["canary"] == first.decisions[0]["canary"]


@pytest.mark.parametrize("payload", [{"policy": "ucb1"}, {"epsilon": 0.5}])
def test_a_candidate_of_another_policy_or_epsilon_routes(payload: dict[str, Any]) -> None:
    cand = candidate_routing(CFG.routing, payload)
    p = plan(batch(routing=ROUTING), DictView(policies={"acme": canary(1.0, routing=cand)}))
    assert {d["policy_version"] for d in p.decisions} == {CANDIDATE_PV}
    assert {d["route"]["policy"] for d in p.decisions} == {cand.policy}
    stored = candidate_of(router_writes(p)["acme"])
    assert stored is not None and stored.cfg == cand
    if "epsilon" in payload:
        assert stored.state.policy.epsilon == 0.5  # type: ignore[union-attr]


def test_a_canary_needs_exactly_one_candidate_configuration() -> None:
    with pytest.raises(ValueError):
        PolicyCanary(EID, 0.5, 1, CANDIDATE_PV)
    with pytest.raises(ValueError):
        replace(canary(), trust=CFG.trust)
