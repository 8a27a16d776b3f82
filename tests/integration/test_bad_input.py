"""Bad input never stops the stream: each kind goes to dead-letters with a precise reason."""

from __future__ import annotations

import base64

import orjson
import pytest

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration


def _good(i: int) -> tuple[bytes, bytes]:
    body = {"event_id": f"good-{i}", "tenant": "acme",
            "signals": {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}
    return b"acme", orjson.dumps(body)


def _signals(**over) -> bytes:
    body = {"event_id": "bad", "tenant": "acme",
            "signals": {"alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}
    body["signals"].update(over)
    return orjson.dumps(body)


BAD: list[tuple[str, bytes | None, bytes, str]] = [
    ("not json", b"acme", b"\x00\x01 not json {", "not_json"),
    ("json list", b"acme", b"[1, 2, 3]", "not_object"),
    ("missing field", b"acme", b'{"event_id": "m1", "tenant": "acme", "signals": {"alignment_score": 0.5, "epistemic_risk": 0.5}}', "missing_field"),
    ("wrong type", b"acme", _signals(alignment_score="high"), "wrong_type"),
    ("out of range", b"acme", _signals(confidence_band=1.5), "out_of_range"),
    ("nan", b"acme", b'{"event_id": "n1", "tenant": "acme", "signals": {"alignment_score": NaN, "epistemic_risk": 0.1, "confidence_band": 0.1}}', "not_finite"),
    ("infinity", b"acme", b'{"event_id": "n2", "tenant": "acme", "signals": {"alignment_score": 0.5, "epistemic_risk": Infinity, "confidence_band": 0.1}}', "not_finite"),
    ("10 MB value", b"acme", b'{"event_id": "big", "tenant": "acme", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}', "too_large"),
    ("empty key", b"", _signals(), "empty_key"),
    ("integer the audit cannot hold", b"acme",
     b'{"event_id": "i1", "tenant": "acme", "ignored": 9007199254740993, "signals": {"alignment_score": 0.5, '
     b'"epistemic_risk": 0.1, "confidence_band": 0.1}}', "out_of_range"),
]


def test_each_bad_input_is_dead_lettered_and_the_stream_goes_on(broker, tmp_path):
    items: list[tuple[bytes | None, bytes]] = []
    for i, (_, key, value, _) in enumerate(BAD):
        items.append(_good(i))
        items.append((key, value))
    items.append(_good(len(BAD)))
    items.append(_good(0))  # a repeated event_id: dropped and counted, not dead-lettered
    worker = start_worker(broker.bootstrap, tmp_path)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", items))
        decisions = run(read_all(broker.bootstrap, "decisions", expect=len(BAD) + 1))
        dead = run(read_all(broker.bootstrap, "dead-letters", expect=len(BAD)))

        assert sorted(d["request_id"] for *_, d in decisions) == sorted(f"good-{i}" for i in range(len(BAD) + 1))
        assert len(dead) == len(BAD)
        by_code = {rec["error"]["code"]: rec for *_, rec in dead}
        assert sorted(rec["error"]["code"] for *_, rec in dead) == sorted(code for *_, code in BAD)
        for _, key, value, code in BAD:
            rec = by_code[code] if code not in ("not_finite", "out_of_range") else None
            if rec is None:
                continue  # codes used twice: counted below
            assert rec["source_topic"] == "decision-requests" and rec["error"]["message"]
            assert rec["key"] == (key.decode() if key is not None else None)
            if code == "too_large":
                assert rec["value_truncated"] is True and rec["value_size"] == len(value)
            else:
                assert base64.b64decode(rec["value_base64"]) == value
        assert sum(rec["error"]["code"] == "out_of_range" for *_, rec in dead) == 2
        not_finite = sorted(base64.b64decode(rec["value_base64"]) for *_, rec in dead if rec["error"]["code"] == "not_finite")
        assert not_finite == sorted(v for _, _, v, c in BAD if c == "not_finite")
        _, body = worker.get("/metrics")
        assert b'resontinex_duplicates_total{topic="decision-requests"} 1.0' in body
        assert b'resontinex_dead_letters_total{code="not_json",topic="decision-requests"} 1.0' in body
    finally:
        worker.stop()
