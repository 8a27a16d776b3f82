from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.router import EpsilonGreedy, PsiReading, QArm

from ._support import KEY, config, rng


def fresh(**overrides: object) -> EpsilonGreedy:
    return EpsilonGreedy.fresh(config(**overrides))


def test_starts_at_the_configured_epsilon_with_q_zero() -> None:
    p = fresh(epsilon=0.2, epsilon_min=0.01)
    assert p.epsilon == 0.2
    assert p.value(KEY, "akash") == 0.0 and p.observations(KEY, "akash") == 0
    assert p.values() == {}


def test_issue_example_update_and_one_decay() -> None:
    p = fresh().update(KEY, "akash", 9.15)
    assert p.value(KEY, "akash") == 0.915
    assert p.arm(KEY, "akash") == QArm(0.915, 1)
    assert p.epsilon == 0.0995


def test_update_is_q_learning_with_a_terminal_next_state() -> None:
    p = fresh(alpha=0.5, gamma=0.95).update(KEY, "a", 4.0).update(KEY, "a", 0.0)
    assert p.value(KEY, "a") == 1.0  # 0 → 2 → 2 + 0.5·(0 − 2); γ multiplies 0


@given(st.integers(0, 1500))
def test_epsilon_decays_per_feedback_with_a_floor(n: int) -> None:
    p = fresh()
    for i in range(n):
        p = p.update(KEY, f"p{i % 3}", 1.0)
    assert p.epsilon == pytest.approx(max(0.01, 0.1 * 0.995 ** n), rel=1e-9)
    assert p.epsilon >= 0.01


def test_epsilon_reaches_the_floor_and_stays() -> None:
    p = fresh()
    for _ in range(459):
        p = p.update(KEY, "a", 1.0)
    assert p.epsilon == pytest.approx(0.1 * 0.995 ** 459) and p.epsilon > 0.01
    p = p.update(KEY, "a", 1.0)  # 0.1·0.995^460 < 0.01
    assert p.epsilon == 0.01
    assert p.update(KEY, "a", 1.0).epsilon == 0.01


def test_choosing_does_not_decay_epsilon() -> None:
    p = fresh()
    for i in range(50):
        p.choose(KEY, ["a", "b"], None, None, rng(i))
    assert p.epsilon == 0.1


def test_propensities_with_a_single_greedy_provider() -> None:
    p = fresh(epsilon=0.3).update(KEY, "b", 5.0)
    probs = p.probabilities(KEY, ["a", "b", "c"], None, None, rng())
    eps = p.epsilon
    assert probs == pytest.approx({"a": eps / 3, "b": eps / 3 + 1 - eps, "c": eps / 3})


def test_ties_split_the_greedy_share() -> None:
    p = fresh(epsilon=0.3)
    probs = p.probabilities(KEY, ["a", "b", "c"], None, None, rng())
    assert probs == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    p = p.update(KEY, "a", 1.0).update(KEY, "b", 1.0)  # a and b tie at 0.1, c at 0
    eps = p.epsilon
    probs = p.probabilities(KEY, ["a", "b", "c"], None, None, rng())
    assert probs == pytest.approx({"a": eps / 3 + (1 - eps) / 2, "b": eps / 3 + (1 - eps) / 2, "c": eps / 3})


def test_psi_density_halves_exploration_at_most() -> None:
    p = fresh(epsilon=0.2).update(KEY, "a", 1.0)
    eps = p.epsilon
    probs = p.probabilities(KEY, ["a", "b"], None, PsiReading(1.0), rng())
    assert probs["b"] == pytest.approx(eps * 0.5 / 2)
    probs = p.probabilities(KEY, ["a", "b"], None, PsiReading(0.4), rng())
    assert probs["b"] == pytest.approx(eps * 0.8 / 2)


