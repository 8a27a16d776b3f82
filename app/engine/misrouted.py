"""Records on another partition than their key's are forwarded there, never processed (CONTRACT §1).

A tenant's state lives with the partition Kafka's default partitioner (murmur2) gives its
key. librdkafka clients (confluent-kafka, kcat, most non-Java clients) default to crc32,
so without this a tenant's costs or requests could land on two partitions, owned by two
workers, and its spend and dedupe would split. A record found on the wrong partition is
appended, unchanged (key, value, headers, timestamp), to its tenant's partition through
the output sink, whose flush the handler awaits before its input offsets are committed;
its copy there is processed like any other record, and a repeated forward of it (after a
crash) is dropped there as a repeated `event_id`.

Kafka records do not carry the producing client's id, so the warning is logged once per
topic and per partitioner the record's partition betrays (crc32 or other).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from resontinex.topics import partition_of_key

from resontinex.app import metrics
from resontinex.app.engine.seams import Event, Message, Sink

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

CRC32 = "crc32 (librdkafka's default consistent_random)"
OTHER = "another partitioner (random, or a custom one)"


def partitioner_guess(key: bytes, partition: int, partitions: int) -> str:
    """Which partitioner put `key` on `partition`, as far as the record shows.

    >>> partitioner_guess(b"tenant0", zlib.crc32(b"tenant0") % 4, 4) == CRC32
    True
    """
    return CRC32 if zlib.crc32(key) % partitions == partition else OTHER


class Forwarder:
    """Splits a batch into the records this partition owns and forwards the others."""

    def __init__(self, sink: Sink, partitions: int) -> None:
        self._sink, self._partitions = sink, partitions
        self._warned: set[tuple[str, str]] = set()

    def keep_own(self, events: Iterable[E]) -> list[E]:
        """The events whose record sits on its key's partition; the rest are queued on the
        sink for their key's partition (the caller's flush sends them) and counted as read
        (`EVENTS`: the handler counts those it keeps). A record without a key stays: its
        handler dead-letters it."""
        own = []
        for event in events:
            msg = event.message
            target = partition_of_key(msg.key, self._partitions) if msg.key else msg.partition
            if target == msg.partition:
                own.append(event)
                continue
            self._sink.add(msg.topic, target, msg.key, msg.value, timestamp_ms=round(msg.timestamp * 1000),
                           headers=_headers(msg.headers))
            metrics.MISROUTED.labels(msg.topic).inc()
            metrics.EVENTS.labels(msg.topic).inc()
            self._warn_once(msg, target)
        return own

    def _warn_once(self, msg: Message, target: int) -> None:
        guess = partitioner_guess(msg.key, msg.partition, self._partitions)
        if (msg.topic, guess) in self._warned:
            return
        self._warned.add((msg.topic, guess))
        log.warning(
            "records on another partition than their key's are forwarded to it; the producer uses %s: "
            "set partitioner=murmur2_random on librdkafka clients (Java and aiokafka already use murmur2)", guess,
            extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset, "key_partition": target},
        )


def _headers(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)
