"""The dead-letter record of CONTRACT §4 for an input that could not be processed."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any

import orjson

from schemas import ms_to_ts

from . import metrics

log = logging.getLogger(__name__)

# A dead letter carries the original bytes, but a 10 MB value would make a 13 MB dead
# letter that no broker accepts with default limits: past this size the value is cut
# and the record says so (value_size, value_truncated, value_sha256 of the whole).
MAX_ECHO_BYTES = 256 * 1024


def dead_letter(msg: Any, code: str, message: str) -> bytes:
    """Encode the dead letter for a Faust/aiokafka message (`topic`, `partition`, `offset`, `key`, `value`)."""
    value: bytes = msg.value or b""
    key: bytes | None = msg.key
    record = {
        "event_id": dead_letter_id(msg),
        "schema_version": 1,
        "source_topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "value_base64": base64.b64encode(value[:MAX_ECHO_BYTES]).decode("ascii"),
        "value_size": len(value),
        "value_truncated": len(value) > MAX_ECHO_BYTES,
        "value_sha256": hashlib.sha256(value).hexdigest(),
        "error": {"code": code, "message": message},
        "ts": ms_to_ts(time.time_ns() // 1_000_000),
    }
    return orjson.dumps(record)


def dead_letter_id(msg: Any) -> str:
    """Deterministic, so a redelivered bad record yields the same id; ≤ 128 chars whatever the topic name."""
    return "dl-" + hashlib.blake2b(f"{msg.topic}\x1f{msg.partition}\x1f{msg.offset}".encode(), digest_size=16).hexdigest()


def send_dead_letter(sink: Any, dead_letters_topic: str, msg: Any, code: str, message: str) -> None:
    """Queue the dead letter on `sink` (same partition, original key), count and log it."""
    metrics.DEAD_LETTERS.labels(msg.topic, code).inc()
    log.warning("dead letter", extra={"event_id": dead_letter_id(msg), "topic": msg.topic, "partition": msg.partition,
                                      "offset": msg.offset, "code": code, "reason": message})
    sink.add(dead_letters_topic, msg.partition, msg.key or None, dead_letter(msg, code, message))
