"""The compact per-decision explanation that decisions and audit records carry."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trust import (
    SIGNALS,
    InputVector,
    TrustConfig,
    default_config,
    evaluate,
    evaluate_batch,
    explain,
    explain_batch,
    rejudge,
    verb_change,
)
from resontinex.agents.trust._math import sigmoid
from resontinex.schemas import Explanation

from ._support import alignment_only, any_config, unit

triples = st.lists(st.tuples(unit, unit, unit), min_size=1, max_size=20)


def _explained(rows: list[tuple[float, float, float]], config: TrustConfig) -> list[dict]:
    a, r, c = (np.array(column, dtype=np.float64) for column in zip(*rows))
    return explain_batch(a, r, c, evaluate_batch(a, r, c, config), config)


@given(triples, any_config)
def test_contributions_sum_to_z_and_its_sigmoid_is_the_raw_score(rows: list, config: TrustConfig) -> None:
    for (a, r, c), e in zip(rows, _explained(rows, config)):
        terms = [e["signals"][name]["contribution"] for name in SIGNALS]
        assert e["z"] == terms[0] + terms[1] + terms[2]
        assert sigmoid(e["z"]) == e["raw_score"]
        for name in SIGNALS:
            term = e["signals"][name]
            assert term["contribution"] == term["weight"] * term["logit"]
        result = evaluate(InputVector(a, r, c), config)
        assert (e["z"], e["raw_score"], e["score"], e["tier"]) == (result.z, result.raw_score, result.score, result.tier)
        assert e["verb"] == result.decision
        bounds = e["tier_bounds"]
        assert (bounds["above"] is None or e["score"] > bounds["above"]) and e["score"] <= bounds["at_most"]
        assert json.loads(json.dumps(e, allow_nan=False)) == e
        Explanation.model_validate(e)


@given(unit, unit, unit, any_config)
def test_agrees_with_the_full_scalar_explanation(a: float, r: float, c: float, config: TrustConfig) -> None:
    (compact,) = _explained([(a, r, c)], config)
    inputs = InputVector(a, r, c)
    full = explain(evaluate(inputs, config), inputs, config)
    for name in SIGNALS:
        mine, theirs = compact["signals"][name], full["contributions"][name]
        assert (mine["clamped"], mine["logit"], mine["contribution"]) == (
            theirs["clamped"], theirs["logit"], theirs["term"])
    changed = [step["rule"] for step in full["decision_path"][1:] if step["applied"]]
    codes = {"entropy_flag": "entropy_flag", "trust_floor": "trust_floor_violation"}
    assert [change["codes"] for change in compact["verb_changes"]] == [[codes[rule]] for rule in changed]


def test_contract_example_and_its_boundaries() -> None:
    (e,) = _explained([(0.8, 0.3, 0.2)], default_config())
    assert math.isclose(e["z"], 1.197646, abs_tol=1e-6)
    assert (e["score"], e["tier"], e["tier_verb"], e["verb"]) == (0.7681, "pass", "execute", "execute")
    assert e["tier_bounds"] == {"above": 0.75, "at_most": 1.01}
    assert e["signals"]["epistemic_risk"]["weight"] == 0.35
    assert e["verb_changes"] == []


def test_lowest_tier_has_no_lower_bound_and_clamped_inputs_show() -> None:
    (e,) = _explained([(0.0, 1.0, 0.0)], default_config())
    assert e["tier"] == "block" and e["tier_bounds"] == {"above": None, "at_most": 0.25}
    assert e["signals"]["alignment_score"]["clamped"] == 1e-6
    assert e["signals"]["epistemic_risk"]["clamped"] == 1 - 1e-6


def test_trust_rules_that_change_the_verb() -> None:
    entropy, floor, both_on_abort = _explained([(0.9, 0.5, 0.9), (0.55, 0.5, 0.5), (0.1, 0.5, 0.9)], alignment_only())
    assert entropy["verb_changes"] == [
        {"component": "trust", "codes": ["entropy_flag"], "before": "execute", "after": "defer"}]
    assert floor["verb_changes"] == [
        {"component": "trust", "codes": ["trust_floor_violation"], "before": "execute", "after": "review"}]
    assert both_on_abort["verb_changes"] == [] and both_on_abort["verb"] == "abort"


def test_a_rejudged_batch_is_explained_by_the_score_that_set_its_tier() -> None:
    a, r, c = np.array([0.8]), np.array([0.3]), np.array([0.2])
    config = default_config()
    res = rejudge(evaluate_batch(a, r, c, config), np.array([0.4]), config)
    (e,) = explain_batch(a, r, c, res, config, [0.4])
    assert (e["score"], e["tier_score"], e["tier"]) == (0.7681, 0.4, "review")
    assert e["tier_bounds"] == {"above": 0.25, "at_most": 0.5} and e["verb"] == "review"


def test_later_rules_are_appended_only_when_they_change_the_verb() -> None:
    (e,) = _explained([(0.8, 0.3, 0.2)], default_config())
    budget = [{"component": "budget", "code": "budget_warning"}, {"component": "budget", "code": "budget_blocked"}]
    assert verb_change(e, [{"component": "route", "code": "routed"}], "execute") == "execute"
    assert verb_change(e, budget, "defer") == "defer"
    assert verb_change(e, [{"component": "override", "code": "break_glass"}], "execute") == "execute"
    assert [(s["component"], s["codes"], s["before"], s["after"]) for s in e["verb_changes"]] == [
        ("budget", ["budget_warning", "budget_blocked"], "execute", "defer"),
        ("override", ["break_glass"], "defer", "execute"),
    ]
    assert e["verb"] == "execute"
    Explanation.model_validate(e)


def test_empty_batch() -> None:
    empty = np.array([], dtype=np.float64)
    config = default_config()
    assert explain_batch(empty, empty, empty, evaluate_batch(empty, empty, empty, config), config) == []
