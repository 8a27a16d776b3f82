from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.router import (
    PsiReading,
    RewardScale,
    RouterError,
    effective_epsilon,
    exploration_scale,
    from_unit,
    q_update,
    reward,
    unit_reward,
)

costs = st.floats(min_value=0, max_value=1e4, allow_nan=False)
latencies = st.floats(min_value=0, max_value=1e6, allow_nan=False)
reputations = st.floats(min_value=0, max_value=100, allow_nan=False)


def test_issue_4s_reward_example_exactly() -> None:
    assert reward(success=True, cost_usd=1.45, latency_ms=145, reputation=89) == 9.15


def test_issue_4s_q_example_exactly() -> None:
    r = reward(success=True, cost_usd=1.45, latency_ms=145, reputation=89)
    assert q_update(0.0, r, alpha=0.1, gamma=0.95) == 0.915


def test_failure_is_minus_20_whatever_the_costs() -> None:
    assert reward(success=False, cost_usd=0.0, latency_ms=0.0, reputation=100.0) == -20.0
    assert reward(success=False, cost_usd=1e6, latency_ms=1e6, reputation=0.0) == -20.0


def test_best_success_is_11() -> None:
    assert reward(success=True, cost_usd=0.0, latency_ms=0.0, reputation=100.0) == 11.0


@given(costs, latencies, reputations)
def test_success_reward_formula(cost: float, latency: float, rep: float) -> None:
    r = reward(success=True, cost_usd=cost, latency_ms=latency, reputation=rep)
    assert r == pytest.approx(-cost - latency / 500 + rep / 100 + 10, rel=1e-12, abs=1e-9)


@given(costs, costs, latencies, reputations)
def test_reward_falls_with_cost(c1: float, c2: float, latency: float, rep: float) -> None:
    lo, hi = sorted((c1, c2))
    assert reward(success=True, cost_usd=lo, latency_ms=latency, reputation=rep) >= \
        reward(success=True, cost_usd=hi, latency_ms=latency, reputation=rep)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None, True])
def test_non_finite_inputs_are_refused(bad: object) -> None:
    with pytest.raises(RouterError):
        reward(success=True, cost_usd=bad, latency_ms=1.0, reputation=1.0)  # type: ignore[arg-type]


@given(st.floats(-100, 100), st.floats(-100, 100), st.floats(0.01, 1.0), st.floats(0, 1))
def test_q_update_moves_q_alpha_of_the_way_to_the_reward(q: float, r: float, alpha: float, gamma: float) -> None:
    new = q_update(q, r, alpha=alpha, gamma=gamma)
    assert new == pytest.approx(q + alpha * (r - q), abs=1e-9)
    assert min(q, r) - 1e-9 <= new <= max(q, r) + 1e-9


def test_q_update_with_a_next_state_value_discounts_it() -> None:
    assert q_update(0.0, 1.0, alpha=1.0, gamma=0.95, next_value=10.0) == pytest.approx(10.5)


def test_q_converges_to_a_constant_reward() -> None:
    q = 0.0
    for _ in range(300):
        q = q_update(q, 9.15, alpha=0.1, gamma=0.95)
    assert q == pytest.approx(9.15, abs=1e-9)


def test_unit_reward_maps_the_range_onto_0_1() -> None:
    scale = RewardScale()
    assert unit_reward(-20.0, scale) == 0.0
    assert unit_reward(11.0, scale) == 1.0
    assert unit_reward(9.15, scale) == pytest.approx(29.15 / 31)
    assert unit_reward(-50.0, scale) == 0.0 and unit_reward(50.0, scale) == 1.0


@given(st.floats(-20, 11))
def test_from_unit_inverts_unit_reward_inside_the_range(r: float) -> None:
    assert from_unit(unit_reward(r, RewardScale()), RewardScale()) == pytest.approx(r, abs=1e-9)


def test_psi_aware_epsilon() -> None:
    assert effective_epsilon(0.1, None) == 0.1
    assert effective_epsilon(0.1, PsiReading(0.0)) == 0.1
    assert effective_epsilon(0.1, PsiReading(1.0)) == 0.05
    assert effective_epsilon(0.1, PsiReading(0.68)) == pytest.approx(0.1 * (1 - 0.5 * 0.68))


@given(st.floats(0, 1), st.floats(0, 1))
def test_psi_aware_epsilon_formula(eps: float, density: float) -> None:
    got = effective_epsilon(eps, PsiReading(density))
    assert got == pytest.approx(eps * (1 - 0.5 * density), abs=1e-15)
    assert eps / 2 - 1e-15 <= got <= eps + 1e-15


def test_exploration_scale_damping() -> None:
    assert exploration_scale(PsiReading(0.5), 0.0) == 1.0
    assert exploration_scale(PsiReading(1.0), 1.0) == 0.0


@pytest.mark.parametrize("density", [-0.1, 1.1, math.nan])
def test_psi_density_outside_0_1_is_refused(density: float) -> None:
    with pytest.raises(RouterError):
        exploration_scale(PsiReading(density), 0.5)
