from __future__ import annotations

import json

import pytest

from resontinex.agents.router import Constraints, RouterState, decide, decision_rng, feedback, router_status

from ._support import CONTEXT, KEY, config, offer, pending_of

OFFERS = [offer("akash", price=2.5), offer("vast", price=1.5, latency=500.0)]
LIMITS = Constraints(max_price=3.0, max_latency_ms=300)


def run() -> RouterState:
    state = RouterState.fresh(config())
    results = [(True, 2.0, 100.0), (False, 4.0, 300.0), (True, 3.0, 200.0)]
    for i, (ok, cost, latency) in enumerate(results):
        state, r = decide(state, context=CONTEXT, providers=OFFERS, constraints=LIMITS, psi=None,
                          rng=decision_rng(0, f"r-{i}"))
        state, _ = feedback(state, pending_of(r, f"d-{i}", 0.0), success=ok, cost_usd=cost, latency_ms=latency,
                            reputation=90)
    state, _ = decide(state, context=CONTEXT, providers=[offer("x", price=9.0, gpus=("t4",))], constraints=LIMITS,
                      psi=None, rng=decision_rng(0, "r-9"))
    state, _ = decide(state, context=CONTEXT, providers=OFFERS, constraints=LIMITS, psi=None,
                      rng=decision_rng(0, "r-10"))
    return state


def test_status_like_seed_002s_get_status() -> None:
    snap = router_status(run())
    assert json.loads(json.dumps(snap, allow_nan=False)) == snap
    strategist, executor, auditor = snap["strategist"], snap["executor"], snap["auditor"]
    assert snap["policy"] == strategist["policy"] == "epsilon_greedy"
    assert strategist["epsilon"] == pytest.approx(0.1 * 0.995 ** 3)
    assert strategist["decision_count"] == 5 and strategist["q_states"] == 1
    assert list(strategist["q_values"]) == [KEY] and set(strategist["q_values"][KEY]) == {"akash"}
    assert strategist["observations"][KEY]["akash"] == 3
    assert strategist["total_rewards"] == 3
    assert strategist["explore"] + strategist["exploit"] == 4
    assert executor["total_decisions"] == 4 and executor["total_outcomes"] == 3
    assert executor["success_rate"] == pytest.approx(2 / 3)
    assert executor["avg_cost_usd"] == 3.0 and executor["avg_latency_ms"] == 200.0
    assert executor["pending_feedback"] == 1
    assert auditor["total_entries"] == 5
    assert auditor["approval_rate"] == 0.8 and auditor["rejection_rate"] == 0.2 and auditor["flagged_rate"] == 0.0
    assert auditor["violations"]["latency_exceeded"] == 4  # vast, every time it was offered
    assert auditor["violations"]["price_exceeded"] == 1 and auditor["violations"]["gpu_unavailable"] == 1
    assert auditor["common_violations"] == [{"type": "latency_exceeded", "count": 4},
                                            {"type": "gpu_unavailable", "count": 1},
                                            {"type": "price_exceeded", "count": 1}]
    assert snap["anomalies"] == {"q_jump": 0, "success_rate": 0, "underperforming": []}


def test_status_of_a_fresh_router_has_no_rates() -> None:
    snap = router_status(RouterState.fresh(config(policy="ucb1")))
    assert snap["strategist"]["epsilon"] is None and snap["strategist"]["q_values"] == {}
    assert snap["auditor"]["approval_rate"] is None and snap["executor"]["avg_cost_usd"] is None
    assert snap["strategist"]["avg_reward_100"] is None


def test_status_lists_underperforming_providers() -> None:
    state = RouterState.fresh(config(anomaly={"success_rate_window": 2, "success_rate_min": 0.5}))
    for i in range(2):
        state, r = decide(state, context=CONTEXT, providers=[offer("akash")], constraints=None, psi=None,
                          rng=decision_rng(0, str(i)))
        state, _ = feedback(state, pending_of(r, str(i), 0.0), success=False, cost_usd=0.0, latency_ms=0.0,
                            reputation=0.0)
    snap = router_status(state)
    assert snap["anomalies"]["underperforming"] == ["akash"] and snap["anomalies"]["success_rate"] == 1
