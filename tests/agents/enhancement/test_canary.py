"""The canary judge: Mann–Whitney per metric, weighted groups, score thresholds."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from resontinex.agents.enhancement._canary import HL_SAMPLES, CanarySettings, MetricJudge, judge_canary
from resontinex.agents.enhancement.exceptions import ConfigError, EnhancementError

LATENCY = MetricJudge("response_time_ms", "increase", 0.05, group="performance")


def normal(seed: int, mean: float, sd: float, n: int = 100) -> list[float]:
    return list(np.random.default_rng(seed).normal(mean, sd, n))


def test_identical_distributions_pass() -> None:
    metrics = [LATENCY, MetricJudge("error_rate", "increase", 0.1, group="errors", critical=True),
               MetricJudge("quality", "decrease", 0.02, group="quality")]
    enh = {"response_time_ms": normal(1, 200, 20), "error_rate": normal(2, 0.05, 0.01), "quality": normal(3, 0.8, 0.05)}
    base = {"response_time_ms": normal(4, 200, 20), "error_rate": normal(5, 0.05, 0.01),
            "quality": normal(6, 0.8, 0.05)}
    j = judge_canary(enh, base, metrics)
    assert (j.verdict, j.score) == ("pass", 100.0)
    assert [m.outcome for m in j.metrics] == ["pass"] * 3
    assert j.reason == "0 of 3 metrics failed; score 100.0 ≥ pass 95.0"
    assert all(type(m.p_value) is float and type(m.effect) is float for m in j.metrics)


def test_a_forty_percent_increase_fails_only_where_an_increase_is_harmful() -> None:
    enh, base = {"response_time_ms": normal(1, 280, 20)}, {"response_time_ms": normal(2, 200, 20)}
    j = judge_canary(enh, base, [LATENCY])
    (m,) = j.metrics
    assert (j.verdict, j.score, m.outcome, m.failed) == ("fail", 0.0, "high", True)
    assert m.p_value is not None and m.p_value < 1e-10
    assert m.effect == pytest.approx(0.4, abs=0.03)
    assert m.median_baseline == pytest.approx(200, abs=5) and m.median_enhancement == pytest.approx(280, abs=5)

    throughput = MetricJudge("response_time_ms", "decrease", 0.05, group="performance")
    j = judge_canary(enh, base, [throughput])
    (m,) = j.metrics
    assert (j.verdict, j.score, m.outcome, m.failed) == ("pass", 100.0, "high", False)


def test_a_significant_change_in_the_good_direction_is_labelled_but_passes() -> None:
    j = judge_canary({"response_time_ms": normal(1, 120, 20)}, {"response_time_ms": normal(2, 200, 20)}, [LATENCY])
    assert (j.verdict, j.metrics[0].outcome, j.metrics[0].failed) == ("pass", "low", False)
    either = MetricJudge("response_time_ms", "either", 0.05, group="performance")
    j = judge_canary({"response_time_ms": normal(1, 120, 20)}, {"response_time_ms": normal(2, 200, 20)}, [either])
    assert (j.verdict, j.metrics[0].outcome, j.metrics[0].failed) == ("fail", "low", True)


def test_an_effect_within_tolerance_passes_even_when_significant() -> None:
    enh, base = {"response_time_ms": normal(1, 101, 1, n=2000)}, {"response_time_ms": normal(2, 100, 1, n=2000)}
    (m,) = judge_canary(enh, base, [LATENCY]).metrics
    assert m.p_value is not None and m.p_value < 1e-10
    assert m.effect == pytest.approx(0.01, abs=0.002)
    assert (m.outcome, m.failed) == ("pass", False)


def test_a_failing_critical_metric_fails_the_canary_whatever_the_score() -> None:
    metrics = [MetricJudge(f"m{i}", "increase", 0.05, group="g") for i in range(9)]
    metrics.append(MetricJudge("error_rate", "increase", 0.05, group="g", critical=True))
    base = {m.name: normal(i, 10, 1) for i, m in enumerate(metrics)}
    enh = {m.name: normal(100 + i, 10, 1) for i, m in enumerate(metrics)} | {"error_rate": normal(50, 15, 1)}
    lenient = CanarySettings(pass_score=50, marginal_score=0)
    j = judge_canary(enh, base, metrics, lenient)
    assert (j.verdict, j.score) == ("fail", 90.0)
    assert j.reason.startswith("1 of 10 metrics failed: error_rate high (+")
    assert j.reason.endswith("; critical error_rate failed; score 90.0")
    non_critical = [*metrics[:9], MetricJudge("error_rate", "increase", 0.05, group="g")]
    assert judge_canary(enh, base, non_critical, lenient).verdict == "pass"


def test_groups_are_weighted_and_groups_without_data_left_out() -> None:
    metrics = [LATENCY, MetricJudge("cpu", "increase", 0.05, group="performance"),
               MetricJudge("quality", "decrease", 0.05, group="quality"),
               MetricJudge("cost", "increase", 0.05, group="cost")]
    enh = {"response_time_ms": normal(1, 300, 20), "cpu": normal(2, 50, 5), "quality": normal(3, 0.8, 0.05),
           "cost": [1.0] * 5}
    base = {"response_time_ms": normal(4, 200, 20), "cpu": normal(5, 50, 5), "quality": normal(6, 0.8, 0.05),
            "cost": [1.0] * 5}
    # performance: 1 of 2 passed (weight 3); quality: 1 of 1 (weight 1); cost: no data, not scored.
    weighted = CanarySettings(group_weights={"performance": 3, "quality": 1, "cost": 10})
    j = judge_canary(enh, base, metrics, weighted)
    assert [m.outcome for m in j.metrics] == ["high", "pass", "pass", "nodata"]
    assert j.score == pytest.approx(100 * (3 * 1 / 2 + 1 * 1 / 1) / (3 + 1))  # 62.5
    assert j.verdict == "fail"
    assert j.reason.endswith("(1 without data); score 62.5 < marginal 75.0")
    assert judge_canary(enh, base, metrics).score == pytest.approx(100 * (1 / 2 + 1) / 2)  # equal weights: 75
    assert judge_canary(enh, base, metrics).verdict == "marginal"


def test_too_few_samples_are_nodata_and_insufficient_when_all_are() -> None:
    metrics = [LATENCY, MetricJudge("quality", "decrease", 0.05, group="quality")]
    enh = {"response_time_ms": normal(1, 300, 20, n=19), "quality": normal(2, 0.8, 0.05)}
    base = {"response_time_ms": normal(3, 200, 20), "quality": [0.5, 0.6]}
    j = judge_canary(enh, base, metrics)
    assert (j.verdict, j.score) == ("insufficient", None)
    assert [(m.outcome, m.n_enhancement, m.n_baseline) for m in j.metrics] == [("nodata", 19, 100),
                                                                                 ("nodata", 100, 2)]
    assert all(m.p_value is None and m.effect is None and not m.failed for m in j.metrics)
    assert j.reason == "no metric has 20 samples in both arms (2 metrics without data)"
    assert j.as_dict()["score"] is None
    (m,) = judge_canary({}, {}, [LATENCY]).metrics  # missing from both arms
    assert (m.outcome, m.n_enhancement, m.median_enhancement) == ("nodata", 0, None)


def test_constant_samples_pass_with_p_one() -> None:
    j = judge_canary({"response_time_ms": [5.0] * 30}, {"response_time_ms": [5.0] * 30}, [LATENCY])
    (m,) = j.metrics
    assert (j.verdict, m.outcome, m.p_value, m.effect) == ("pass", "pass", 1.0, 0.0)


def test_the_effect_is_the_raw_shift_when_the_baseline_median_is_zero() -> None:
    errors = MetricJudge("errors", "increase", 0.5, group="errors")
    j = judge_canary({"errors": [2.0] * 30 + [3.0] * 30}, {"errors": [0.0] * 40 + [1.0] * 20}, [errors])
    (m,) = j.metrics
    assert (m.median_baseline, m.effect, m.outcome) == (0.0, 2.0, "high")
    assert "errors high (shift +2, p=" in j.reason


def test_the_reason_names_every_failing_metric() -> None:
    metrics = [LATENCY, MetricJudge("error_rate", "increase", 0.05, group="errors"),
               MetricJudge("quality", "decrease", 0.05, group="quality")]
    enh = {"response_time_ms": normal(1, 276, 20), "error_rate": normal(2, 0.2, 0.01), "quality": normal(3, 0.8, 0.05)}
    base = {"response_time_ms": normal(4, 200, 20), "error_rate": normal(5, 0.1, 0.01), "quality": normal(6, 0.8, 0.05)}
    j = judge_canary(enh, base, metrics)
    assert j.reason.startswith("2 of 3 metrics failed: response_time_ms high (+3")
    assert ", error_rate high (+10" in j.reason and "quality" not in j.reason
    assert j.reason.endswith("; score 33.3 < marginal 75.0")


def test_as_dict_is_json() -> None:
    j = judge_canary({"response_time_ms": normal(1, 280, 20)}, {"response_time_ms": normal(2, 200, 20)}, [LATENCY])
    d = json.loads(json.dumps(j.as_dict(), allow_nan=False))
    assert d["verdict"] == "fail" and d["metrics"][0]["outcome"] == "high" and d["metrics"][0]["failed"] is True


samples = st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=3, max_size=40)


@given(samples, samples, st.sampled_from(["increase", "decrease", "either"]))
@settings(max_examples=200, deadline=None)
def test_p_values_are_probabilities_and_everything_is_finite(enh: list[float], base: list[float],
                                                               direction: Any) -> None:
    metric = MetricJudge("m", direction, 0.05, group="g")
    j = judge_canary({"m": enh}, {"m": base}, [metric], CanarySettings(min_samples=3))
    (m,) = j.metrics
    assert m.p_value is not None and 0.0 <= m.p_value <= 1.0
    assert j.score in (0.0, 100.0) and j.verdict in ("pass", "fail")
    json.dumps(j.as_dict(), allow_nan=False)


def one_metric_alone(enh: list[float], base: list[float]) -> tuple[float, float, float, float]:
    """The judge's figures for one metric, computed on their own: p, effect, both arms' medians."""
    e, b = np.asarray(enh), np.asarray(base)
    p = float(mannwhitneyu(e, b, alternative="two-sided").pvalue)
    shift = float(np.median(np.subtract.outer(e[:HL_SAMPLES], b[:HL_SAMPLES])))
    median_base = float(np.median(b))
    return (1.0 if math.isnan(p) else p, shift / abs(median_base) if median_base else shift,
            float(np.median(e)), median_base)


values = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
# few sizes, so that metrics often share theirs (tested in one batch); 8 and below may take the exact test
arm = st.sampled_from([3, 5, 8, 9, 21, 100, 131]).flatmap(lambda n: st.lists(values, min_size=n, max_size=n))


@given(st.lists(st.tuples(arm, arm), min_size=1, max_size=4))
@settings(max_examples=150, deadline=None)
def test_each_metric_is_judged_as_it_would_be_alone(arms: list[tuple[list[float], list[float]]]) -> None:
    metrics = [MetricJudge(f"m{i}", "either", 0.05, group="g") for i in range(len(arms))]
    j = judge_canary({m.name: e for m, (e, _) in zip(metrics, arms)}, {m.name: b for m, (_, b) in zip(metrics, arms)},
                     metrics, CanarySettings(min_samples=3))
    for m, (enh, base) in zip(j.metrics, arms):
        assert (m.p_value, m.effect, m.median_enhancement, m.median_baseline) == one_metric_alone(enh, base)


def test_ties_in_one_small_metric_leave_the_exact_test_of_another() -> None:
    # scipy's "auto" takes the exact test for ≤ 8 values without ties, deciding once per call
    metrics = [MetricJudge("tied", "increase", 0.05, group="g"), MetricJudge("distinct", "increase", 0.05, group="g")]
    enh = {"tied": [1.0, 1, 2, 3, 4], "distinct": [1.0, 2, 3, 4, 5]}
    base = {"tied": [5.0, 6, 7, 8, 9], "distinct": [6.0, 7, 8, 9, 10]}
    j = judge_canary(enh, base, metrics, CanarySettings(min_samples=5))
    assert [m.p_value for m in j.metrics] == [one_metric_alone(enh[m], base[m])[0] for m in ("tied", "distinct")]
    assert j.metrics[1].p_value == pytest.approx(2 / 252)  # exact: the most extreme of C(10, 5) orderings, both tails


def test_settings_copy_their_group_weights() -> None:
    weights = {"performance": 1.0}
    s = CanarySettings(group_weights=weights)
    weights["performance"] = 5.0
    assert s.group_weights == {"performance": 1.0}


@pytest.mark.parametrize("bad", [dict(alpha=0), dict(alpha=1), dict(pass_score=70), dict(pass_score=101),
                                 dict(marginal_score=-1), dict(min_samples=2), dict(group_weights={"g": 0}),
                                 dict(group_weights={"g": float("inf")})])
def test_settings_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        CanarySettings(**bad)


@pytest.mark.parametrize("bad", [dict(name=""), dict(group=""), dict(tolerance=-0.1), dict(tolerance=float("nan")),
                                 dict(direction="up")])
def test_metric_judges_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MetricJudge(**{"name": "m", "direction": "increase", "tolerance": 0.05, "group": "g", **bad})


def test_the_metric_set_is_checked_against_the_settings_and_the_samples() -> None:
    with pytest.raises(ConfigError, match="unique"):
        judge_canary({}, {}, [LATENCY, LATENCY])
    with pytest.raises(ConfigError, match="no weight for group"):
        judge_canary({}, {}, [LATENCY], CanarySettings(group_weights={"quality": 1}))
    with pytest.raises(EnhancementError, match="response_time_ms: the baseline samples"):
        judge_canary({"response_time_ms": [1.0] * 20}, {"response_time_ms": [1.0] * 19 + [float("nan")]}, [LATENCY])
