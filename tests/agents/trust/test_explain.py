from __future__ import annotations

import json

import pytest
from hypothesis import given

from resontinex.agents.trust import (
    InputVector,
    TrustConfig,
    default_config,
    evaluate,
    explain,
    policy_version,
)

from ._support import alignment_only, any_config, unit


def _explain(a: float, r: float, c: float, config: TrustConfig | None = None) -> dict:
    config = config or default_config()
    inputs = InputVector(a, r, c)
    return explain(evaluate(inputs, config), inputs, config)


def test_contract_example_in_full() -> None:
    report = _explain(0.8, 0.3, 0.2)
    assert report["policy_version"] == policy_version(default_config())
    assert report["config"] == default_config().as_dict()
    assert report["inputs"] == {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}
    risk = report["contributions"]["epistemic_risk"]
    assert (risk["input"], risk["clamped"], risk["logit_of"], risk["weight"]) == (0.3, 0.3, 0.7, 0.35)
    assert risk["term"] == risk["weight"] * risk["logit"]
    assert report["score"] == 0.7681 and report["tier"] == "pass" and report["decision"] == "execute"
    assert report["thresholds"] == {
        "risk_tiers": {"block": 0.25, "review": 0.5, "monitor": 0.75, "pass": 1.01},
        "trust_floor": 0.6,
        "entropy_threshold": 0.72,
    }
    assert [step["rule"] for step in report["decision_path"]] == ["tier", "entropy_flag", "trust_floor"]
    assert [step["decision"] for step in report["decision_path"]] == ["execute"] * 3


def test_clamped_values_are_shown() -> None:
    report = _explain(0.0, 1.0, 0.0)
    assert report["contributions"]["alignment_score"]["clamped"] == 1e-6
    assert report["contributions"]["epistemic_risk"]["clamped"] == 1 - 1e-6
    assert report["clamp"] == [1e-6, 1 - 1e-6]


@given(unit, unit, unit, any_config)
def test_json_and_consistent(a: float, r: float, c: float, config: TrustConfig) -> None:
    report = _explain(a, r, c, config)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    terms = [report["contributions"][name]["term"] for name in ("alignment_score", "epistemic_risk", "confidence_band")]
    assert report["z"] == terms[0] + terms[1] + terms[2]
    assert report["decision_path"][-1]["decision"] == report["decision"]
    assert report["decision_path"][0]["decision"] == report["tier_decision"]


def test_entropy_modifier_is_explained() -> None:
    path = _explain(0.9, 0.5, 0.9, alignment_only())["decision_path"]
    assert path[1] == {
        "rule": "entropy_flag", "triggered": True, "applied": True, "decision": "defer",
        "why": "confidence_band 0.9 > entropy_threshold 0.72: execute -> defer",
    }
    assert path[2]["applied"] is False


def test_floor_modifier_is_explained() -> None:
    path = _explain(0.55, 0.5, 0.5, alignment_only())["decision_path"]
    assert path[1]["triggered"] is False
    assert path[2]["applied"] is True and path[2]["decision"] == "review"
    assert path[2]["why"] == "score 0.55 < trust_floor 0.6: execute -> review"


def test_flags_that_change_nothing_say_why() -> None:
    path = _explain(0.1, 0.5, 0.9, alignment_only())["decision_path"]
    assert path[0]["decision"] == "abort"
    assert all(step["triggered"] and not step["applied"] for step in path[1:])
    assert "only an execute is changed and the verb is abort" in path[1]["why"]


def test_refuses_a_result_from_other_inputs() -> None:
    config = default_config()
    result = evaluate(InputVector(0.8, 0.3, 0.2), config)
    with pytest.raises(ValueError, match="not produced"):
        explain(result, InputVector(0.8, 0.3, 0.3), config)
