"""decode / encode / decode_key: round trips and every error code."""

from __future__ import annotations

import time

import orjson
import pytest

from resontinex.schemas import (
    DEFAULT_MAX_BYTES,
    ERROR_CODES,
    EVENT_TYPES,
    Alert,
    DecisionRequest,
    InvalidEvent,
    Telemetry,
    decode,
    decode_key,
    encode,
)

from .samples import NAMES, sample


def _raw(**changes: object) -> bytes:
    """A decision request with top-level fields replaced (None removes the field)."""
    event = sample("decision-request")
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return orjson.dumps(event)


def _signals(**changes: object) -> dict[str, object]:
    signals = sample("decision-request")["signals"]
    signals.update(changes)
    return signals


def _error(raw: bytes | None, model: type = DecisionRequest, **kwargs: int) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        decode(model, raw, **kwargs)
    return caught.value


@pytest.mark.parametrize("name", NAMES)
def test_every_sample_round_trips(name: str) -> None:
    model = EVENT_TYPES[name]
    event = decode(model, orjson.dumps(sample(name)))
    assert decode(model, encode(event)) == event
    assert orjson.loads(encode(event)) == {**event.model_dump()}


def test_encode_writes_compact_utf8_json_for_models_and_dicts() -> None:
    event = decode(Telemetry, b'{"event_id": "t1", "source": "caf\xc3\xa9", "metrics": {}}')
    assert encode(event) == ('{"event_id":"t1","schema_version":1,"ts":null,"source":"café","metrics":{},'
                           '"enhancement_id":null,"arm":null}').encode()
    assert encode({"a": [1, 2.5, None]}) == b'{"a":[1,2.5,null]}'


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (None, "empty_value", "no value"),
        (b"", "empty_value", "no value"),
        (b"hello world", "not_json", "line 1 column 1"),
        (b'{"event_id": "r1",', "not_json", "line 1"),
        (b'{"a": 1} trailing', "not_json", "after document"),
        (b"\xff\xfe{}", "not_utf8", "byte 0 is 0xff"),
        (b'{"tenant": "acme\xc3\x28"}', "not_utf8", "byte 16 is 0xc3"),
        (b"[1, 2, 3]", "not_object", "an array"),
        (b'"a string"', "not_object", '"a string"'),
        (b"null", "not_object", "null"),
        (b"42", "not_object", "42"),
        (b'{"event_id": "r", "tenant": "t", "signals": {"alignment_score": NaN}}', "not_finite",
         "signals.alignment_score: must be a finite number (got NaN)"),
        (b'{"event_id": "r", "signals": {"confidence_band": -Infinity}}', "not_finite", "(got -Infinity)"),
        (b'{"event_id": "r", "signals": {"confidence_band": 1e999}}', "not_finite",
         "signals.confidence_band: must be a finite number (got 1e999)"),
        (b'{"event_id": "r", "ignored": [0, Infinity]}', "not_finite", "ignored[1]"),
        (_raw(tenant=None), "missing_field", "tenant: is required"),
        (_raw(signals={"alignment_score": 0.5, "epistemic_risk": 0.1}), "missing_field",
         "signals.confidence_band: is required"),
        (_raw(signals=_signals(alignment_score="0.5")), "wrong_type",
         'signals.alignment_score: must be a number (got "0.5")'),
        (_raw(signals=_signals(alignment_score=True)), "wrong_type",
         "signals.alignment_score: must be a number (got true)"),
        (_raw(estimate={"tokens": 12.0}), "wrong_type", "estimate.tokens: must be an integer (got 12.0)"),
        (_raw(estimate={"tokens": False}), "wrong_type", "estimate.tokens: must be an integer (got false)"),
        (_raw(tenant=7), "wrong_type", "tenant: must be a string (got 7)"),
        (_raw(signals=[0.1]), "wrong_type", "signals: must be an object (got an array)"),
        (_raw(routing={"providers": {}}), "wrong_type", "routing.providers: must be an array (got an object)"),
        (_raw(signals=_signals(alignment_score=1.5)), "out_of_range",
         "signals.alignment_score: must be ≤ 1 (got 1.5)"),
        (_raw(signals=_signals(confidence_band=-0.1)), "out_of_range",
         "signals.confidence_band: must be ≥ 0 (got -0.1)"),
        (_raw(estimate={"cost_usd": -1}), "out_of_range", "estimate.cost_usd: must be ≥ 0 (got -1)"),
        (_raw(event_id=""), "out_of_range", "event_id: must have at least 1 character (got 0)"),
        (_raw(event_id="e" * 129), "out_of_range", "event_id: must have at most 128 characters (got 129)"),
        (_raw(text="x" * 10_001), "out_of_range", "text: must have at most 10000 characters (got 10001)"),
        (_raw(ts="yesterday"), "invalid_value", "ts: must be an RFC 3339 UTC timestamp"),
        (_raw(ts="2024-05-01T12:00:00+02:00"), "invalid_value", "RFC 3339 UTC"),
        (_raw(ts="2023-02-29T00:00:00Z"), "invalid_value", "ts: is not a calendar date"),
        (_raw(tenant="   "), "invalid_value", 'tenant: must not be blank (got "   ")'),
    ],
)
def test_error_codes(raw: bytes | None, code: str, fragment: str) -> None:
    error = _error(raw)
    assert error.code == code
    assert fragment in error.message
    assert code in ERROR_CODES


