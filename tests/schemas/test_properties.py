"""Property tests: round trips, and decode never fails other than with InvalidEvent."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.schemas import (
    ERROR_CODES,
    EVENT_TYPES,
    METRIC_LIMIT,
    DecisionRequest,
    InvalidEvent,
    Telemetry,
    decode,
    decode_key,
    encode,
    ms_to_ts,
    ts_to_ms,
)

from .samples import sample

unit = st.floats(min_value=0, max_value=1) | st.integers(min_value=0, max_value=1)
non_negative = st.floats(min_value=0, max_value=1e12) | st.integers(min_value=0, max_value=10**12)
names = st.text(min_size=1, max_size=40).filter(lambda s: not s.isspace() and s.strip() != "")
event_ids = st.text(min_size=1, max_size=128)
timestamps = st.integers(min_value=0, max_value=253_402_300_799_999).map(ms_to_ts)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


providers = st.fixed_dictionaries(
    {
        "provider_id": names,
        "price_usd_per_hour": non_negative,
        "latency_ms": non_negative,
        "reputation": st.floats(min_value=0, max_value=100),
    },
    optional={
        "capacity_available": non_negative,
        "gpu_types": st.lists(st.text(max_size=8), max_size=3),
        "regions": st.lists(st.text(max_size=8), max_size=3),
    },
)

decision_requests = st.fixed_dictionaries(
    {
        "event_id": event_ids,
        "tenant": names,
        "signals": st.fixed_dictionaries(
            {"alignment_score": unit, "confidence_band": unit}, optional={"epistemic_risk": unit}
        ),
    },
    optional={
        "schema_version": st.integers(min_value=1, max_value=5),
        "ts": timestamps,
        "workflow": names,
        "estimate": st.fixed_dictionaries(
            {},
            optional={
                "tokens": st.integers(min_value=0, max_value=2**63),
                "cost_usd": non_negative,
                "complexity": unit,
                "entropy": unit,
            },
        ),
        "routing": st.fixed_dictionaries(
            {},
            optional={
                "context": st.fixed_dictionaries({}, optional={"region": st.text(), "gpu_hours": non_negative}),
                "providers": st.lists(providers, max_size=3),
                "constraints": st.fixed_dictionaries({}, optional={"min_reputation": st.integers(0, 100)}),
            },
        ),
        "psi": st.fixed_dictionaries({"density": unit, "coherence": unit, "entropy": unit}),
        "text": st.text(min_size=1, max_size=200),
        "unknown": st.text(),
    },
).filter(lambda event: "epistemic_risk" in event["signals"] or "text" in event)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(decision_requests)
def test_valid_requests_decode_and_round_trip(event: dict[str, Any]) -> None:
    request = decode(DecisionRequest, orjson.dumps(event))
    assert request.tenant == event["tenant"]
    assert request.signals.alignment_score == event["signals"]["alignment_score"]
    assert decode(DecisionRequest, encode(request)) == request


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.floats(-METRIC_LIMIT, METRIC_LIMIT)))
def test_telemetry_round_trips(metrics: dict[str, float]) -> None:
    event = decode(Telemetry, orjson.dumps({"event_id": "t", "source": "node", "metrics": metrics}))
    assert event.metrics == metrics
    assert decode(Telemetry, encode(event)) == event


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: abs(v) > METRIC_LIMIT))
def test_a_metric_beyond_the_limit_is_out_of_range(value: float) -> None:
    """Window statistics (sums of squares) of bounded values stay finite."""
    with pytest.raises(InvalidEvent) as caught:
        decode(Telemetry, orjson.dumps({"event_id": "t", "source": "node", "metrics": {"m": value}}))
    assert caught.value.code == "out_of_range"


@settings(max_examples=300)
def _decodes_or_refuses_cleanly(raw: bytes) -> None:
    for model in EVENT_TYPES.values():
        try:
            decode(model, raw)
        except InvalidEvent as error:
            assert error.code in ERROR_CODES and error.message


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_exception(raw: bytes) -> None:
    _decodes_or_refuses_cleanly(raw)


@settings(max_examples=300)
@given(json_values)
def test_arbitrary_json_never_escapes_as_another_exception(value: Any) -> None:
    _decodes_or_refuses_cleanly(json.dumps(value).encode())  # stdlib json also writes integers beyond 64 bits


@settings(max_examples=300)
@given(st.sampled_from(sorted(EVENT_TYPES)), st.data())
def test_any_field_replaced_by_any_json_is_valid_or_an_invalid_event(name: str, data: st.DataObject) -> None:
    event = sample(name)
    field = data.draw(st.sampled_from(sorted(event)))
    event[field] = data.draw(json_values)
    try:
        decode(EVENT_TYPES[name], json.dumps(event).encode())
    except InvalidEvent as error:
        assert error.code in ERROR_CODES and error.message.startswith(field)


@given(st.sampled_from(["alignment_score", "epistemic_risk", "confidence_band"]),
       st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not 0 <= x <= 1))
def test_out_of_unit_values_are_out_of_range(field: str, value: float) -> None:
    event = sample("decision-request")
    event["signals"][field] = value
    try:
        decode(DecisionRequest, orjson.dumps(event))
    except InvalidEvent as error:
        assert error.code == "out_of_range" and error.message.startswith(f"signals.{field}: must be")
    else:
        raise AssertionError("accepted an out-of-range value")


@given(st.binary(max_size=40))
def test_keys_decode_or_fail_with_empty_key(raw: bytes) -> None:
    try:
        key = decode_key(raw)
    except InvalidEvent as error:
        assert error.code == "empty_key"
    else:
        assert key.strip() and key.encode() == raw


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_timestamps_round_trip(ms: int) -> None:
    assert ts_to_ms(ms_to_ts(ms)) == ms
