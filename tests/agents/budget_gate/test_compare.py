"""The comparison: thresholds (at or above), averaging, nearest-rank P95, noise, statistics."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.budget_gate import InvalidThresholds, ReportError, Thresholds, compare, nearest_rank
from resontinex.agents.budget_gate._compare import DRAWS, EXACT_MAX, MIN_SAMPLES, _mean_draws, _p95_draws

from . import run

FLAT = [100.0] * 5  # latency samples well under every latency threshold
NO_STATS = Thresholds(statistics=False)


def _tokens(baseline: list[float], current: list[float], thresholds: Thresholds = Thresholds()):
    return compare(run("b.json", ("s", baseline, FLAT)), run("c.json", ("s", current, FLAT)), thresholds).tokens


@pytest.mark.parametrize("thresholds", [Thresholds(), NO_STATS])
@pytest.mark.parametrize(("current", "status"), [
    (1119, "pass"), (1120, "warn"), (1121, "warn"), (1249, "warn"), (1250, "block"), (1251, "block"),
])
def test_token_thresholds_are_reached_at_12_and_25_percent(thresholds, current, status):
    """A delta at or above a threshold takes its status (constant samples: no noise at all)."""
    verdict = _tokens([1000] * 5, [current] * 5, thresholds)
    assert verdict.status == status
    assert verdict.delta_pct == (current - 1000) / 10


@pytest.mark.parametrize(("p95", "status"), [(1999.0, "pass"), (2000.0, "warn"), (4999.5, "warn"),
                                             (5000.0, "block"), (7000.0, "block")])
def test_latency_thresholds_are_reached_at_2000_and_5000_ms(p95, status):
    result = compare(run("b", ("s", [10] * 3, [100.0] * 20)), run("c", ("s", [10] * 3, [100.0] * 18 + [p95] * 2)))
    assert result.latency.p95_ms == p95 and result.latency.baseline_p95_ms == 100.0
    assert result.latency.status == status == result.budget_status


def test_the_token_delta_is_the_mean_over_scenarios_present_in_both():
    baseline = run("b", ("a", [100, 200], FLAT), ("b", [1000], FLAT), ("gone", [5], FLAT))
    current = run("c", ("b", [1100, 1300], FLAT), ("a", [165], FLAT), ("new", [1], FLAT))
    result = compare(baseline, current, NO_STATS)
    # a: 150 → 165 = +10 %; b: 1000 → 1200 = +20 %; mean +15 %
    assert [(r.name, r.delta_pct) for r in result.scenarios] == [("b", 20.0), ("a", 10.0)]
    assert result.tokens.delta_pct == pytest.approx(15.0) and result.tokens.status == "warn"
    assert result.only_in_baseline == ("gone",) and result.only_in_current == ("new",)


def test_nearest_rank_p95_by_hand():
    samples = np.array([840, 910, 1990, 700, 650, 1200, 880, 905, 3000, 760, 990, 1010,
                        1005, 870, 860, 850, 845, 830, 820, 2500, 810, 800], dtype=float)
    # n = 22, rank ⌈0.95 × 22⌉ = ⌈20.9⌉ = 21: the second largest of the 22 samples
    assert nearest_rank(samples) == 2500.0
    assert nearest_rank(np.array([5.0])) == 5.0
    assert nearest_rank(np.arange(1.0, 41.0)) == 38.0  # ⌈38.0⌉ = 38, exact with integers


def test_latency_p95_pools_every_current_sample_including_unmatched_scenarios():
    baseline = run("b", ("a", [1], [10.0] * 9 + [20.0]))
    current = run("c", ("a", [1], [10.0] * 9), ("new", [1], [9000.0]))  # n = 10: rank ⌈9.5⌉ = 10
    latency = compare(baseline, current).latency
    assert latency.p95_ms == 9000.0 and latency.baseline_p95_ms == 20.0 and latency.status == "block"


def test_a_regression_within_the_noise_is_downgraded_to_warn():
    verdict = _tokens([400, 1600, 700, 1300, 1000, 500, 1500, 1000], [600, 2200, 900, 1700, 1300, 700, 1900, 1100])
    assert verdict.delta_pct == 30.0
    assert verdict.status == "warn" and verdict.significant is False
    assert verdict.ci_pct is not None and verdict.ci_pct[0] <= 0 < verdict.ci_pct[1]
    assert verdict.note.startswith("within noise: the 95 % interval")


def test_a_clear_regression_with_many_samples_is_blocked():
    rng = np.random.default_rng(7)
    verdict = _tokens(list(rng.normal(1000, 50, 50)), list(rng.normal(1300, 50, 50)))
    assert verdict.status == "block" and verdict.significant is True and verdict.note == ""
    assert 25 < verdict.ci_pct[0] < verdict.delta_pct < verdict.ci_pct[1] < 40


def test_without_statistics_the_noisy_regression_blocks():
    verdict = _tokens([400, 1600, 700, 1300, 1000], [600, 2200, 900, 1700, 1100], NO_STATS)
    assert verdict.status == "block" and verdict.ci_pct is None and verdict.significant is None
    assert verdict.note == "statistics off: threshold only"


def test_scenarios_with_too_few_samples_are_judged_on_the_threshold_alone():
    few = [1000] * (MIN_SAMPLES - 1)
    verdict = _tokens(few, [2000] * MIN_SAMPLES)
    assert verdict.status == "block" and verdict.significant is None
    assert "threshold only" in verdict.note
    result = compare(run("b", ("tiny", few, FLAT), ("big", [1000, 1010, 990, 1000], FLAT)),
                     run("c", ("tiny", [3000], FLAT), ("big", [1000, 1010, 990, 1000], FLAT)))
    tiny, big = result.scenarios
    assert tiny.ci_pct is None and tiny.note == f"fewer than {MIN_SAMPLES} samples per side: threshold only"
    assert big.ci_pct is not None and big.note == ""
    # tiny enters every resample at +200 %: the mean (+100 %) is significant and blocks
    assert result.tokens.status == "block" and result.tokens.significant is True
    assert "not resampled (fewer than 3 samples per side): tiny" in result.tokens.note


def test_latency_significance_is_reported_not_used_for_the_verdict():
    rng = np.random.default_rng(3)
    slow = compare(run("b", ("s", [1] * 3, rng.normal(800, 50, 60))), run("c", ("s", [1] * 3, rng.normal(2600, 50, 60))))
    assert slow.latency.status == "warn" and slow.latency.significant is True
    assert slow.latency.increase_ci_ms[0] > 1500
    same = compare(run("b", ("s", [1] * 3, [6000.0] * 5)), run("c", ("s", [1] * 3, [6000.0] * 5)))
    assert same.latency.status == "block" and same.latency.significant is False
    tiny = compare(run("b", ("s", [1] * 3, [10.0, 20.0])), run("c", ("s", [1] * 3, [10.0, 30.0, 40.0])))
    assert tiny.latency.significant is None and "not tested" in tiny.latency.note


def test_a_baseline_mean_of_zero_tokens_is_bad_input_naming_the_field():
    with pytest.raises(ReportError, match=r"^b\.json: scenarios\[1\]\.tokens: mean is 0"):
        compare(run("b.json", ("a", [5], FLAT), ("zero", [0, 0], FLAT)), run("c.json", ("a", [5], FLAT), ("zero", [9], FLAT)))


def test_a_resampled_baseline_mean_of_zero_counts_as_infinite_growth():
    verdict = compare(run("b", ("s", [0, 0, 0, 0, 1], FLAT)), run("c", ("s", [1, 1, 1, 1, 1], FLAT))).scenarios[0]
    assert verdict.delta_pct == 400.0 and verdict.ci_pct[1] == math.inf and verdict.significant is True


def test_runs_without_a_common_scenario_are_bad_input():
    with pytest.raises(ReportError, match=r"^c\.json: scenarios: no scenario in common with b\.json"):
        compare(run("b.json", ("a", [1], FLAT)), run("c.json", ("b", [1], FLAT)))


@pytest.mark.parametrize("kwargs", [
    {"token_warn_pct": 30.0}, {"latency_warn_ms": 6000.0}, {"alpha": 0.0}, {"alpha": 1.0},
    {"token_block_pct": math.nan}, {"latency_block_ms": math.inf},
])
def test_contradictory_thresholds_are_refused(kwargs):
    with pytest.raises(InvalidThresholds):
        Thresholds(**kwargs)


def test_alpha_sets_the_interval_level():
    wide, narrow = (_tokens([900, 1000, 1100, 1050, 950], [1000, 1100, 1200, 1150, 1050], Thresholds(alpha=a))
                    for a in (0.01, 0.5))
    assert wide.ci_pct[0] < narrow.ci_pct[0] < narrow.ci_pct[1] < wide.ci_pct[1]
    assert Thresholds(alpha=0.01).confidence == "99 %"


def test_resampled_p95s_follow_the_order_statistic_of_real_resamples():
    rng = np.random.default_rng(11)
    values = rng.integers(0, 50, 20).astype(float)
    exact = _p95_draws(np.random.default_rng(1), values)
    brute = np.array([nearest_rank(rng.choice(values, values.size)) for _ in range(DRAWS)])
    for v in np.unique(values):
        assert abs(np.mean(exact == v) - np.mean(brute == v)) < 0.05


def test_large_samples_resample_means_from_their_normal_limit():
    values = np.random.default_rng(5).exponential(100.0, EXACT_MAX + 1)
    draws = _mean_draws(np.random.default_rng(1), values)
    assert draws.size == DRAWS
    assert draws.mean() == pytest.approx(values.mean(), rel=0.01)
    assert draws.std() == pytest.approx(values.std() / math.sqrt(values.size), rel=0.1)


def test_the_result_is_deterministic():
    args = (run("b", ("s", [400, 1600, 700, 1300], [1, 2, 3])), run("c", ("s", [600, 2200, 900, 1700], [4, 5, 6])))
    assert compare(*args) == compare(*args)


# -- properties -------------------------------------------------------------------------

samples = st.lists(st.integers(1, 5000), min_size=1, max_size=12)
scenario_sets = st.dictionaries(st.sampled_from("abcdef"), st.tuples(samples, samples), min_size=1, max_size=4)


def _run(source, scenarios):
    return run(source, *((name, tokens, latency) for name, (tokens, latency) in scenarios.items()))


@settings(max_examples=60, deadline=None)
@given(scenario_sets, scenario_sets, st.booleans())
def test_the_gate_follows_the_contract(base, cur, statistics):
    common = [name for name in cur if name in base]
    if not common:
        return
    result = compare(_run("b", base), _run("c", cur), Thresholds(statistics=statistics))
    exact = sum((Fraction(sum(cur[n][0]), len(cur[n][0])) / Fraction(sum(base[n][0]), len(base[n][0])) - 1) * 100
                for n in common) / len(common)
    assert result.tokens.delta_pct == pytest.approx(float(exact), rel=1e-9, abs=1e-9)
    assert [r.name for r in result.scenarios] == common
    assert set(result.only_in_baseline) == base.keys() - cur.keys()
    assert set(result.only_in_current) == cur.keys() - base.keys()
    expected = "block" if result.tokens.delta_pct >= 25 else "warn" if result.tokens.delta_pct >= 12 else "pass"
    if result.tokens.status != expected:  # only ever a block downgraded for noise
        assert (expected, result.tokens.status, result.tokens.significant) == ("block", "warn", False)
    assert result.tokens.status != "block" or result.tokens.significant is not False
    assert result.latency.p95_ms == nearest_rank(np.concatenate([np.array(t[1]) for t in cur.values()]))
    assert result.budget_status == max(result.tokens.status, result.latency.status, key=["pass", "warn", "block"].index)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=200))
def test_nearest_rank_is_the_smallest_sample_with_95_percent_at_or_below_it(values):
    p95 = nearest_rank(np.array(values))
    assert p95 in values
    assert sum(v <= p95 for v in values) * 100 >= 95 * len(values)
    assert sum(v < p95 for v in values) * 100 < 95 * len(values)


@settings(max_examples=40, deadline=None)
@given(scenario_sets)
def test_a_run_against_itself_passes_on_tokens(scenarios):
    result = compare(_run("b", scenarios), _run("c", scenarios))
    assert result.tokens.delta_pct == 0 and result.tokens.status == "pass" and result.tokens.significant is not True
    assert result.latency.p95_ms == result.latency.baseline_p95_ms
