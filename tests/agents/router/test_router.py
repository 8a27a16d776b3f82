from __future__ import annotations

import json

import pytest

from resontinex.agents.router import (
    POLICIES,
    Constraints,
    PsiReading,
    RouteDecision,
    RouterState,
    TableError,
    decide,
    decision_rng,
    expire,
    feedback,
    reward,
)
from resontinex.schemas import Constraints as ConstraintsModel
from resontinex.schemas import Provider as ProviderModel
from resontinex.schemas import Psi as PsiModel
from resontinex.schemas import Reason, RouteSummary, RoutingContext

from ._support import CONTEXT, KEY, config, offer, pending_of

OFFERS = [offer("akash", price=2.5, latency=120, reputation=95), offer("vast", price=1.5, latency=200, reputation=85),
          offer("lambda", price=4.0, latency=90, reputation=98)]
LIMITS = Constraints(max_price=3.0, max_latency_ms=300, min_reputation=80)


def route(state: RouterState, offers: list = OFFERS, limits: Constraints | None = LIMITS, rid: str = "r-1",
          psi: PsiReading | None = None) -> tuple[RouterState, RouteDecision]:
    return decide(state, context=CONTEXT, providers=offers, constraints=limits, psi=psi,
                  rng=decision_rng(state.cfg.seed, rid))


def test_a_routed_decision() -> None:
    state, r = route(RouterState.fresh(config()))
    assert r.verb == "execute" and r.reasons() == [] and r.alert() is None
    assert r.state_key == KEY
    assert r.screening.candidates == ("akash", "vast")
    s = r.summary()
    assert s["provider_id"] in ("akash", "vast") and s["policy"] == "epsilon_greedy" and s["violations"] == []
    assert s["propensity"] == 0.5 and s["q_value"] == 0.0
    RouteSummary.model_validate(s)
    assert (state.stats.decisions, state.stats.routed) == (1, 1)
    assert state.stats.violation_counts()["price_exceeded"] == 1  # lambda, screened out


def test_decide_does_not_learn() -> None:
    fresh = RouterState.fresh(config())
    state, _ = route(fresh)
    assert state.policy == fresh.policy and state.q_jumps == fresh.q_jumps


def test_no_feasible_provider_defers_with_an_alert() -> None:
    offers = [offer("akash", price=5.0), offer("vast", gpus=("t4",))]
    state, r = route(RouterState.fresh(config()), offers)
    assert r.verb == "defer" and r.choice is None and r.pending("d-1", 0.0) is None
    s = r.summary()
    assert s["provider_id"] is None and s["violations"] == ["price_exceeded", "gpu_unavailable"]
    RouteSummary.model_validate(s)
    (reason,) = r.reasons()
    Reason.model_validate(reason)
    assert reason["code"] == "no_feasible_provider" and "akash" in reason["message"]
    alert = r.alert()
    assert alert is not None and alert["kind"] == "no_feasible_provider"
    assert alert["details"]["offered"] == ["akash", "vast"]
    assert [v["type"] for v in alert["details"]["violations"]] == ["price_exceeded", "gpu_unavailable"]
    assert (state.stats.no_feasible, state.stats.routed, state.stats.pending) == (1, 0, 0)


def test_no_providers_offered_defers() -> None:
    _, r = route(RouterState.fresh(config()), [])
    assert r.verb == "defer" and r.summary()["violations"] == []
    assert "no provider offered" in r.reasons()[0]["message"]


def test_lenient_mode_routes_to_a_soft_violator_and_flags_it() -> None:
    offers = [offer("akash", price=5.0), offer("vast", gpus=("t4",))]
    state, r = route(RouterState.fresh(config(mode="lenient")), offers)
    assert r.verb == "execute"
    s = r.summary()
    assert s["provider_id"] == "akash" and s["violations"] == ["price_exceeded"] and s["propensity"] == 1.0
    (reason,) = r.reasons()
    assert reason["code"] == "constraint_violation" and "price_exceeded" in reason["message"]
    assert r.alert() is None
    assert (state.stats.flagged, state.stats.routed) == (1, 1)


def test_same_request_and_seed_same_route() -> None:
    state = RouterState.fresh(config(epsilon=0.5))
    for rid in ("a", "b", "c", "d"):
        assert route(state, rid=rid)[1] == route(state, rid=rid)[1]
    assert len({route(state, rid=str(i))[1].summary()["provider_id"] for i in range(40)}) == 2


def test_seed_changes_the_draws() -> None:
    assert decision_rng(0, "r").random() != decision_rng(1, "r").random()
    assert decision_rng(0, "a", "b").random() != decision_rng(0, "ab").random()


def test_issue_example_through_feedback() -> None:
    state, r = route(RouterState.fresh(config()))
    pending = r.pending("d-1", decided_at=100.0)
    assert pending is not None and pending.decision_id == "d-1" and pending.decided_at == 100.0
    state, fb = feedback(state, pending, success=True, cost_usd=1.45, latency_ms=145, reputation=89)
    assert fb.reward == 9.15 and (fb.old_value, fb.new_value) == (0.0, 0.915) and fb.anomalies == ()
    assert state.policy.value(KEY, pending.provider_id) == 0.915
    assert state.policy.epsilon == 0.0995
    assert (state.stats.outcomes, state.stats.successes, state.stats.avg_cost_usd) == (1, 1, 1.45)
    assert state.stats.pending == 0