def test_choice_propensity_is_its_probability() -> None:
    p = fresh(epsilon=0.4).update(KEY, "b", 3.0)
    for seed in range(200):
        c = p.choose(KEY, ["a", "b", "c"], None, None, rng(seed))
        assert c.propensity == pytest.approx(p.probabilities(KEY, ["a", "b", "c"], None, None, rng())[c.provider_id])
        assert c.q_value == p.value(KEY, c.provider_id) and c.policy == "epsilon_greedy"


def test_empirical_frequencies_match_the_propensities() -> None:
    p = fresh(epsilon=0.3).update(KEY, "b", 3.0).update(KEY, "c", 3.0)
    ids = ["a", "b", "c", "d"]
    probs = p.probabilities(KEY, ids, None, PsiReading(0.5), rng())
    g = rng(12345)
    n = 20_000
    counts = Counter(p.choose(KEY, ids, None, PsiReading(0.5), g).provider_id for _ in range(n))
    for pid in ids:
        assert counts[pid] / n == pytest.approx(probs[pid], abs=0.012)


def test_modes_follow_the_branch() -> None:
    p = fresh(epsilon=0.25).update(KEY, "a", 5.0)
    g = rng(7)
    modes = Counter(p.choose(KEY, ["a", "b"], None, None, g).mode for _ in range(10_000))
    assert modes["explore"] / 10_000 == pytest.approx(p.epsilon, abs=0.015)
    zero = fresh(epsilon=0.0, epsilon_min=0.0).update(KEY, "a", 5.0)
    c = zero.choose(KEY, ["a", "b"], None, None, rng())
    assert (c.provider_id, c.mode, c.propensity) == ("a", "exploit", 1.0)


def test_exploit_picks_the_highest_q() -> None:
    p = fresh(epsilon=0.0, epsilon_min=0.0).update(KEY, "a", 1.0).update(KEY, "b", 9.0).update(KEY, "c", -5.0)
    assert {p.choose(KEY, ["a", "b", "c"], None, None, rng(s)).provider_id for s in range(20)} == {"b"}


def test_states_learn_independently() -> None:
    p = fresh().update("w:a100:us", "a", 9.0)
    assert p.value("w:t4:us", "a") == 0.0
    assert p.values() == {"w:a100:us": {"a": pytest.approx(0.9)}}


@settings(max_examples=60)
@given(st.dictionaries(st.sampled_from("abcdef"), st.floats(-20, 11), min_size=0, max_size=6),
       st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6, unique=True),
       st.floats(0, 1), st.one_of(st.none(), st.floats(0, 1)))
def test_propensities_sum_to_one_and_favour_the_greedy(rewards: dict[str, float], ids: list[str], eps: float,
                                                       density: float | None) -> None:
    p = fresh(epsilon=eps, epsilon_min=0.0)
    for pid, r in rewards.items():
        p = p.update(KEY, pid, r)
    psi = None if density is None else PsiReading(density)
    probs = p.probabilities(KEY, ids, None, psi, rng())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
    best = max(p.arm(KEY, pid).q for pid in ids)
    eps_eff = p.epsilon * (1 - 0.5 * (density or 0.0))
    for pid in ids:
        assert probs[pid] >= eps_eff / len(ids) - 1e-12
        if p.arm(KEY, pid).q == best:
            assert probs[pid] == max(probs.values())


def test_a_sample_average_step_makes_each_q_value_the_mean_of_its_rewards() -> None:
    from resontinex.agents.router import EpsilonGreedy, routing_config_from

    policy = EpsilonGreedy.fresh(routing_config_from({"alpha_schedule": "sample_average"}))
    for r in (10.0, -20.0, 4.0):
        policy = policy.update("s", "a", r)
    assert policy.value("s", "a") == pytest.approx((10.0 - 20.0 + 4.0) / 3)
    constant = EpsilonGreedy.fresh(routing_config_from({}))
    for r in (10.0, -20.0, 4.0):
        constant = constant.update("s", "a", r)
    assert constant.value("s", "a") == pytest.approx(((0 + 0.1 * 10) * 0.9 - 2.0) * 0.9 + 0.4)
