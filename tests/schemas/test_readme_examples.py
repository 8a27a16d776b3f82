"""The README's topic table and event examples agree with the code, so the docs cannot drift."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from resontinex.agents.budget_gate import load_report_file
from resontinex.agents.gate import decision_id
from resontinex.agents.trust import InputVector, default_config, evaluate
from resontinex.schemas import EVENT_TYPES, Cost, Decision, DecisionRequest, Outcome, decode
from resontinex.topics import REGISTRY

README = Path(__file__).resolve().parents[2] / "README.md"
INPUTS = ("decision-request", "outcome", "cost", "telemetry", "trajectory-request")
_EXAMPLE = re.compile(r"<!-- example: ([a-z-]+) -->\n```json\n(.*?)\n```", re.DOTALL)
_ROW = re.compile(r"^\| `([a-z-]+)` \| (publish|subscribe) \| ([^|]+) \| `([a-z-]+)`", re.MULTILINE)
_DIRECTIONS = {"in": "publish", "out": "subscribe"}
_KEYS = {"tenant": "tenant", "source": "source", "enhancement": "enhancement id", "tenant_or_system": "tenant or `_system`",
         "original": "the refused record's key"}


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Topics and events\n")
    return text[start:text.index("\n## ", start + 1)]


def _examples() -> dict[str, str]:
    found = _EXAMPLE.findall(_section())
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), f"an example appears twice: {names}"
    return dict(found)


def _example(name: str) -> bytes:
    return _examples()[name].encode()


def test_there_is_one_example_of_each_input_a_decision_and_a_budget_report() -> None:
    assert sorted(_examples()) == sorted([*INPUTS, "decision", "budget-report"])


@pytest.mark.parametrize("name", INPUTS)
def test_an_input_example_decodes_with_every_field_known(name: str) -> None:
    event = decode(EVENT_TYPES[name], _example(name))
    # Inputs ignore unknown fields, so a misspelt one would decode: it must come back.
    assert event.model_dump(mode="json", exclude_unset=True) == json.loads(_example(name))


def test_the_decision_example_answers_the_request_example() -> None:
    decision = decode(Decision, _example("decision"))
    request = decode(DecisionRequest, _example("decision-request"))
    assert (decision.request_id, decision.tenant, decision.workflow, decision.ts) == (
        request.event_id, request.tenant, request.workflow, request.ts)
    assert decision.event_id == decision_id(request.tenant, request.event_id)
    assert decode(Outcome, _example("outcome")).decision_id == decision.event_id


def test_the_decision_example_has_the_trust_gate_verdict_of_the_request_signals() -> None:
    trust = decode(Decision, _example("decision")).trust
    signals = decode(DecisionRequest, _example("decision-request")).signals
    assert signals.epistemic_risk is not None
    result = evaluate(InputVector(signals.alignment_score, signals.epistemic_risk, signals.confidence_band),
                      default_config())
    assert (trust.score, trust.raw_score, trust.tier, trust.decision) == (
        result.score, result.raw_score, result.tier, result.decision)


def test_the_decision_example_budget_follows_from_the_estimate_and_the_cost() -> None:
    budget = decode(Decision, _example("decision")).budget
    estimate = decode(DecisionRequest, _example("decision-request")).estimate
    spent = decode(Cost, _example("cost")).cost_usd
    assert budget is not None and budget.limit_usd is not None
    assert estimate is not None and estimate.cost_usd is not None
    assert math.isclose(budget.effective_cost_usd, estimate.cost_usd * budget.multiplier)
    assert math.isclose(budget.remaining_usd, budget.limit_usd - spent)
    assert math.isclose(budget.utilization, (spent + budget.effective_cost_usd) / budget.limit_usd)


def test_the_budget_report_example_is_read_by_the_budget_gate(tmp_path: Path) -> None:
    path = tmp_path / "both.json"
    path.write_bytes(_example("budget-report"))
    baseline, current = load_report_file(path)
    expected = [s["name"] for s in json.loads(_example("budget-report"))["baseline"]["scenarios"]]
    assert [s.name for s in baseline.scenarios] == expected == [s.name for s in current.scenarios]


def test_the_topic_table_is_the_registry() -> None:
    rows = {name: (direction, key.strip(), schema) for name, direction, key, schema in _ROW.findall(_section())}
    assert rows == {spec.name: (_DIRECTIONS[spec.direction], _KEYS[spec.key], _schema_name(spec.schema))
                    for spec in REGISTRY}


def _schema_name(model: type) -> str:
    return next(name for name, event_type in EVENT_TYPES.items() if event_type is model)
