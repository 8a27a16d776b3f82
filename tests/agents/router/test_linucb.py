from __future__ import annotations

import numpy as np
import pytest

from resontinex.agents.router import DIMENSION, LinUCB, PsiReading, RewardScale, RouterError, from_unit

from ._support import KEY, config, features, offer, rng


def fresh(**overrides: object) -> LinUCB:
    return LinUCB.fresh(config(policy="linucb", **overrides))


def x(price_feature: float) -> tuple[float, ...]:
    return (1.0, price_feature, 0.2, 0.9, 0.5)


def true_unit(pid: str, price_feature: float) -> float:
    """A linear reward per provider: a is cheap-sensitive, b is flat."""
    return 0.95 - 0.8 * price_feature if pid == "a" else 0.5 + 0.0 * price_feature


def test_fresh_arm_is_ridge_identity() -> None:
    p = fresh(linucb_ridge=2.0).update(KEY, "a", 11.0, x(0.5))
    arm = p.arm(KEY, "a")
    expected = 2.0 * np.eye(DIMENSION) + np.outer(x(0.5), x(0.5))
    assert np.allclose(np.array(arm.A), expected)
    assert np.allclose(np.array(arm.b), np.array(x(0.5)) * 1.0)
    assert (arm.n, arm.mean) == (1, 11.0)


def test_learns_a_linear_reward_and_picks_the_better_arm_per_context() -> None:
    g = np.random.default_rng(5)
    p = fresh(linucb_alpha=0.5)
    for _ in range(400):
        for pid in ("a", "b"):
            f = float(g.uniform(0, 1))
            noisy = true_unit(pid, f) + float(g.normal(0, 0.05))
            p = p.update(KEY, pid, from_unit(noisy, RewardScale()), x(f))
    # cheap for a (0.1): a is better; expensive for a (0.9): b is better
    cheap = p.choose(KEY, ["a", "b"], {"a": x(0.1), "b": x(0.1)}, None, rng())
    dear = p.choose(KEY, ["a", "b"], {"a": x(0.9), "b": x(0.9)}, None, rng())
    assert (cheap.provider_id, cheap.mode) == ("a", "exploit")
    assert (dear.provider_id, dear.mode) == ("b", "exploit")
    assert cheap.q_value == pytest.approx(from_unit(true_unit("a", 0.1), RewardScale()), abs=0.6)


def test_online_it_converges_on_the_better_provider() -> None:
    offers = [offer("cheap", price=1.0, latency=80.0, reputation=95.0), offer("dear", price=9.0, latency=400.0)]
    feats = features(*offers)
    g = np.random.default_rng(1)
    p = fresh()
    picks = []
    for _ in range(600):
        c = p.choose(KEY, ["cheap", "dear"], feats, None, g)
        ok = g.random() < (0.95 if c.provider_id == "cheap" else 0.6)
        p = p.update(KEY, c.provider_id, 9.0 if ok else -20.0, feats[c.provider_id])
        picks.append(c.provider_id)
    assert picks[-200:].count("cheap") > 180


def test_deterministic_with_propensity_one() -> None:
    p = fresh().update(KEY, "a", 5.0, x(0.3))
    feats = {"a": x(0.3), "b": x(0.6)}
    choices = {p.choose(KEY, ["a", "b"], feats, None, rng(s)) for s in range(20)}
    assert len(choices) == 1 and next(iter(choices)).propensity == 1.0
    probs = p.probabilities(KEY, ["a", "b"], feats, None, rng())
    assert sorted(probs.values()) == [0.0, 1.0]


def test_untried_providers_get_the_widest_bound() -> None:
    p = fresh()
    for _ in range(30):
        p = p.update(KEY, "a", 11.0, x(0.1))
    c = p.choose(KEY, ["a", "b"], {"a": x(0.1), "b": x(0.1)}, None, rng())
    assert (c.provider_id, c.mode, c.q_value) == ("b", "explore", None)


def test_identical_fresh_arms_tie_to_the_first_id() -> None:
    assert fresh().choose(KEY, ["z", "m"], {"z": x(0.5), "m": x(0.5)}, None, rng()).provider_id == "m"


def test_psi_damps_the_bound() -> None:
    p = fresh(linucb_alpha=3.0, psi_damping=1.0)
    for _ in range(30):
        p = p.update(KEY, "a", 11.0, x(0.1))
    p = p.update(KEY, "b", 0.0, x(0.1))
    assert p.choose(KEY, ["a", "b"], {"a": x(0.1), "b": x(0.1)}, None, rng()).provider_id == "b"
    assert p.choose(KEY, ["a", "b"], {"a": x(0.1), "b": x(0.1)}, PsiReading(1.0), rng()).provider_id == "a"


@pytest.mark.parametrize("bad", [None, (1.0, 2.0), (1.0, float("nan"), 0.0, 0.0, 0.0)])
def test_update_needs_a_valid_feature_vector(bad: object) -> None:
    with pytest.raises(RouterError):
        fresh().update(KEY, "a", 1.0, bad)  # type: ignore[arg-type]


def test_choose_needs_every_candidates_features() -> None:
    with pytest.raises(RouterError):
        fresh().choose(KEY, ["a"], None, None, rng())
    with pytest.raises(RouterError, match="'b'"):
        fresh().choose(KEY, ["a", "b"], {"a": x(0.1)}, None, rng())
