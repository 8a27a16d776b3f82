import base64
import hashlib
from types import SimpleNamespace

import orjson

from resontinex.app.engine.deadletter import MAX_ECHO_BYTES, dead_letter
from resontinex.schemas import DeadLetter


def _msg(value, key=b"acme"):
    return SimpleNamespace(topic="decision-requests", partition=2, offset=41, key=key, value=value)


def test_carries_the_original_bytes_position_and_reason():
    rec = orjson.loads(dead_letter(_msg(b"\xff not json"), "not_json", "unexpected byte"))
    assert base64.b64decode(rec["value_base64"]) == b"\xff not json"
    assert (rec["source_topic"], rec["partition"], rec["offset"], rec["key"]) == ("decision-requests", 2, 41, "acme")
    assert rec["error"] == {"code": "not_json", "message": "unexpected byte"}
    DeadLetter.model_validate(rec)


def test_a_huge_value_is_cut_with_its_size_and_hash():
    value = b"x" * (MAX_ECHO_BYTES + 10)
    rec = orjson.loads(dead_letter(_msg(value, key=None), "too_large", "too big"))
    assert rec["value_truncated"] and rec["value_size"] == len(value) and rec["key"] is None
    assert len(base64.b64decode(rec["value_base64"])) == MAX_ECHO_BYTES
    assert rec["value_sha256"] == hashlib.sha256(value).hexdigest()
