"""Off-policy evaluation: estimators against known truths, the cross-fitted reward model, replay."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.router import (
    Constraints,
    CrossFitRewards,
    LoggedRound,
    OpeInputs,
    ProviderState,
    RouterError,
    RouterState,
    WorkloadContext,
    decide,
    decision_rng,
    doubly_robust,
    effective_sample_size,
    evaluate_policy,
    feedback,
    importance_weights,
    ips,
    make_policy,
    off_policy_estimates,
    replay,
    reward,
    snips,
)

from ._support import config

# -- a synthetic contextual bandit whose values are known ---------------------------------------

N_CONTEXTS, N_ACTIONS = 4, 3
P_CONTEXT = np.array([0.4, 0.3, 0.2, 0.1])
MEANS = np.array([[6.0, 8.0, 5.0], [9.0, 4.0, 7.0], [5.0, 5.5, 9.5], [7.0, 9.0, 3.0]])
LOGGING = np.array([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.34, 0.33, 0.33]])
TARGET = np.array([[0.1, 0.8, 0.1], [0.7, 0.1, 0.2], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1]])
NOISE = 2.0


def value_of(policy: np.ndarray) -> float:
    """The true value Σ_x p(x) Σ_a π(a|x) m(x, a)."""
    return float(np.sum(P_CONTEXT[:, None] * policy * MEANS))


def dataset(seed: int, n: int = 400, target: np.ndarray = TARGET, q: str = "fitted") -> OpeInputs:
    """n rounds logged by LOGGING; q "fitted" (cross-fitted), "perfect" (the true means) or "zero"."""
    rng = np.random.default_rng(seed)
    x = rng.choice(N_CONTEXTS, size=n, p=P_CONTEXT)
    a = np.array([rng.choice(N_ACTIONS, p=LOGGING[c]) for c in x])
    r = MEANS[x, a] + rng.normal(0.0, NOISE, size=n)
    if q == "perfect":
        q_all = MEANS[x]
    elif q == "zero":
        q_all = np.zeros((n, N_ACTIONS))
    else:
        model = CrossFitRewards(x.tolist(), a.tolist(), r, folds=5, seed=seed)
        q_all = np.array([[model.predict(i, act) for act in range(N_ACTIONS)] for i in range(n)])
    return OpeInputs(r, LOGGING[x, a], target[x, a], q_all[np.arange(n), a], np.sum(target[x] * q_all, axis=1))


SEEDS = range(40)


@pytest.fixture(scope="module")
def results():
    return [off_policy_estimates(dataset(seed), resamples=1000, seed=seed) for seed in SEEDS]


def covered(est, truth: float) -> bool:
    return est.low <= truth <= est.high


def test_ips_and_dr_intervals_cover_the_true_value(results) -> None:
    truth = value_of(TARGET)
    for name in ("ips", "dr", "snips"):
        coverage = np.mean([covered(getattr(res, name), truth) for res in results])
        assert coverage >= 0.85, (name, coverage)
    observed_truth = value_of(LOGGING)
    assert np.mean([covered(res.observed, observed_truth) for res in results]) >= 0.85


def test_ips_and_dr_are_unbiased_over_many_datasets(results) -> None:
    truth = value_of(TARGET)
    for name in ("ips", "dr"):
        values = np.array([getattr(res, name).value for res in results])
        # the mean of 40 independent estimates is within 3.5 of its standard errors
        assert abs(values.mean() - truth) < 3.5 * values.std(ddof=1) / math.sqrt(len(values)), name


def test_the_estimated_standard_error_matches_the_spread_across_datasets(results) -> None:
    for name in ("ips", "dr"):
        values = np.array([getattr(res, name).value for res in results])
        se = np.mean([getattr(res, name).se for res in results])
        assert 0.6 < se / values.std(ddof=1) < 1.6, name


def test_dr_with_a_perfect_reward_model_has_lower_variance_than_ips() -> None:
    perfect = [off_policy_estimates(dataset(seed, q="perfect"), resamples=200, seed=seed) for seed in SEEDS]
    ips_values = np.array([res.ips.value for res in perfect])
    dr_values = np.array([res.dr.value for res in perfect])
    assert dr_values.var(ddof=1) < 0.5 * ips_values.var(ddof=1)
    assert all(res.dr.se < res.ips.se for res in perfect)


def test_dr_with_a_zero_reward_model_is_ips() -> None:
    res = off_policy_estimates(dataset(3, q="zero"), resamples=200)
    assert res.dr.value == pytest.approx(res.ips.value, rel=1e-12)
    assert (res.dr.low, res.dr.high) == pytest.approx((res.ips.low, res.ips.high), rel=1e-12)


def test_when_the_target_is_the_logging_policy_every_estimate_is_the_observed_value() -> None:
    data = dataset(5, target=LOGGING)
    res = off_policy_estimates(data, resamples=500)
    assert res.ips.value == pytest.approx(res.observed.value, rel=1e-12)
    assert res.snips.value == pytest.approx(res.observed.value, rel=1e-12)
    assert covered(res.dr, res.observed.value) and res.dr.value == pytest.approx(res.observed.value, abs=0.2)
    assert res.weights.ess == pytest.approx(len(data)) and res.weights.mean_weight == pytest.approx(1.0)
    assert (res.ips.low, res.ips.high) == pytest.approx((res.observed.low, res.observed.high), rel=1e-12)


def test_the_bootstrap_is_seeded() -> None:
    data = dataset(7)
    one, same, other = (off_policy_estimates(data, resamples=300, seed=s) for s in (1, 1, 2))
    assert one == same and one.ips.low != other.ips.low
    assert one.ips.low < one.ips.value < one.ips.high and one.confidence == 0.95


def test_a_wider_confidence_gives_a_wider_interval() -> None:
    data = dataset(8)
    narrow, wide = (off_policy_estimates(data, resamples=500, confidence=c) for c in (0.8, 0.99))
    for name in ("observed", "ips", "snips", "dr"):
        a, b = getattr(narrow, name), getattr(wide, name)
        assert b.low < a.low and a.high < b.high, name


# -- properties of the estimators -------------------------------------------------------------

finite = st.floats(-50.0, 50.0, allow_nan=False)


@st.composite
def logged(draw):
    n = draw(st.integers(1, 30))
    r = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    mu = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n)))
    pi = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    q = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    return r, mu, pi, q


@given(logged(), finite)
@settings(max_examples=60, deadline=None)
def test_snips_moves_with_a_reward_shift_and_ignores_a_weight_scale(data, shift) -> None:
    r, mu, pi, _ = data
    w = importance_weights(pi, mu)
    base = snips(w, r)
    if base is None:
        assert np.all(w == 0.0)
        return
    assert snips(w, r + shift) == pytest.approx(base + shift, abs=1e-9)
    assert snips(3.7 * w, r) == pytest.approx(base, abs=1e-9)
    # IPS moves by shift·mean(w) instead
    assert ips(w, r + shift) == pytest.approx(ips(w, r) + shift * float(np.mean(w)), abs=1e-9)


@given(logged(), st.floats(0.1, 10.0))
@settings(max_examples=60, deadline=None)
def test_every_estimator_scales_with_the_rewards(data, scale) -> None:
    r, mu, pi, q = data
    w = importance_weights(pi, mu)
    assert ips(w, scale * r) == pytest.approx(scale * ips(w, r), abs=1e-9)
    assert doubly_robust(w, scale * r, scale * q, scale * q) == pytest.approx(
        scale * doubly_robust(w, r, q, q), abs=1e-9)
    if snips(w, r) is not None:
        assert snips(w, scale * r) == pytest.approx(scale * snips(w, r), abs=1e-9)


@given(logged())
@settings(max_examples=60, deadline=None)
def test_effective_sample_size_lies_between_one_and_n(data) -> None:
    _, mu, pi, _ = data
    w = importance_weights(pi, mu)
    ess = effective_sample_size(w)
    if np.any(w > 0):
        assert 1.0 - 1e-9 <= ess <= len(w) + 1e-9
    else:
        assert ess == 0.0


def test_effective_sample_size_of_equal_weights_is_n() -> None:
    assert effective_sample_size(np.full(25, 0.3)) == pytest.approx(25.0)
    assert effective_sample_size(np.array([4.0, 0.0, 0.0, 0.0])) == pytest.approx(1.0)


def test_clipping_caps_the_weights_and_counts_the_clipped_rows() -> None:
    data = dataset(9)
    raw = importance_weights(data.target, data.propensity)
    free = off_policy_estimates(data, resamples=100)
    loose = off_policy_estimates(data, resamples=100, clip=float(raw.max()) + 1.0)
    tight = off_policy_estimates(data, resamples=100, clip=1.0)
    assert loose.ips == free.ips and loose.weights.clipped_rows == 0 and loose.clip == raw.max() + 1.0
    assert tight.weights.max_weight == 1.0 and tight.weights.clipped_rows == int(np.count_nonzero(raw > 1.0))
    assert tight.ips.value < free.ips.value  # every reward here is mostly positive: clipping biases down
    assert free.clip is None and free.weights.clipped_rows == 0


def test_snips_is_undefined_when_the_target_never_takes_a_logged_action() -> None:
    data = OpeInputs(np.array([1.0, 2.0]), np.array([0.5, 0.5]), np.zeros(2), np.zeros(2), np.array([3.0, 3.0]))
    res = off_policy_estimates(data, resamples=50)
    assert res.snips.value is None and res.snips.low is None and res.snips.as_dict()["ci"] is None
    assert res.ips.value == 0.0 and res.dr.value == 3.0 and res.weights.zero_weight_rows == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"confidence": 1.0}, "confidence must be between 0 and 1"),
    ({"resamples": 1}, "resamples must be an integer >= 2"),
    ({"clip": 0.0}, "clip must be a positive number"),
])
def test_bad_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(RouterError, match=message):
        off_policy_estimates(dataset(0, n=10), **kwargs)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(RouterError, match="no logged rounds"):
        off_policy_estimates(OpeInputs(*(np.zeros(0),) * 5))
    with pytest.raises(RouterError, match="propensity must be in"):
        OpeInputs(np.ones(2), np.array([0.5, 0.0]), np.ones(2), np.ones(2), np.ones(2))
    with pytest.raises(RouterError, match="target probability"):
        OpeInputs(np.ones(2), np.ones(2), np.array([0.5, 1.5]), np.ones(2), np.ones(2))
    with pytest.raises(RouterError, match="q_logged must be a 1-D array of length 2"):
        OpeInputs(np.ones(2), np.ones(2), np.ones(2), np.ones(3), np.ones(2))


# -- the cross-fitted reward model ---------------------------------------------------------------

def test_a_rows_own_reward_never_enters_its_prediction() -> None:
    rng = np.random.default_rng(0)
    states = rng.integers(0, 3, 60).tolist()
    actions = rng.integers(0, 2, 60).tolist()
    rewards = rng.normal(size=60)
    model = CrossFitRewards(states, actions, rewards, folds=4, seed=1)
    for i in (0, 17, 59):
        changed = rewards.copy()
        changed[i] += 1000.0
        other = CrossFitRewards(states, actions, changed, folds=4, seed=1)
        same_fold = np.flatnonzero(model.fold == model.fold[i])
        for j in same_fold:
            assert [other.predict(int(j), a) for a in (0, 1, 9)] == [model.predict(int(j), a) for a in (0, 1, 9)]
        assert any(other.predict(int(j), actions[i]) != model.predict(int(j), actions[i])
                   for j in np.flatnonzero(model.fold != model.fold[i]))


def test_the_reward_model_converges_to_the_cell_means() -> None:
    data_x = np.repeat([0, 1], 400)
    data_a = np.tile([0, 1], 400)
    r = np.where(data_a == 0, 2.0, -5.0) + 10.0 * data_x
    model = CrossFitRewards(data_x.tolist(), data_a.tolist(), r, folds=5)
    assert model.folds == 5 and np.bincount(model.fold).tolist() == [160] * 5
    # each cell has 160 training rows; the shrinkage towards the parent means weighs one
    assert model.predict(0, 0) == pytest.approx(2.0, abs=0.05) and model.predict(0, 1) == pytest.approx(-5.0, abs=0.1)
    assert model.predict(799, 0) == pytest.approx(12.0, abs=0.05) and model.predict(799, 1) == pytest.approx(5.0, abs=0.05)


def test_the_reward_model_with_few_rows() -> None:
    assert CrossFitRewards(["s"], ["a"], [5.0]).predict(0, "a") == 0.0  # no other row: nothing known
    two = CrossFitRewards(["s", "s"], ["a", "b"], [4.0, 8.0], folds=5)
    assert two.folds == 2
    assert two.predict(0, "a") == 8.0 and two.predict(0, "b") == 8.0 and two.predict(1, "a") == 4.0
    with pytest.raises(RouterError, match="folds must be an integer >= 2"):
        CrossFitRewards(["s"], ["a"], [1.0], folds=1)


# -- replaying router policies -------------------------------------------------------------------

OFFERS = (ProviderState("akash", 2.5, 120, 95, 100, ("a100",), ("us-west",)),
          ProviderState("lambda", 4.0, 90, 98, 100, ("a100",), ("us-west",)),
          ProviderState("vast", 1.5, 200, 85, 100, ("a100",), ("us-west",)))
SUCCESS = {"akash": 0.9, "lambda": 0.97, "vast": 0.6}
CONTEXTS = (WorkloadContext("llm_inference", "a100", "us-west", 2.0),
            WorkloadContext("training", "a100", "us-west", 8.0))


def expected_reward(provider: ProviderState, ctx: WorkloadContext) -> float:
    p = SUCCESS[provider.provider_id]
    good = reward(success=True, cost_usd=provider.price_usd_per_hour * ctx.gpu_hours,
                  latency_ms=provider.latency_ms, reputation=provider.reputation)
    return p * good + (1 - p) * reward(success=False, cost_usd=0, latency_ms=0, reputation=0)


def simulate(policy: str, n: int, seed: int = 0, tenants: tuple[str, ...] = ("acme", "globex"),
             **cfg) -> list[LoggedRound]:
    """Rounds logged by `policy` learning online, each outcome applied before the next decision."""
    rng = np.random.default_rng(seed)
    states = {t: RouterState.fresh(config(policy=policy, **cfg)) for t in tenants}
    out = []
    for i in range(n):
        tenant, ctx = tenants[i % len(tenants)], CONTEXTS[int(rng.integers(2))]
        state = states[tenant]
        state, route = decide(state, context=ctx, providers=OFFERS, constraints=None, psi=None,
                              rng=decision_rng(state.cfg.seed, tenant, f"r-{i}"))
        chosen = route.summary()
        offer = next(p for p in OFFERS if p.provider_id == chosen["provider_id"])
        ok = bool(rng.random() < SUCCESS[offer.provider_id])
        cost = offer.price_usd_per_hour * ctx.gpu_hours
        state, fb = feedback(state, route.pending(f"d-{i}", 0.0), success=ok, cost_usd=cost,
                             latency_ms=offer.latency_ms, reputation=offer.reputation)
        states[tenant] = state
        out.append(LoggedRound(f"d-{i}", tenant, f"r-{i}", ctx, OFFERS, None, None, offer.provider_id,
                               chosen["propensity"], fb.reward, policy))
    return out


@pytest.mark.parametrize("policy", ["epsilon_greedy", "thompson", "ucb1", "linucb"])
def test_replaying_the_logging_policy_reproduces_its_propensities(policy) -> None:
    rounds = simulate(policy, 120, thompson={"draws": 200})
    replayed = replay(make_policy(config(policy=policy, thompson={"draws": 200})), rounds)
    assert replayed.target.tolist() == pytest.approx([r.propensity for r in rounds], abs=1e-12)
    assert replayed.defers == 0 and replayed.learned
    ev = evaluate_policy(make_policy(config(policy=policy, thompson={"draws": 200})), rounds, resamples=200)
    assert ev.result.ips.value == pytest.approx(ev.result.observed.value, abs=1e-9)
    assert ev.result.snips.value == pytest.approx(ev.result.observed.value, abs=1e-9)
    assert ev.logging_policies == {policy: 120} and ev.rows == 120


def test_probabilities_come_before_the_update_and_each_tenant_learns_alone() -> None:
    rounds = simulate("epsilon_greedy", 40)
    fresh = make_policy(config())
    learned = replay(fresh, rounds)
    frozen = replay(fresh, rounds, learn=False)
    uniform = {p.provider_id: pytest.approx(1 / 3) for p in OFFERS}
    assert all(dict(d) == uniform for d in frozen.distributions) and not frozen.learned
    first_of_each_tenant = [learned.distributions[0], learned.distributions[1]]
    assert all(dict(d) == uniform for d in first_of_each_tenant)
    # acme's next decision in the same state: it learned from the first
    again = next(i for i, r in enumerate(rounds) if i > 0 and r.tenant == "acme" and r.state_key == rounds[0].state_key)
    assert dict(learned.distributions[again]) != uniform
    # one tenant's log replayed alone gives that tenant the same probabilities
    acme = [r for r in rounds if r.tenant == "acme"]
    alone = replay(fresh, acme)
    assert alone.target.tolist() == learned.target[[i for i, r in enumerate(rounds) if r.tenant == "acme"]].tolist()


def test_a_frozen_candidate_is_estimated_near_its_true_value() -> None:
    """A fresh ε-greedy candidate that does not learn routes uniformly: its value is known."""
    rounds = simulate("epsilon_greedy", 3000, seed=4)
    truth = float(np.mean([np.mean([expected_reward(p, r.context) for p in OFFERS]) for r in rounds]))
    ev = evaluate_policy(make_policy(config()), rounds, learn=False, resamples=500)
    for name in ("ips", "snips", "dr"):
        est = getattr(ev.result, name)
        assert abs(est.value - truth) < 4 * est.se, (name, est, truth)
    assert ev.result.dr.se < ev.result.ips.se  # the reward model helps here
    assert not ev.learned and ev.as_dict()["candidate"]["learning"] == "frozen"


def test_a_deterministic_candidate_takes_weight_only_where_it_agrees() -> None:
    rounds = simulate("epsilon_greedy", 200, seed=2)
    replayed = replay(make_policy(config(policy="ucb1")), rounds)
    assert set(np.unique(replayed.target)) <= {0.0, 1.0}
    assert all(sum(d.values()) == pytest.approx(1.0) for d in replayed.distributions)


def test_a_candidate_with_no_feasible_provider_defers_with_probability_zero() -> None:
    limits = Constraints(max_price=1.0)
    rounds = [replace(r, constraints=limits) for r in simulate("epsilon_greedy", 30)]
    strict = replay(make_policy(config(mode="strict")), rounds)
    assert strict.defers == 30 and strict.target.tolist() == [0.0] * 30
    assert all(not d for d in strict.distributions)
    lenient = replay(make_policy(config(mode="lenient")), rounds)
    assert lenient.defers == 0 and np.all(lenient.target > 0)
    ev = evaluate_policy(make_policy(config(mode="strict")), rounds, resamples=50)
    assert ev.defers == 30 and ev.result.ips.value == 0.0 and ev.result.dr.value == 0.0
    assert ev.result.snips.value is None


def test_a_logged_round_is_checked() -> None:
    base = simulate("epsilon_greedy", 1)[0]
    with pytest.raises(RouterError, match="propensity must be in"):
        replace(base, propensity=0.0)
    with pytest.raises(RouterError, match="not among the offered providers"):
        replace(base, provider_id="nobody")
    with pytest.raises(RouterError, match="reward must be a finite number"):
        replace(base, reward=math.inf)
    with pytest.raises(RouterError, match="no logged rounds"):
        evaluate_policy(make_policy(config()), [])


def test_evaluation_as_a_dict() -> None:
    ev = evaluate_policy(make_policy(config(policy="thompson")), simulate("epsilon_greedy", 50), resamples=100,
                         folds=3, clip=20.0, confidence=0.9, seed=3)
    doc = ev.as_dict()
    assert doc["candidate"] == {"policy": "thompson", "learning": "replay", "defers": 0}
    assert doc["rows"] == 50 and doc["logging_policies"] == {"epsilon_greedy": 50}
    assert set(doc["estimates"]) == {"ips", "snips", "dr"} and doc["clip"] == 20.0
    assert doc["ci"] == {"method": "bootstrap percentile", "confidence": 0.9, "resamples": 100, "seed": 3}
    assert doc["reward_model"]["folds"] == 3 and doc["weights"]["n"] == 50
    low, high = doc["estimates"]["dr"]["ci"]
    assert low <= doc["estimates"]["dr"]["value"] <= high
