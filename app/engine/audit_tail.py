"""Read the tail of one audit partition: where its chain stands and what it already holds.

The audit topic is the durable record of every decision, so a worker that takes over a
partition rebuilds its dedupe window and chain head from it instead of trusting state
that may be older than the topic. ListOffsets is not trusted for the end (the embedded
broker under-reports it): we fetch until the fetch responses' high watermark is reached.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from resontinex.app.engine.security import client_options

_FETCH_TIMEOUT_MS = 200

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Tail:
    records: list[dict] = field(default_factory=list)
    next_offset: int = 0


async def read_tail(bootstrap: str, topic: str, partition: int, max_records: int, timeout_s: float = 30.0) -> Tail:
    """The last `max_records` (or a few more) records of `topic[partition]`, decoded, oldest first."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **client_options(),
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    try:
        await consumer.start()
        consumer.assign([tp])
        reported_end = (await consumer.end_offsets([tp]))[tp]
        if reported_end == 0:  # under-reporting needs at least one batch: 0 means empty
            return Tail()
        start = max(0, reported_end - max_records)
        consumer.seek(tp, start)
        tail = Tail(next_offset=start)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
            for msg in batch.get(tp, ()):
                tail.next_offset = msg.offset + 1
                try:
                    tail.records.append(orjson.loads(msg.value))
                except orjson.JSONDecodeError:
                    log.warning("undecodable audit record skipped", extra={"topic": topic, "partition": partition, "offset": msg.offset})
            highwater = consumer.highwater(tp)
            if not batch and highwater is not None and tail.next_offset >= highwater:
                break
        else:
            raise TimeoutError(f"reading the tail of {topic}[{partition}] took over {timeout_s}s")
        del tail.records[: max(0, len(tail.records) - max_records)]
        return tail
    finally:
        await consumer.stop()
