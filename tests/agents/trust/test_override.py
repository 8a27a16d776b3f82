from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest

from resontinex.agents.trust import (
    InputVector,
    InvalidOverride,
    OverrideRecord,
    TrustResult,
    break_glass_override,
    default_config,
    evaluate,
)

NOW = datetime(2025, 8, 15, 12, 30, tzinfo=timezone.utc)


def aborted() -> TrustResult:
    result = evaluate(InputVector(0.1, 0.9, 0.5), default_config())
    assert result.decision == "abort"
    return result


def test_override_records_everything() -> None:
    result = aborted()
    record = break_glass_override(result, operator_id=" ops-lead ", reason="incident 42", request_id="req-1", now=NOW)
    assert record.decision == "execute"
    assert (record.original_decision, record.score, record.raw_score, record.tier) == (
        "abort", result.score, result.raw_score, result.tier)
    assert (record.operator_id, record.reason, record.request_id, record.timestamp) == (
        "ops-lead", "incident 42", "req-1", NOW)
    audit = record.as_audit_record()
    assert audit == {
        "kind": "override",
        "ts": "2025-08-15T12:30:00.000000Z",
        "record": {
            "request_id": "req-1", "operator_id": "ops-lead", "reason": "incident 42",
            "original_decision": "abort", "decision": "execute",
            "score": result.score, "raw_score": result.raw_score, "tier": result.tier,
        },
    }
    assert json.loads(json.dumps(audit)) == audit


def test_timestamp_defaults_to_now_and_is_utc() -> None:
    record = break_glass_override(aborted(), operator_id="op", reason="why")
    assert abs(record.timestamp - datetime.now(timezone.utc)) < timedelta(seconds=5)
    local = datetime(2025, 8, 15, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert break_glass_override(aborted(), operator_id="op", reason="why", now=local).timestamp == NOW


@pytest.mark.parametrize(
    "kwargs",
    [
        {"operator_id": "", "reason": "why"},
        {"operator_id": "   ", "reason": "why"},
        {"operator_id": None, "reason": "why"},
        {"operator_id": "op", "reason": ""},
        {"operator_id": "op", "reason": "\n"},
        {"operator_id": "op", "reason": 42},
        {"operator_id": "op", "reason": "why", "request_id": ""},
        {"operator_id": "op", "reason": "why", "now": datetime(2025, 1, 1)},
    ],
)
def test_requirements(kwargs: dict) -> None:
    with pytest.raises(InvalidOverride):
        break_glass_override(aborted(), **kwargs)


def test_operator_and_reason_are_required_keywords() -> None:
    with pytest.raises(TypeError):
        break_glass_override(aborted(), reason="why")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        break_glass_override(aborted(), "op", "why")  # type: ignore[misc]


def test_nothing_to_override() -> None:
    result = evaluate(InputVector(0.8, 0.3, 0.2), default_config())
    with pytest.raises(InvalidOverride, match="nothing to override"):
        break_glass_override(result, operator_id="op", reason="why", now=NOW)
    with pytest.raises(InvalidOverride, match="TrustResult"):
        break_glass_override("abort", operator_id="op", reason="why")  # type: ignore[arg-type]


def test_records_cannot_be_built_or_altered_without_the_fields() -> None:
    record = break_glass_override(aborted(), operator_id="op", reason="why", now=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.operator_id = ""  # type: ignore[misc]
    for change in ({"operator_id": ""}, {"reason": " "}, {"decision": "abort"}, {"timestamp": None},
                   {"original_decision": "execute"}, {"tier": "unknown"}, {"score": float("nan")}):
        with pytest.raises(InvalidOverride):
            dataclasses.replace(record, **change)
    with pytest.raises(TypeError):
        OverrideRecord(original_decision="abort", score=0.1, raw_score=0.1, tier="block", timestamp=NOW)  # type: ignore[call-arg]


def test_deferred_and_reviewed_results_can_be_overridden() -> None:
    for inputs, verb in ((InputVector(0.9, 0.1, 0.9), "defer"), (InputVector(0.4, 0.5, 0.5), "review")):
        result = evaluate(inputs, default_config())
        assert result.decision == verb
        record = break_glass_override(result, operator_id="op", reason="why", now=NOW)
        assert (record.original_decision, record.decision) == (verb, "execute")
