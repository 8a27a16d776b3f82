"""The contract every policy keeps (`RoutingPolicy`)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resontinex.agents.router import (
    POLICIES,
    POLICY_CLASSES,
    PsiReading,
    RouterError,
    RoutingConfig,
    RoutingPolicy,
    TabularPolicy,
    make_policy,
)

from ._support import KEY, config, features, offer, rng

OFFERS = [offer("a", price=1.0), offer("b", price=3.0, latency=250.0), offer("c", price=2.0, reputation=70.0)]
FEATS = features(*OFFERS)
IDS = ["a", "b", "c"]


def train(name: str, steps: list[tuple[str, float]], **overrides: object) -> RoutingPolicy:
    p = make_policy(config(policy=name, **overrides))
    for pid, r in steps:
        p = p.update(KEY, pid, r, FEATS[pid])
    return p


steps = st.lists(st.tuples(st.sampled_from(IDS), st.floats(-20, 11)), max_size=25)


def test_registry_holds_the_four_policies() -> None:
    assert tuple(POLICY_CLASSES) == POLICIES == ("epsilon_greedy", "ucb1", "thompson", "linucb")
    for name, cls in POLICY_CLASSES.items():
        assert issubclass(cls, TabularPolicy) and issubclass(cls, RoutingPolicy) and cls.name == name
        assert make_policy(RoutingConfig(policy=name)).name == name


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(RouterError):
        make_policy(RoutingConfig(), "softmax")  # type: ignore[arg-type]


def test_the_base_classes_are_abstract() -> None:
    with pytest.raises(TypeError):
        RoutingPolicy()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        TabularPolicy()  # type: ignore[abstract]


@pytest.mark.parametrize("name", POLICIES)
def test_update_returns_a_new_policy_and_leaves_the_old_one(name: str) -> None:
    p = make_policy(config(policy=name))
    q = p.update(KEY, "a", 9.15, FEATS["a"])
    assert p.values() == {} and p.observations(KEY, "a") == 0
    assert q.observations(KEY, "a") == 1 and q.observations(KEY, "b") == 0
    assert q.observations("other:*:*", "a") == 0
    assert set(q.values()) == {KEY}


@pytest.mark.parametrize("name", POLICIES)
def test_choice_is_a_candidate_with_its_propensity(name: str) -> None:
    p = train(name, [("a", 9.0), ("b", 5.0), ("c", -20.0), ("a", 8.0)])
    for seed in range(30):
        c = p.choose(KEY, IDS, FEATS, PsiReading(0.3), rng(seed))
        probs = p.probabilities(KEY, IDS, FEATS, PsiReading(0.3), rng(seed))
        assert c.provider_id in IDS and c.policy == name and c.mode in ("explore", "exploit")
        assert 0.0 < c.propensity <= 1.0
        assert c.propensity == pytest.approx(probs[c.provider_id])


@pytest.mark.parametrize("name", POLICIES)
def test_same_inputs_and_seed_same_choice_whatever_the_order(name: str) -> None:
    p = train(name, [("a", 9.0), ("b", 5.0), ("c", 1.0)])
    for seed in range(20):
        first = p.choose(KEY, IDS, FEATS, None, rng(seed))
        assert p.choose(KEY, list(reversed(IDS)), FEATS, None, rng(seed)) == first
        assert p.choose(KEY, IDS, FEATS, None, rng(seed)) == first


@pytest.mark.parametrize("name", POLICIES)
def test_no_candidates_is_an_error_the_caller_prevents_by_screening(name: str) -> None:
    with pytest.raises(RouterError, match="no providers"):
        make_policy(config(policy=name)).choose(KEY, [], FEATS, None, rng())


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "9.15", None])
def test_non_finite_rewards_are_refused(name: str, bad: object) -> None:
    with pytest.raises(RouterError):
        make_policy(config(policy=name)).update(KEY, "a", bad, FEATS["a"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", POLICIES)
def test_bad_ids_are_refused(name: str) -> None:
    p = make_policy(config(policy=name))
    with pytest.raises(RouterError):
        p.update(KEY, "", 1.0, FEATS["a"])
    with pytest.raises(RouterError):
        p.choose(KEY, ["a", ""], FEATS, None, rng())


@pytest.mark.parametrize("name", POLICIES)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, seed=st.integers(0, 2**32 - 1), density=st.one_of(st.none(), st.floats(0, 1)))
def test_probabilities_sum_to_one(name: str, history: list, seed: int, density: float | None) -> None:
    p = train(name, history, thompson={"draws": 200})
    psi = None if density is None else PsiReading(density)
    probs = p.probabilities(KEY, IDS, FEATS, psi, rng(seed))
    assert set(probs) == set(IDS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(0.0 <= v <= 1.0 for v in probs.values())


@pytest.mark.parametrize("name", POLICIES)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
def test_state_survives_json_and_chooses_the_same(name: str, history: list) -> None:
    p = train(name, history)
    cls = POLICY_CLASSES[name]
    back = cls.from_state_dict(json.loads(json.dumps(p.state_dict())), p.cfg)
    assert back == p
    assert back.values() == p.values()
    assert back.epsilon == p.epsilon
    for seed in range(3):
        assert back.choose(KEY, IDS, FEATS, None, rng(seed)) == p.choose(KEY, IDS, FEATS, None, rng(seed))
    nxt = ("a", 3.0)
    assert back.update(KEY, *nxt, FEATS["a"]) == p.update(KEY, *nxt, FEATS["a"])
