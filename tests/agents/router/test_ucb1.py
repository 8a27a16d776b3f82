from __future__ import annotations

import math

import numpy as np
import pytest

from resontinex.agents.router import UCB1, PsiReading, RewardScale, unit_reward

from ._support import KEY, config, rng


def fresh(**overrides: object) -> UCB1:
    return UCB1.fresh(config(policy="ucb1", **overrides))


def test_every_arm_is_tried_once_first_in_id_order() -> None:
    p = fresh()
    ids = ["delta", "alpha", "charlie", "bravo"]
    tried = []
    for _ in ids:
        c = p.choose(KEY, ids, None, None, rng())
        assert c.mode == "explore" and c.propensity == 1.0 and c.q_value is None
        tried.append(c.provider_id)
        p = p.update(KEY, c.provider_id, 11.0 if c.provider_id == "alpha" else -20.0)
    assert tried == sorted(ids)


def test_a_new_arm_is_tried_even_after_long_training() -> None:
    p = fresh()
    for _ in range(50):
        p = p.update(KEY, "a", 11.0)
    assert p.choose(KEY, ["a", "z"], None, None, rng()).provider_id == "z"


def test_index_is_mean_unit_reward_plus_the_bonus() -> None:
    p = fresh(ucb_c=1.0).update(KEY, "a", 11.0).update(KEY, "a", 11.0).update(KEY, "a", 11.0).update(KEY, "b", 2.0)
    # a: mean 1, n 3; b: mean u, n 1; N = 4
    u = unit_reward(2.0, RewardScale())
    index_a = 1.0 + math.sqrt(math.log(4) / 3)
    index_b = u + math.sqrt(math.log(4) / 1)
    expected = "a" if index_a > index_b else "b"
    c = p.choose(KEY, ["a", "b"], None, None, rng())
    assert c.provider_id == expected
    assert c.mode == ("exploit" if expected == "a" else "explore")


def test_the_bonus_decides_when_it_outweighs_the_mean() -> None:
    p = fresh(ucb_c=1.414)
    for _ in range(100):
        p = p.update(KEY, "a", 9.0)
    p = p.update(KEY, "b", 8.0)
    c = p.choose(KEY, ["a", "b"], None, None, rng())
    assert (c.provider_id, c.mode, c.q_value) == ("b", "explore", 8.0)


def test_deterministic_propensity_and_probabilities() -> None:
    p = fresh().update(KEY, "a", 5.0).update(KEY, "b", 1.0)
    choices = {p.choose(KEY, ["a", "b"], None, None, rng(s)) for s in range(30)}
    assert len(choices) == 1
    (c,) = choices
    assert c.propensity == 1.0
    assert p.probabilities(KEY, ["b", "a"], None, None, rng()) == {c.provider_id: 1.0,
                                                                  ({"a", "b"} - {c.provider_id}).pop(): 0.0}


def test_ties_go_to_the_first_provider_id() -> None:
    p = fresh().update(KEY, "b", 5.0).update(KEY, "a", 5.0)
    assert p.choose(KEY, ["b", "a"], None, None, rng()).provider_id == "a"


def test_psi_damps_the_bonus() -> None:
    p = fresh(ucb_c=1.414, psi_damping=1.0)
    for _ in range(100):
        p = p.update(KEY, "a", 9.0)
    p = p.update(KEY, "b", 8.0)
    assert p.choose(KEY, ["a", "b"], None, None, rng()).provider_id == "b"
    c = p.choose(KEY, ["a", "b"], None, PsiReading(1.0), rng())  # c·(1 − 1·1) = 0: greedy on the mean
    assert (c.provider_id, c.mode) == ("a", "exploit")


def test_mean_and_unit_mean_are_running_means() -> None:
    p = fresh().update(KEY, "a", 9.0).update(KEY, "a", -20.0).update(KEY, "a", 11.0)
    arm = p.arm(KEY, "a")
    assert arm.n == 3 and arm.mean == pytest.approx(0.0)
    assert arm.unit == pytest.approx((29 / 31 + 0 + 1) / 3)


def test_converges_on_the_best_bernoulli_provider() -> None:
    success = {"a": 0.9, "b": 0.6, "c": 0.3}
    g = np.random.default_rng(3)
    p = fresh()
    picks = []
    for _ in range(3000):
        c = p.choose(KEY, list(success), None, None, g)
        ok = g.random() < success[c.provider_id]
        p = p.update(KEY, c.provider_id, 9.0 if ok else -20.0)
        picks.append(c.provider_id)
    assert picks[-1000:].count("a") > 800