def test_failure_reward_and_expiry() -> None:
    state, r = route(RouterState.fresh(config()))
    state, fb = feedback(state, pending_of(r, "d-1", 0.0), success=False, cost_usd=1.0, latency_ms=1.0, reputation=1.0)
    assert fb.reward == -20.0 and fb.new_value == -2.0
    state, _ = route(state, rid="r-2")
    assert state.stats.pending == 1
    assert expire(state).stats.pending == 0 and expire(state).stats.expired == 1


@pytest.mark.parametrize("name", POLICIES)
def test_every_policy_learns_through_the_pending_record(name: str) -> None:
    state = RouterState.fresh(config(policy=name))
    for i in range(30):
        state, r = route(state, rid=f"r-{i}")
        p = pending_of(r, f"d-{i}", float(i))
        ok = p.provider_id == "akash"
        state, fb = feedback(state, p, success=ok, cost_usd=2.5, latency_ms=120, reputation=95)
        assert fb.reward == reward(success=ok, cost_usd=2.5, latency_ms=120, reputation=95)
    assert state.stats.outcomes == 30 and state.policy.observations(KEY, "akash") > 0
    state, r = route(state, rid="final")
    assert (state.policy.value(KEY, "akash") or -20.0) > (state.policy.value(KEY, "vast") or -20.0)


def test_schema_models_route_directly() -> None:
    ctx = RoutingContext(workload_type="llm_inference", gpu_type="a100", region="us-west", gpu_hours=2.0)
    provider = ProviderModel(provider_id="akash", price_usd_per_hour=2.5, latency_ms=120, reputation=95,
                             capacity_available=100, gpu_types=["a100"], regions=["us-west"])
    state, r = decide(RouterState.fresh(config(policy="linucb")), context=ctx, providers=[provider],
                      constraints=ConstraintsModel(max_price=3.0),
                      psi=PsiModel(density=0.5, coherence=0.5, entropy=0.1),
                      rng=decision_rng(0, "x"))
    assert r.summary()["provider_id"] == "akash" and r.features is not None
    assert state.stats.routed == 1


def test_a_q_jump_raises_a_routing_anomaly() -> None:
    state = RouterState.fresh(config(epsilon=0.0, epsilon_min=0.0, anomaly={"q_jump_min_samples": 5}))
    single = [offer("akash")]
    fired = []
    for i in range(40):
        state, r = route(state, single, rid=f"r-{i}")
        ok = i != 39  # a long run of successes, then a failure
        state, fb = feedback(state, pending_of(r, f"d-{i}", 0.0), success=ok, cost_usd=1.0, latency_ms=100,
                             reputation=90)
        fired.append([a.kind for a in fb.anomalies])
    assert fired[-1] == ["q_jump"]
    assert all(kinds == [] for kinds in fired[5:-1])
    assert state.stats.anomaly_counts()["q_jump"] == 1


def test_a_failing_provider_raises_one_success_rate_anomaly() -> None:
    state = RouterState.fresh(config(anomaly={"success_rate_window": 5, "success_rate_min": 0.6}))
    kinds = []
    for i in range(12):
        state, r = route(state, [offer("akash")], rid=f"r-{i}")
        state, fb = feedback(state, pending_of(r, f"d-{i}", 0.0), success=False, cost_usd=1.0, latency_ms=1.0,
                             reputation=1.0)
        kinds += [a.kind for a in fb.anomalies]
    assert kinds.count("success_rate") == 1
    assert state.stats.anomaly_counts()["success_rate"] == 1


@pytest.mark.parametrize("name", POLICIES)
def test_router_state_round_trips_through_json(name: str) -> None:
    cfg = config(policy=name)
    state = RouterState.fresh(cfg)
    for i in range(8):
        state, r = route(state, rid=f"r-{i}")
        state, _ = feedback(state, pending_of(r, f"d-{i}", 0.0), success=i % 3 != 0, cost_usd=2.0, latency_ms=150,
                            reputation=90)
    back = RouterState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)), cfg)
    assert back == state
    assert route(back, rid="next")[1] == route(state, rid="next")[1]


def test_switching_policy_in_the_config_starts_that_policy_fresh_and_keeps_the_stats() -> None:
    state = RouterState.fresh(config())
    state, r = route(state)
    state, _ = feedback(state, pending_of(r, "d-1"), success=True, cost_usd=1.45, latency_ms=145, reputation=89)
    data = json.loads(json.dumps(state.to_dict()))
    switched = RouterState.from_dict(data, config(policy="thompson"))
    assert switched.policy.name == "thompson" and switched.policy.values() == {}
    assert switched.stats == state.stats and switched.success == state.success
    kept = RouterState.from_dict(data, config(alpha=0.5))
    assert kept.policy.values() == state.policy.values() and kept.cfg.alpha == 0.5


def test_bad_router_state_is_refused_naming_the_path() -> None:
    data = RouterState.fresh(config()).to_dict()
    with pytest.raises(TableError) as err:
        RouterState.from_dict({**data, "stats": {"routed": -3}}, config())
    assert err.value.path == "stats.routed"
    with pytest.raises(TableError) as err:
        RouterState.from_dict({k: v for k, v in data.items() if k != "q_jumps"}, config())
    assert err.value.path == "<router>.q_jumps"
