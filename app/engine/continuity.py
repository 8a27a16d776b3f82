"""Per-partition offset continuity: each input offset is processed once, none skipped.

Faust commits what its streams ack, and around a rebalance it acks (so commits)
messages it skipped as belonging to an old generation; a restarted or rebalanced worker
could then resume past records that nobody processed. The hot topics now come from
`app.engine.record_source`, which starts a partition at the agent's own next offset, but
the agents still keep that "next offset" per partition (the gate's recovered from the
audit topic, the budget's from its progress table) and, per batch, as a safety net:

* drops events below it (already processed: a redelivery);
* fetches and processes, first, any records between it and the batch's first event.

Against Kafka without transactions input offsets are contiguous, so a gap always means
records that were skipped; transaction markers only cost an empty fetch.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from resontinex.app import metrics
from resontinex.app.engine.security import client_options

log = logging.getLogger(__name__)

_STALL_TIMEOUT_S = 30.0  # without a single record fetched


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """The fields of a Faust message the gate reads, for a record fetched directly."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # seconds, as Faust gives it
    headers: tuple[tuple[str, bytes], ...] = ()


class FetchedEvent:
    """Stands in for a Faust event (tables read `.message`; Faust keeps a weak reference)."""

    def __init__(self, message: FetchedMessage) -> None:
        self.message = message


async def fetch_range(bootstrap: str, topic: str, partition: int, start: int, end: int) -> list[FetchedEvent]:
    """Records of `topic[partition]` with offsets in [start, end), oldest first."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_options(), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    try:
        await consumer.start()
        consumer.assign([tp])
        position = max(start, (await consumer.beginning_offsets([tp]))[tp])  # older records expired
        consumer.seek(tp, position)
        out: list[FetchedEvent] = []
        deadline = time.monotonic() + _STALL_TIMEOUT_S
        while position < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fetching {topic}[{partition}] {start}..{end} stalled at {position}")
            for record in (await consumer.getmany(tp, timeout_ms=200)).get(tp, ()):
                position = record.offset + 1
                deadline = time.monotonic() + _STALL_TIMEOUT_S
                if record.offset < end:
                    out.append(FetchedEvent(FetchedMessage(
                        topic, partition, record.offset, record.key, record.value, record.timestamp / 1000.0,
                        tuple(record.headers))))
            highwater = consumer.highwater(tp)
            if highwater is not None and position >= highwater:
                break  # the gap was only transaction markers or deleted records
        return out
    finally:
        await consumer.stop()


Fetch = Callable[[str, int, int, int], Awaitable[list[Any]]]


async def contiguous(events: Sequence[Any], next_offsets: dict[int, int | None], fetch: Fetch) -> tuple[list[Any], int, int]:
    """The batch with redeliveries dropped and gaps filled: `(events, dropped, fetched)`.

    `next_offsets[p]` is the first unprocessed offset of partition p, or None if unknown
    (a partition never seen: its first event starts it). Events keep their order within
    a partition; partitions are independent.
    """
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        by_partition[event.message.partition].append(event)
    out: list[Any] = []
    dropped = fetched = 0
    for partition, group in by_partition.items():
        expected = next_offsets.get(partition)
        for event in group:
            offset = event.message.offset
            if expected is not None and offset < expected:
                dropped += 1
                continue
            if expected is not None and offset > expected:
                log.warning("offset gap: fetching records the stream skipped",
                            extra={"topic": event.message.topic, "partition": partition, "from": expected, "to": offset})
                missing = await fetch(event.message.topic, partition, expected, offset)
                fetched += len(missing)
                out.extend(missing)
            out.append(event)
            expected = offset + 1
    return out, dropped, fetched


async def in_order(events: Sequence[Any], next_offsets: dict[int, int | None], bootstrap: str,
                   topic: str) -> list[Any]:
    """`contiguous` with gaps fetched from `bootstrap`, the drops and fetches counted on `topic`."""

    async def fetch(topic_: str, partition: int, start: int, end: int) -> list[FetchedEvent]:
        return await fetch_range(bootstrap, topic_, partition, start, end)

    out, redelivered, refetched = await contiguous(events, next_offsets, fetch)
    if redelivered:
        metrics.REDELIVERED.labels(topic).inc(redelivered)
    if refetched:
        metrics.REFETCHED.labels(topic).inc(refetched)
    return out
