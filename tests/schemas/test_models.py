"""Model semantics: strict types, ranges, defaults, the epistemic-risk-or-text rule."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from resontinex.schemas import (
    EVENT_TYPES,
    SYSTEM_TENANT,
    Alert,
    DeadLetter,
    Decision,
    DecisionRequest,
    InputEvent,
    InvalidEvent,
    OutputEvent,
    TrustSummary,
    decode,
    ms_to_ts,
    ts_to_ms,
)

from .samples import TS, sample


def _request(**signals: float | None) -> dict[str, object]:
    event = {"event_id": "r1", "tenant": "acme", "signals": {"alignment_score": 0.8, "confidence_band": 0.2}}
    event["signals"].update({k: v for k, v in signals.items() if v is not None})  # type: ignore[union-attr]
    return event


def test_minimal_request_gets_defaults() -> None:
    request = DecisionRequest.model_validate(_request(epistemic_risk=0.3))
    assert (request.workflow, request.schema_version, request.ts, request.text) == ("default", 1, None, None)
    assert request.estimate is request.routing is request.scenario is request.psi is None


def test_epistemic_risk_may_be_absent_only_with_text() -> None:
    assert DecisionRequest.model_validate({**_request(), "text": "some generated text"}).signals.epistemic_risk is None
    for event in (_request(), {**_request(), "text": ""}, {**_request(), "text": None}):
        with pytest.raises(InvalidEvent) as caught:
            decode(DecisionRequest, orjson.dumps(event))
        assert caught.value.code == "missing_field"
        assert caught.value.message == "signals.epistemic_risk: is required unless text is given"


def test_explicit_null_epistemic_risk_counts_as_absent() -> None:
    event = _request()
    event["signals"]["epistemic_risk"] = None  # type: ignore[index]
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate(event)
    assert DecisionRequest.model_validate({**event, "text": "t"}).signals.epistemic_risk is None


def test_an_int_is_a_valid_float_and_stays_numerically_equal() -> None:
    request = DecisionRequest.model_validate(_request(epistemic_risk=0))
    assert request.signals.epistemic_risk == 0 and isinstance(request.signals.epistemic_risk, float)


@pytest.mark.parametrize("bad", ["0.5", True, None, [0.5], {"v": 0.5}])
def test_strings_bools_and_containers_are_not_numbers(bad: object) -> None:
    event = _request(epistemic_risk=0.1)
    event["signals"]["alignment_score"] = bad  # type: ignore[index]
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate(event)


@pytest.mark.parametrize("value", [0.0, 1.0, 0, 1])
def test_unit_interval_bounds_are_inclusive(value: float) -> None:
    assert DecisionRequest.model_validate(_request(epistemic_risk=value)).signals.epistemic_risk == value


@pytest.mark.parametrize(
    "ts",
    ["2024-05-01T12:00:00Z", "2024-05-01t12:00:00z", "2024-05-01T12:00:00.123456789Z",
     "2024-05-01T12:00:00+00:00", "2024-02-29T23:59:60Z"],
)
def test_rfc3339_utc_timestamps_are_accepted(ts: str) -> None:
    assert DecisionRequest.model_validate({**_request(epistemic_risk=0.1), "ts": ts}).ts == ts


@pytest.mark.parametrize(
    "ts",
    ["2024-05-01", "2024-05-01 12:00:00Z", "2024-05-01T12:00:00", "2024-05-01T12:00:00+01:00",
     "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z", "１２３４-05-01T00:00:00Z"],
)
def test_other_timestamps_are_refused(ts: str) -> None:
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate({**_request(epistemic_risk=0.1), "ts": ts})


def test_timestamp_conversions() -> None:
    assert ts_to_ms("1970-01-01T00:00:00Z") == 0
    assert ts_to_ms(TS) == 1_714_564_800_123
    assert ts_to_ms("2024-05-01t12:00:00.1239z") == 1_714_564_800_123
    assert ts_to_ms("2016-12-31T23:59:60Z") == ts_to_ms("2016-12-31T23:59:59Z")
    assert ms_to_ts(1_714_564_800_123) == TS
    assert ms_to_ts(0) == "1970-01-01T00:00:00.000Z"
    with pytest.raises(ValueError):
        ts_to_ms("2024-05-01T12:00:00")


def test_every_event_has_the_common_fields() -> None:
    for model in EVENT_TYPES.values():
        assert {"event_id", "schema_version", "ts"} <= set(model.model_fields)
        assert issubclass(model, InputEvent) != issubclass(model, OutputEvent)


def test_outputs_require_ts_and_inputs_do_not() -> None:
    for model in EVENT_TYPES.values():
        assert model.model_fields["ts"].is_required() == issubclass(model, OutputEvent)


def test_outputs_are_built_from_python_with_nested_dicts_and_refuse_extras() -> None:
    decision = Decision(**sample("decision"))
    assert isinstance(decision.trust, TrustSummary) and decision.trust.calibrated_score is None
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        Decision(**sample("decision"), note="x")
    with pytest.raises(ValidationError):
        TrustSummary(**{**sample("decision")["trust"], "tier": "green"})


def test_decision_parts_are_nullable() -> None:
    event = sample("decision")
    event.update(budget=None, route=None, overlay=None)
    decision = Decision.model_validate(event)
    assert decision.budget is decision.route is decision.overlay is None
    assert Decision.model_validate({k: v for k, v in event.items() if k not in ("budget", "route", "overlay")}) == decision


def test_route_without_a_feasible_provider() -> None:
    event = sample("decision")
    event["route"] = {"provider_id": None, "mode": "explore", "policy": "epsilon_greedy", "violations": ["max_price"]}
    assert Decision.model_validate(event).route.provider_id is None  # type: ignore[union-attr]


def test_system_alerts_and_arbitrary_details() -> None:
    alert = Alert.model_validate(
        {**sample("alert"), "tenant": SYSTEM_TENANT, "source_event_id": None, "details": {"lag": [1, {"p": 2}]}}
    )
    assert alert.tenant == "_system"


def test_dead_letter_error_codes_are_open_ended() -> None:
    event = sample("dead-letter")
    event["error"] = {"code": "unknown_decision", "message": "decision_id 'x' is unknown"}
    event["key"] = None
    assert DeadLetter.model_validate(event).error.code == "unknown_decision"


@pytest.mark.parametrize("field", ["prev_hash", "hash"])
def test_audit_hashes_are_lowercase_sha256_hex(field: str) -> None:
    model = EVENT_TYPES["audit-record"]
    for bad in ["A" * 64, "0" * 63, "g" * 64]:
        with pytest.raises(ValidationError):
            model.model_validate({**sample("audit-record"), field: bad})


def test_models_are_pydantic_models() -> None:
    assert all(issubclass(model, BaseModel) for model in EVENT_TYPES.values())
