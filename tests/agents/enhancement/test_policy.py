"""`candidate_trust`: the trust-gate configuration a `trust_policy` enhancement's payload makes."""

from __future__ import annotations

from typing import Any

import pytest

from resontinex.agents.enhancement import candidate_trust
from resontinex.agents.trust import ConfigError, TrustConfig, config_from_mapping, default_config, policy_version

CURRENT = default_config()


def test_an_empty_payload_or_one_of_none_values_changes_nothing() -> None:
    assert candidate_trust(CURRENT, {}) == CURRENT
    unchanged = candidate_trust(CURRENT, {"trust_floor": None, "weights": None, "risk_tiers": {"review": None}})
    assert unchanged == CURRENT and policy_version(unchanged) == policy_version(CURRENT)


def test_scalars_are_replaced() -> None:
    c = candidate_trust(CURRENT, {"trust_floor": 0.7, "entropy_threshold": 0.5})
    assert (c.trust_floor, c.entropy_threshold) == (0.7, 0.5)
    assert (c.weights, c.risk_tiers) == (CURRENT.weights, CURRENT.risk_tiers)
    assert policy_version(c) != policy_version(CURRENT)


def test_nested_sections_are_merged_key_by_key() -> None:
    c = candidate_trust(CURRENT, {"risk_tiers": {"review": 0.55}})
    assert dict(c.risk_tiers) == {"block": 0.25, "review": 0.55, "monitor": 0.75, "pass": 1.01}
    w = candidate_trust(CURRENT, {"weights": {"alignment_score": 0.5}})
    # the other weights are kept and the three normalised together (0.5 / 0.35 / 0.2 over 1.05)
    assert w.weights == pytest.approx((0.5 / 1.05, 0.35 / 1.05, 0.2 / 1.05))
    assert w == config_from_mapping({**CURRENT.as_dict(),
                                     "weights": {"alignment_score": 0.5, "epistemic_risk": 0.35,
                                                 "confidence_band": 0.2}})


def test_none_values_inside_a_section_keep_the_current_ones() -> None:
    c = candidate_trust(CURRENT, {"risk_tiers": {"review": 0.45, "monitor": None}, "trust_floor": None})
    assert dict(c.risk_tiers)["monitor"] == 0.75 and dict(c.risk_tiers)["review"] == 0.45
    assert c.trust_floor == CURRENT.trust_floor


def test_the_payload_applies_to_the_given_configuration_not_the_defaults() -> None:
    current = candidate_trust(CURRENT, {"trust_floor": 0.5, "calibration": {"min_samples": 80}})
    c = candidate_trust(current, {"entropy_threshold": 0.6, "calibration": {"method": "platt"}})
    assert (c.trust_floor, c.entropy_threshold) == (0.5, 0.6)
    assert (c.calibration_method, c.calibration_min_samples) == ("platt", 80)


def test_the_current_configuration_is_left_as_it_was() -> None:
    before = CURRENT.as_dict()
    candidate_trust(CURRENT, {"weights": {"alignment_score": 0.9}, "risk_tiers": {"block": 0.1}})
    assert CURRENT.as_dict() == before


def test_a_section_absent_from_the_current_configuration_is_taken_as_given() -> None:
    """`circuit_breaker` and `decide_on` appear in `as_dict` only when not the defaults."""
    c = candidate_trust(CURRENT, {"decide_on": "calibrated", "circuit_breaker": {"open_rate": 0.8,
                                                                                  "close_rate": 0.2}})
    assert c.decide_on == "calibrated" and isinstance(c, TrustConfig)
    assert (c.circuit_breaker.open_rate, c.circuit_breaker.close_rate) == (0.8, 0.2)


@pytest.mark.parametrize("payload", [
    {"weights": {"alignment_score": 0, "epistemic_risk": 0, "confidence_band": 0}},  # no positive sum
    {"weights": {"alignment_score": -1}},
    {"trust_floor": 1.5},
    {"trust_floor": "high"},
    {"entropy_threshold": -0.1},
    {"risk_tiers": {"pass": 0.9}},  # the highest threshold under 1
    {"risk_tiers": {"review": 0.25}},  # not distinct from block's
    {"risk_tiers": {"severe": 0.4}},  # no such tier
    {"weights": {"novelty": 0.2}},  # no such signal
    {"unknown_setting": 1},
    {"trust_floor": {"value": 0.7}},  # a section where a scalar belongs
    {"weights": 0.5},  # a scalar where a section belongs: replaces it, and is refused
    {"calibration": {"method": "magic"}},
])
def test_an_invalid_result_raises_the_trust_config_error(payload: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        candidate_trust(CURRENT, payload)
