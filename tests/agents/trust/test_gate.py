from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trust import (
    DECISIONS,
    TIERS,
    InputVector,
    TrustConfig,
    TrustResult,
    config_from_mapping,
    default_config,
    evaluate,
    evaluate_values,
)

from ._support import alignment_only, any_config, unit


def test_contract_example() -> None:
    result = evaluate(InputVector(0.8, 0.3, 0.2), default_config())
    assert math.isclose(result.z, 1.197646, abs_tol=5e-7)
    assert result.score == 0.7681
    assert math.isclose(result.raw_score, 1 / (1 + math.exp(-result.z)), rel_tol=1e-15)
    assert (result.tier, result.tier_decision, result.decision) == ("pass", "execute", "execute")
    assert not result.floor_violation and not result.entropy_flag


def test_contributions_are_the_weighted_logits() -> None:
    result = evaluate(InputVector(0.8, 0.3, 0.2), default_config())
    ta, tr, tc = result.contributions
    assert math.isclose(ta, 0.45 * math.log(0.8 / 0.2), rel_tol=1e-14)
    assert math.isclose(tr, 0.35 * math.log(0.7 / 0.3), rel_tol=1e-14)
    assert math.isclose(tc, 0.20 * math.log(0.8 / 0.2), rel_tol=1e-14)
    assert result.z == ta + tr + tc


def test_result_is_frozen_and_equal_to_a_normally_built_one() -> None:
    result = evaluate_values(0.8, 0.3, 0.2, default_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 1.0  # type: ignore[misc]
    assert result == TrustResult(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})
    assert not hasattr(result, "__dict__")


def test_as_dict_is_the_wire_trust_object() -> None:
    result = evaluate_values(0.8, 0.3, 0.2, default_config())
    assert result.as_dict(0.7) == {
        "score": 0.7681, "raw_score": result.raw_score, "tier": "pass", "decision": "execute",
        "floor_violation": False, "entropy_flag": False, "calibrated_score": 0.7,
    }
    assert result.as_dict()["calibrated_score"] is None


def test_inputs_are_clamped() -> None:
    config = default_config()
    assert evaluate_values(0.0, 1.0, 1.0, config) == evaluate_values(1e-6, 1 - 1e-6, 1 - 1e-6, config)
    assert evaluate_values(1.0, 0.0, 0.0, config) == evaluate_values(1 - 1e-6, 1e-6, 1e-6, config)
    low = evaluate_values(0.0, 1.0, 1.0, config)
    assert 0.0 < low.raw_score < 1e-5 and low.score == 0.0 and low.decision == "abort"
    high = evaluate_values(1.0, 0.0, 0.0, config)
    assert 1 - 1e-5 < high.raw_score < 1.0 and high.score == 1.0 and high.decision == "execute"


@given(unit, unit, unit, any_config)
def test_bounds(a: float, r: float, c: float, config: TrustConfig) -> None:
    result = evaluate_values(a, r, c, config)
    assert 0.0 < result.raw_score < 1.0
    assert 0.0 <= result.score <= 1.0
    assert result.score == round(result.raw_score, 4)
    assert result.tier in TIERS and result.decision in DECISIONS


@given(unit, unit, unit, any_config)
def test_deterministic(a: float, r: float, c: float, config: TrustConfig) -> None:
    assert evaluate_values(a, r, c, config) == evaluate_values(a, r, c, config)
    assert evaluate(InputVector(a, r, c), config) == evaluate_values(a, r, c, config)


@given(unit, unit, unit, unit, any_config)
def test_monotonic_in_each_signal(x: float, y: float, r: float, c: float, config: TrustConfig) -> None:
    lo, hi = min(x, y), max(x, y)
    assert evaluate_values(lo, r, c, config).raw_score <= evaluate_values(hi, r, c, config).raw_score
    assert evaluate_values(r, lo, c, config).raw_score >= evaluate_values(r, hi, c, config).raw_score
    assert evaluate_values(r, c, lo, config).raw_score >= evaluate_values(r, c, hi, config).raw_score


@given(unit, unit, unit, st.lists(st.integers(0, 1000), min_size=3, max_size=3).filter(any), st.integers(1, 10**6))
def test_scaled_weights_give_identical_results(a: float, r: float, c: float, weights: list[int], k: int) -> None:
    mapping = default_config().as_dict()
    names = list(mapping["weights"])
    mapping["weights"] = dict(zip(names, weights))
    one = config_from_mapping(mapping)
    mapping["weights"] = dict(zip(names, (w * k for w in weights)))
    assert evaluate_values(a, r, c, one) == evaluate_values(a, r, c, config_from_mapping(mapping))


