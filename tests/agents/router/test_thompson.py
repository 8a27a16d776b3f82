from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from resontinex.agents.router import BetaArm, PsiReading, Thompson

from ._support import KEY, config, rng


def fresh(**overrides: object) -> Thompson:
    return Thompson.fresh(config(policy="thompson", **overrides))


def trained(**overrides: object) -> Thompson:
    """a: mostly successes, b: mixed, c: mostly failures."""
    p = fresh(**overrides)
    for pid, wins, losses in (("a", 6, 2), ("b", 4, 4), ("c", 2, 5)):
        for _ in range(wins):
            p = p.update(KEY, pid, 11.0)
        for _ in range(losses):
            p = p.update(KEY, pid, -20.0)
    return p


def test_fresh_arms_are_the_prior() -> None:
    p = fresh(thompson={"prior_alpha": 2, "prior_beta": 3})
    assert p.arm(KEY, "a") == BetaArm(2.0, 3.0, 0)
    assert p.value(KEY, "a") is None


def test_reward_maps_to_a_fractional_success() -> None:
    p = fresh().update(KEY, "a", 11.0).update(KEY, "a", -20.0).update(KEY, "a", 9.15)
    arm = p.arm(KEY, "a")
    s = 29.15 / 31
    assert (arm.alpha, arm.beta, arm.n) == pytest.approx((1 + 1 + s, 1 + 1 + (1 - s), 3))


def test_value_is_the_posterior_mean_in_reward_units() -> None:
    p = fresh().update(KEY, "a", 11.0)  # Beta(2, 1): mean 2/3
    assert p.value(KEY, "a") == pytest.approx(-20 + 31 * 2 / 3)


def test_probabilities_are_shares_of_the_draws_and_sum_to_one() -> None:
    p = trained(thompson={"draws": 500})
    probs = p.probabilities(KEY, ["a", "b", "c"], None, None, rng(1))
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
    for v in probs.values():
        assert (v * 500) == pytest.approx(round(v * 500))
    assert probs["a"] > probs["b"] > probs["c"]


def test_choice_propensity_is_its_share_of_the_same_draws() -> None:
    p = trained()
    for seed in range(50):
        c = p.choose(KEY, ["a", "b", "c"], None, None, rng(seed))
        assert c.propensity == p.probabilities(KEY, ["a", "b", "c"], None, None, rng(seed))[c.provider_id]
        assert c.propensity >= 1 / 1000


def test_propensities_match_empirical_choice_frequencies() -> None:
    ids = ["a", "b", "c"]
    reference = trained(thompson={"draws": 200_000}).probabilities(KEY, ids, None, None, rng(99))
    p = trained(thompson={"draws": 200})
    g = rng(2024)
    n = 6000
    counts = Counter(p.choose(KEY, ids, None, None, g).provider_id for _ in range(n))
    for pid in ids:
        assert counts[pid] / n == pytest.approx(reference[pid], abs=0.02)
    estimate = trained().probabilities(KEY, ids, None, None, rng(5))  # the default 1000 draws
    for pid in ids:
        assert estimate[pid] == pytest.approx(reference[pid], abs=0.05)


def test_same_generator_state_same_choice() -> None:
    p = trained()
    a = [p.choose(KEY, ["a", "b", "c"], None, None, rng(s)) for s in range(20)]
    b = [p.choose(KEY, ["c", "b", "a"], None, None, rng(s)) for s in range(20)]
    assert a == b


def test_mode_is_exploit_for_the_best_posterior_mean() -> None:
    p = trained()
    for seed in range(100):
        c = p.choose(KEY, ["a", "b", "c"], None, None, rng(seed))
        assert c.mode == ("exploit" if c.provider_id == "a" else "explore")


def test_psi_does_not_change_thompson_sampling() -> None:
    p = trained()
    assert p.probabilities(KEY, ["a", "b"], None, PsiReading(1.0), rng(3)) == \
        p.probabilities(KEY, ["a", "b"], None, None, rng(3))


def test_learns_the_best_bernoulli_provider() -> None:
    success = {"a": 0.9, "b": 0.6, "c": 0.3}
    g = np.random.default_rng(11)
    p = fresh(thompson={"draws": 50})
    picks = []
    for _ in range(2000):
        c = p.choose(KEY, list(success), None, None, g)
        p = p.update(KEY, c.provider_id, 9.0 if g.random() < success[c.provider_id] else -20.0)
        picks.append(c.provider_id)
    assert picks[-500:].count("a") > 450
