from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.router import RouterError, RouterStats, TableError


def test_fresh_stats_are_zero_with_undefined_averages() -> None:
    s = RouterStats()
    assert (s.decisions, s.routed, s.outcomes, s.pending) == (0, 0, 0, 0)
    assert (s.success_rate, s.avg_cost_usd, s.avg_latency_ms, s.avg_reward_recent) == (None, None, None, None)
    assert set(s.violation_counts().values()) == {0} and len(s.violation_counts()) == 6


def test_decisions_are_counted_by_outcome_and_mode() -> None:
    s = (RouterStats()
         .after_decision(routed=True, flagged=False, mode="exploit", violations=[])
         .after_decision(routed=True, flagged=True, mode="explore", violations=["price_exceeded"])
         .after_decision(routed=False, flagged=False, mode=None,
                         violations=["price_exceeded", "gpu_unavailable", "price_exceeded"]))
    assert (s.decisions, s.routed, s.no_feasible, s.flagged, s.explore, s.exploit) == (3, 2, 1, 1, 1, 1)
    assert s.violation_counts()["price_exceeded"] == 3 and s.violation_counts()["gpu_unavailable"] == 1
    assert s.pending == 2


def test_unrouted_decisions_are_never_flagged_or_moded() -> None:
    s = RouterStats().after_decision(routed=False, flagged=True, mode="explore", violations=[])
    assert (s.flagged, s.explore, s.exploit, s.no_feasible) == (0, 0, 0, 1)


def test_outcomes_fold_into_rates_and_averages() -> None:
    s = RouterStats()
    for _ in range(4):
        s = s.after_decision(routed=True, flagged=False, mode="exploit", violations=[])
    s = s.after_outcome(success=True, cost_usd=2.0, latency_ms=100.0, reward=9.0)
    s = s.after_outcome(success=False, cost_usd=4.0, latency_ms=300.0, reward=-20.0)
    s = s.after_expiry()
    assert (s.outcomes, s.successes, s.success_rate) == (2, 1, 0.5)
    assert (s.avg_cost_usd, s.avg_latency_ms, s.avg_reward_recent) == (3.0, 200.0, -5.5)
    assert (s.expired, s.pending) == (1, 1)


def test_recent_rewards_keep_the_last_100() -> None:
    s = RouterStats()
    for i in range(150):
        s = s.after_outcome(success=True, cost_usd=0.0, latency_ms=0.0, reward=float(i))
    assert len(s.recent_rewards) == 100 and s.recent_rewards[0] == 50.0
    assert s.avg_reward_recent == pytest.approx(sum(range(50, 150)) / 100)
    assert s.reward == sum(range(150))


def test_anomalies_are_counted_by_kind() -> None:
    s = RouterStats().after_anomaly("q_jump").after_anomaly("q_jump").after_anomaly("success_rate")
    assert s.anomaly_counts() == {"q_jump": 2, "success_rate": 1}
    with pytest.raises(RouterError):
        s.after_anomaly("weird")
    with pytest.raises(ValueError):
        s.after_decision(routed=True, flagged=False, mode="exploit", violations=["too_pretty"])


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 100), st.floats(0, 1000)), max_size=40))
def test_stats_round_trip_through_json(outcomes: list) -> None:
    s = RouterStats().after_decision(routed=False, flagged=False, mode=None, violations=["region_mismatch"])
    for ok, cost, latency in outcomes:
        s = s.after_decision(routed=True, flagged=False, mode="exploit", violations=[])
        s = s.after_outcome(success=ok, cost_usd=cost, latency_ms=latency, reward=9.0 if ok else -20.0)
    back = RouterStats.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s


@pytest.mark.parametrize(("data", "path"), [
    ([], "stats"),
    ({"decisions": -1}, "stats.decisions"),
    ({"cost_usd": "cheap"}, "stats.cost_usd"),
    ({"violations": {"too_pretty": 1}}, "stats.violations.too_pretty"),
    ({"violations": {"price_exceeded": 1.5}}, "stats.violations.price_exceeded"),
    ({"recent_rewards": [1.0, None]}, "stats.recent_rewards[1]"),
    ({"mystery": 1}, "stats.mystery"),
])
def test_bad_stats_are_refused_naming_the_path(data: object, path: str) -> None:
    with pytest.raises(TableError) as err:
        RouterStats.from_dict(data)
    assert err.value.path == path