def _score_for(target: float, config: TrustConfig) -> TrustResult:
    # With weights 1/0/0, sigmoid(logit(a)) is a within an ulp or two: rounds to a.
    result = evaluate_values(target, 0.5, 0.5, config)
    assert result.score == target
    return result


@pytest.mark.parametrize(
    ("score", "tier"),
    [(0.0, "block"), (0.2499, "block"), (0.25, "block"), (0.2501, "review"), (0.5, "review"),
     (0.5001, "monitor"), (0.75, "monitor"), (0.7501, "pass"), (1.0, "pass")],
)
def test_tier_boundaries(score: float, tier: str) -> None:
    result = _score_for(score, alignment_only(trust_floor=0.0))
    assert result.tier == tier
    assert result.tier_decision == {"block": "abort", "review": "review", "monitor": "execute", "pass": "execute"}[tier]


def test_exactly_one_half_is_review_under_default_weights() -> None:
    result = evaluate_values(0.5, 0.5, 0.5, default_config())
    assert (result.raw_score, result.score, result.tier, result.decision) == (0.5, 0.5, "review", "review")


@pytest.mark.parametrize("target", [0.25, 0.75])
def test_boundaries_under_default_weights(target: float) -> None:
    # With r = c = 0.5 only alignment counts: z = 0.45 logit(a).
    a = 1 / (1 + math.exp(-math.log(target / (1 - target)) / 0.45))
    result = evaluate_values(a, 0.5, 0.5, default_config())
    assert result.score == target
    assert result.tier == ("block" if target == 0.25 else "monitor")


def test_tiers_follow_sorted_thresholds() -> None:
    mapping = default_config().as_dict()
    mapping["risk_tiers"] = {"review": 0.2, "block": 0.4, "monitor": 0.75, "pass": 1.01}
    config = config_from_mapping(mapping | {"weights": {"alignment_score": 1, "epistemic_risk": 0, "confidence_band": 0}})
    assert _score_for(0.2, config).tier == "review"
    assert _score_for(0.3, config).decision == "abort"


def test_floor_violation_turns_execute_into_review() -> None:
    config = alignment_only()
    at_floor = _score_for(0.6, config)
    assert (at_floor.tier, at_floor.floor_violation, at_floor.decision) == ("monitor", False, "execute")
    below = _score_for(0.5999, config)
    assert (below.tier, below.floor_violation, below.tier_decision, below.decision) == (
        "monitor", True, "execute", "review")


def test_floor_does_not_soften_abort_or_change_review() -> None:
    config = alignment_only()
    assert _score_for(0.1, config).floor_violation and _score_for(0.1, config).decision == "abort"
    assert _score_for(0.4, config).decision == "review"


def test_entropy_flag_is_strict_and_defers_execute() -> None:
    config = alignment_only()
    at = evaluate_values(0.9, 0.5, 0.72, config)
    assert (at.entropy_flag, at.decision) == (False, "execute")
    above = evaluate_values(0.9, 0.5, math.nextafter(0.72, 1.0), config)
    assert (above.entropy_flag, above.decision) == (True, "defer")


def test_entropy_wins_over_floor() -> None:
    result = evaluate_values(0.55, 0.5, 0.9, alignment_only())
    assert result.floor_violation and result.entropy_flag
    assert (result.tier_decision, result.decision) == ("execute", "defer")


def test_entropy_does_not_change_review_or_abort() -> None:
    config = alignment_only()
    assert evaluate_values(0.4, 0.5, 0.9, config).decision == "review"
    assert evaluate_values(0.1, 0.5, 0.9, config).decision == "abort"


def test_entropy_flag_uses_the_unclamped_input() -> None:
    mapping = alignment_only().as_dict()
    mapping["entropy_threshold"] = 1 - 1e-6
    result = evaluate_values(0.9, 0.5, 1.0, config_from_mapping(mapping))
    assert result.entropy_flag and result.decision == "defer"


@given(unit, unit, unit, any_config)
def test_decision_rules(a: float, r: float, c: float, config: TrustConfig) -> None:
    result = evaluate_values(a, r, c, config)
    thresholds = dict(config.risk_tiers)
    expected_tier = min((t for t in thresholds.items() if result.score <= t[1]), key=lambda t: t[1])[0]
    assert result.tier == expected_tier
    assert result.floor_violation == (result.score < config.trust_floor)
    assert result.entropy_flag == (c > config.entropy_threshold)
    expected = result.tier_decision
    if expected == "execute" and result.entropy_flag:
        expected = "defer"
    elif expected == "execute" and result.floor_violation:
        expected = "review"
    assert result.decision == expected
