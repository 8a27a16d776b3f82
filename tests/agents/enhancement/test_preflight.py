"""Preflight: the payload's schema, PEP 508 requirements, seed 004's weighted threshold satisfaction."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.enhancement._config import PreflightSettings
from resontinex.agents.enhancement._preflight import (MAX_SCHEMA_ERRORS, Check, check_requirements, check_schema,
                                                       check_thresholds, installed_version, preflight)
from resontinex.schemas import payload_json_schema

SETTINGS = PreflightSettings()
ITEMS = ("mandatory", "proxy", "alpha", "sigma", "governance")


def values(mandatory: float, proxy: float, alpha: float, sigma: float, governance: float) -> dict[str, float]:
    return dict(zip(ITEMS, (mandatory, proxy, alpha, sigma, governance)))


# --- thresholds ---------------------------------------------------------------------------------------------------


def test_the_issues_worked_example_passes_with_0_797() -> None:
    t = check_thresholds(values(1, 0.8, 0.96, 0.1, 0.9), SETTINGS)
    assert t.passed and t.name == "thresholds"
    assert t.score == pytest.approx(0.797, abs=1e-12)  # .3 + .2 + .192 + .015 + .09
    assert t.evidence["critical_failures"] == []
    assert all(item["passed"] for item in t.evidence["items"].values())


def test_every_item_exactly_at_its_minimum_passes_with_0_7575() -> None:
    t = check_thresholds(values(1.0, 0.70, 0.95, 0.05, 0.85), SETTINGS)
    assert t.passed
    assert t.score == pytest.approx(0.7575, abs=1e-12)


def test_sigma_and_governance_failing_are_never_critical() -> None:
    t = check_thresholds(values(1, 1, 1, 0, 0), SETTINGS)
    assert t.passed
    assert t.score == pytest.approx(0.75, abs=1e-12)
    assert t.evidence["critical_failures"] == []
    assert [n for n, item in t.evidence["items"].items() if not item["passed"]] == ["sigma", "governance"]


def test_seed_threshold_satisfaction_test_cannot_hold() -> None:
    """Seed 004's `TestPreflightValidator::test_threshold_satisfaction_validation` fed mandatory .95,
    proxy .8, alpha .9, sigma .1, governance .85 and expected a pass with score > .7. Under the seed's
    own minimums (mandatory 1.0, alpha .95) mandatory and alpha fail, both of weight ≥ .20, so the
    check fails, and the score is only the passing items' .2 + .015 + .085 = .30: the seed test
    contradicts its implementation and its thresholds, and we keep the implementation."""
    t = check_thresholds(values(0.95, 0.8, 0.9, 0.1, 0.85), SETTINGS)
    assert not t.passed
    assert t.score == pytest.approx(0.30, abs=1e-12)
    assert sorted(t.evidence["critical_failures"]) == ["alpha", "mandatory"]


def test_the_seeds_insufficient_example_fails_too() -> None:
    t = check_thresholds(values(0.6, 0.5, 0.8, 0.05, 0.7), SETTINGS)
    assert not t.passed
    assert sorted(t.evidence["critical_failures"]) == ["alpha", "mandatory", "proxy"]
    assert t.score == pytest.approx(0.15 * 0.05, abs=1e-12)


def test_no_critical_failure_but_a_score_below_0_70_fails() -> None:
    t = check_thresholds(values(1.0, 0.70, 0.95, 0.0, 0.0), SETTINGS)
    assert t.evidence["critical_failures"] == []
    assert t.score == pytest.approx(0.665, abs=1e-12)  # .3 + .175 + .19
    assert not t.passed


def test_a_missing_item_counts_zero() -> None:
    t = check_thresholds({"mandatory": 1, "proxy": 1, "alpha": 1, "governance": 1}, SETTINGS)
    assert t.evidence["items"]["sigma"] == {"value": 0.0, "minimum": 0.05, "weight": 0.15, "passed": False}
    assert t.passed and t.score == pytest.approx(0.85, abs=1e-12)

    nothing = check_thresholds({}, SETTINGS)
    assert not nothing.passed and nothing.score == 0.0
    assert sorted(nothing.evidence["critical_failures"]) == ["alpha", "mandatory", "proxy"]


@pytest.mark.parametrize("item", ["mandatory", "proxy", "alpha"])
def test_any_item_of_weight_at_least_0_20_failing_fails_the_check(item: str) -> None:
    v = values(1, 1, 1, 1, 1)
    v[item] = 0.5
    t = check_thresholds(v, SETTINGS)
    assert not t.passed and t.evidence["critical_failures"] == [item]


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.tuples(unit, unit, unit, unit, unit), st.sampled_from(ITEMS), unit)
def test_raising_one_value_never_turns_a_pass_into_a_fail(v: tuple[float, ...], item: str, extra: float) -> None:
    before = dict(zip(ITEMS, v))
    after = {**before, item: min(1.0, before[item] + extra)}
    a, b = check_thresholds(before, SETTINGS), check_thresholds(after, SETTINGS)
    assert b.score >= a.score - 1e-12
    assert not (a.passed and not b.passed)
    assert 0.0 <= a.score <= 1.0 + 1e-12


@given(st.tuples(unit, unit, unit, unit, unit))
def test_the_score_is_the_weighted_sum_over_the_passing_items(v: tuple[float, ...]) -> None:
    given_values = dict(zip(ITEMS, v))
    t = check_thresholds(given_values, SETTINGS)
    expected = sum(item.weight * given_values[n] for n, item in SETTINGS.items.items()
                   if given_values[n] >= item.minimum)
    critical = [n for n, item in SETTINGS.items.items() if given_values[n] < item.minimum and item.weight >= 0.20]
    assert t.score == pytest.approx(expected, abs=1e-12)
    assert t.evidence["critical_failures"] == critical
    assert t.passed == (not critical and t.score >= 0.70)


# --- requirements -------------------------------------------------------------------------------------------------

INSTALLED = {"alpha-lib": "2.1.0", "beta-lib": "1.5b2", "gamma-lib": "0.9"}


def entry(check: Check, requirement: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in check.evidence["requirements"] if r["requirement"] == requirement]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize(("requirement", "ok"), [
    ("alpha-lib>=2", True),
    ("alpha-lib==2.1.0", True),
    ("alpha-lib~=2.0", True),
    ("alpha-lib>=3", False),  # too low
    ("gamma-lib>=1.0", False),  # too low
    ("beta-lib>=1", True),  # a pre-release satisfies a plain specifier
    ("beta-lib>=1.5b1,<2", True),
    ("beta-lib>=1.5", False),  # 1.5b2 comes before 1.5
])
def test_a_requirement_against_the_installed_version(requirement: str, ok: bool) -> None:
    c = check_requirements([requirement], INSTALLED.get)
    assert c.passed is ok and c.score == (1.0 if ok else 0.0)
    assert entry(c, requirement)["ok"] is ok
    assert c.evidence["failed"] == ([] if ok else [requirement])


def test_a_version_too_low_names_the_installed_version() -> None:
    c = check_requirements(["gamma-lib>=1.0"], INSTALLED.get)
    e = entry(c, "gamma-lib>=1.0")
    assert e["installed"] == "0.9" and "problem" in e


def test_a_distribution_not_installed_fails() -> None:
    c = check_requirements(["surely-not-installed>=1"], INSTALLED.get)
    e = entry(c, "surely-not-installed>=1")
    assert not c.passed and e["ok"] is False and e["installed"] is None and "problem" in e


def test_a_marker_that_does_not_apply_is_skipped_and_ok() -> None:
    asked: list[str] = []

    def installed(name: str) -> str | None:
        asked.append(name)
        return None

    requirement = 'surely-not-installed>=1; python_version < "3"'
    c = check_requirements([requirement], installed)
    assert c.passed and c.score == 1.0 and asked == []
    e = entry(c, requirement)
    assert e["ok"] is True and "skipped" in e


def test_a_marker_that_applies_is_judged() -> None:
    c = check_requirements(['gamma-lib>=1; python_version >= "3"'], INSTALLED.get)
    assert not c.passed and c.evidence["failed"] == ['gamma-lib>=1; python_version >= "3"']


@pytest.mark.parametrize("requirement", ["numpy >>= 2", "not a requirement!", ">=1.0", ""])
def test_an_unparsable_requirement_fails_with_a_problem(requirement: str) -> None:
    c = check_requirements([requirement], INSTALLED.get)
    e = entry(c, requirement)
    assert not c.passed and e["ok"] is False and e["problem"]
    assert c.evidence["failed"] == [requirement]


def test_no_requirements_score_1_and_pass() -> None:
    c = check_requirements([], INSTALLED.get)
    assert c.passed and c.score == 1.0 and c.evidence == {"requirements": [], "failed": []}


def test_the_score_is_the_share_satisfied() -> None:
    reqs = ["alpha-lib>=2", "beta-lib>=1", "gamma-lib>=1", "missing-lib"]
    c = check_requirements(reqs, INSTALLED.get)
    assert not c.passed and c.score == 0.5 and c.evidence["failed"] == ["gamma-lib>=1", "missing-lib"]
    assert [r["requirement"] for r in c.evidence["requirements"]] == reqs


def test_against_the_real_environment() -> None:
    assert installed_version("numpy") is not None
    assert installed_version("surely-not-an-installed-distribution") is None
    c = check_requirements(["numpy>=2", "numpy<1"])
    assert not c.passed and c.score == 0.5
    assert entry(c, "numpy>=2")["ok"] is True
    assert entry(c, "numpy<1")["ok"] is False
    assert c.evidence["failed"] == ["numpy<1"]


# --- schema -------------------------------------------------------------------------------------------------------


def test_a_trust_policy_payload_passes() -> None:
    c = check_schema({"trust_floor": 0.65}, payload_json_schema("trust_policy"))
    assert c.name == "schema" and c.passed and c.score == 1.0 and c.evidence == {"errors": []}


def test_a_misspelt_trust_policy_key_fails_naming_it() -> None:
    c = check_schema({"trust_flor": 0.65}, payload_json_schema("trust_policy"))
    assert not c.passed and c.score == 0.0
    (error,) = c.evidence["errors"]
    assert error["path"] == "(payload)" and "trust_flor" in error["message"]


def test_an_empty_trust_policy_fails() -> None:
    c = check_schema({}, payload_json_schema("trust_policy"))  # minProperties 1
    assert not c.passed and len(c.evidence["errors"]) == 1


def test_a_model_payload_needs_its_model() -> None:
    c = check_schema({}, payload_json_schema("model"))
    assert not c.passed
    (error,) = c.evidence["errors"]
    assert "model" in error["message"]
    assert check_schema({"model": "m-large"}, payload_json_schema("model")).passed


@pytest.mark.parametrize("payload", [{}, {"anything": [1, 2]}, {"nested": {"x": None}}])
def test_other_accepts_any_object(payload: dict[str, Any]) -> None:
    assert check_schema(payload, payload_json_schema("other")).passed


def test_errors_are_listed_with_their_paths() -> None:
    c = check_schema({"trust_floor": 2, "weights": {"alignment_score": -1}}, payload_json_schema("trust_policy"))
    assert not c.passed
    assert [e["path"] for e in c.evidence["errors"]] == ["trust_floor", "weights"]

    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}}
    (error,) = check_schema({"a": {"b": 3}}, schema).evidence["errors"]
    assert error["path"] == "a.b"


def test_at_most_twenty_errors_are_listed() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    c = check_schema({f"k{i:02d}": i for i in range(MAX_SCHEMA_ERRORS + 5)}, schema)
    assert len(c.evidence["errors"]) == MAX_SCHEMA_ERRORS and c.evidence["more_errors"] == 5


# --- all three ----------------------------------------------------------------------------------------------------


def test_preflight_runs_every_check() -> None:
    p = preflight({"trust_flor": 0.65}, payload_json_schema("trust_policy"), ["alpha-lib>=3"],
                  values(0.95, 0.8, 0.9, 0.1, 0.85), SETTINGS, INSTALLED.get)
    assert not p.passed and p.failed == ("schema", "requirements", "thresholds")
    assert set(p.evidence()) == {"schema", "requirements", "thresholds"}
    assert p.evidence()["thresholds"]["passed"] is False


def test_preflight_passes_when_every_check_does() -> None:
    p = preflight({"trust_floor": 0.65}, payload_json_schema("trust_policy"), ["alpha-lib>=2"],
                  values(1, 0.8, 0.96, 0.1, 0.9), SETTINGS, INSTALLED.get)
    assert p.passed and p.failed == ()
    assert [c.name for c in p.checks] == ["schema", "requirements", "thresholds"]


def test_preflight_fails_on_one_check_alone() -> None:
    p = preflight({"model": "m"}, payload_json_schema("model"), [], values(1, 1, 1, 0, 0), SETTINGS, INSTALLED.get)
    assert p.passed
    p = preflight({"model": "m"}, payload_json_schema("model"), ["missing-lib"], values(1, 1, 1, 0, 0), SETTINGS,
                  INSTALLED.get)
    assert not p.passed and p.failed == ("requirements",)
