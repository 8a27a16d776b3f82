"""The dead-letter record of CONTRACT §4 for an input that could not be processed."""

from __future__ import annotations

import logging
import time
from resontinex.agents import effects
from resontinex.agents.effects import MAX_ECHO_BYTES, Record, dead_letter_id

__all__ = ["MAX_ECHO_BYTES", "dead_letter", "dead_letter_id", "send_dead_letter"]

from resontinex.app import metrics
from resontinex.app.engine.seams import Sink

log = logging.getLogger(__name__)


def dead_letter(msg: Record, code: str, message: str) -> bytes:
    """Encode the dead letter for a Faust/aiokafka message (`topic`, `partition`, `offset`, `key`, `value`)."""
    return effects.dead_letter(msg, code, message, time.time_ns() // 1_000_000).value


def send_dead_letter(sink: Sink, dead_letters_topic: str, msg: Record, code: str, message: str) -> None:
    """Queue the dead letter on `sink` (same partition, original key), count and log it."""
    metrics.DEAD_LETTERS.labels(msg.topic, code).inc()
    log.warning("dead letter", extra={"event_id": dead_letter_id(msg), "topic": msg.topic, "partition": msg.partition,
                                      "offset": msg.offset, "code": code, "reason": message})
    sink.add(dead_letters_topic, msg.partition, msg.key or None, dead_letter(msg, code, message))