def test_a_provider_out_of_range_names_its_list_index() -> None:
    routing = sample("decision-request")["routing"]
    routing["providers"].append({**routing["providers"][0], "provider_id": "vast", "reputation": 101})
    error = _error(_raw(routing=routing))
    assert (error.code, error.message) == ("out_of_range", "routing.providers[1].reputation: must be ≤ 100 (got 101)")


def test_odd_dict_keys_are_quoted_in_paths() -> None:
    error = _error(b'{"event_id": "t", "source": "s", "metrics": {"gpu.util": "high"}}', Telemetry)
    assert error.message == 'metrics["gpu.util"]: must be a number (got "high")'


def test_the_first_error_gives_the_code_and_every_error_is_listed() -> None:
    raw = _raw(tenant=None, signals=_signals(alignment_score="x", confidence_band=2))
    error = _error(raw)
    assert error.code == "missing_field"
    assert error.message == (
        "tenant: is required; "
        'signals.alignment_score: must be a number (got "x"); '
        "signals.confidence_band: must be ≤ 1 (got 2)"
    )


def test_a_long_error_list_is_cut() -> None:
    metrics = {f"m{i}": "x" for i in range(25)}
    error = _error(orjson.dumps({"event_id": "t", "source": "s", "metrics": metrics}), Telemetry)
    assert error.message.count("must be a number") == 10
    assert error.message.endswith("; and 15 more")


def test_long_offending_values_are_clipped() -> None:
    error = _error(_raw(tenant=" " * 200))
    assert len(error.message) < 100 and error.message.endswith('…")')


def test_a_huge_value_is_refused_before_parsing() -> None:
    raw = b"[" * (10 * 1024 * 1024)
    started = time.perf_counter()
    error = _error(raw)
    assert time.perf_counter() - started < 0.05
    assert error.code == "too_large"
    assert "10,485,760 bytes" in error.message and f"{DEFAULT_MAX_BYTES:,}" in error.message


def test_max_bytes_is_adjustable() -> None:
    raw = _raw()
    assert _error(raw, max_bytes=len(raw) - 1).code == "too_large"
    assert decode(DecisionRequest, raw, max_bytes=len(raw)).tenant == "acme"


def test_extra_input_fields_are_ignored_at_every_level() -> None:
    event = sample("decision-request")
    event["producer"] = {"name": "svc", "version": 3}
    event["signals"]["novelty"] = 0.4
    event["routing"]["providers"][0]["sla"] = "gold"
    request = decode(DecisionRequest, orjson.dumps(event))
    dumped = request.model_dump()
    assert "producer" not in dumped and "novelty" not in dumped["signals"]
    assert "sla" not in dumped["routing"]["providers"][0]


def test_extra_output_fields_are_refused() -> None:
    event = {**sample("alert"), "priority": 1}
    error = _error(orjson.dumps(event), Alert)
    assert (error.code, error.message) == ("invalid_value", "priority: is not a field of this event")


def test_a_nan_inside_a_string_is_just_text() -> None:
    request = decode(DecisionRequest, _raw(text="NaN and Infinity are words here"))
    assert request.text == "NaN and Infinity are words here"


@pytest.mark.parametrize("key", [None, b"", b"   ", b"\t\n", b"\xff\xfeacme"])
def test_unusable_keys(key: bytes | None) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_key(key)
    assert caught.value.code == "empty_key"


def test_keys_decode_as_utf8_unchanged() -> None:
    assert decode_key("zürich-42".encode()) == "zürich-42"
    assert decode_key(b" acme") == " acme"


def test_invalid_event_carries_code_and_message() -> None:
    error = InvalidEvent("key_mismatch", "key 'a' is not the event's tenant 'b'")
    assert (error.code, error.message) == ("key_mismatch", "key 'a' is not the event's tenant 'b'")
    assert str(error) == "key_mismatch: key 'a' is not the event's tenant 'b'"
    assert isinstance(error, ValueError)


def test_error_codes_constant() -> None:
    assert ERROR_CODES == (
        "too_large",
        "empty_value",
        "empty_key",
        "not_utf8",
        "not_json",
        "not_object",
        "not_finite",
        "missing_field",
        "wrong_type",
        "out_of_range",
        "invalid_value",
    )
