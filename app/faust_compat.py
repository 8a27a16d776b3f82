"""The one place that reaches into Faust internals.

Faust tables take the changelog partition (and a windowed table its window) from the
*current event*, a context variable set only while a stream yields one event at a time.
The gate consumes batches (`app.batching`) and writes each key once per batch, so it sets
that context to the batch's last event of the key around the write. Pinned by
tests/app/test_faust_compat.py so a Faust upgrade that moves it is noticed.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from faust import streams
from faust.types import EventT


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    token = streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        streams._current_event.reset(token)


def use_true_highwaters(bootstrap: str) -> None:
    """Make Faust's changelog recovery read to the real end of each partition.

    Recovery takes its target from `end_offsets()` (ListOffsets), which the embedded
    broker under-reports; a worker restarted on its RocksDB store then finds its
    persisted offset "past the end" and crashes, or stops recovering early.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from .offsets import true_end_offsets

    original = getattr(AIOKafkaConsumerThread._highwaters, "__wrapped__", AIOKafkaConsumerThread._highwaters)

    async def _highwaters(self: AIOKafkaConsumerThread, partitions: list) -> Mapping[Any, int]:
        reported = await original(self, partitions)
        if self.consumer.in_transaction:
            return reported
        return await true_end_offsets(bootstrap, partitions, reported)

    _highwaters.__wrapped__ = original  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]


def use_fetch_max_wait(ms: int) -> None:
    """Replace the 1,500 ms fetch wait faust-streaming hard-codes for its consumer.

    Kafka answers a fetch as soon as one byte is there, so on Kafka the wait only bounds
    an idle poll; the embedded broker holds a fetch that found nothing until the wait
    expires, even when records arrive meanwhile, which put ~1.2 s of latency on every
    decision at moderate rates (bench/README.md).
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = getattr(AIOKafkaConsumerThread._create_worker_consumer, "__wrapped__",
                       AIOKafkaConsumerThread._create_worker_consumer)

    def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start() to build its fetcher
        return consumer

    _create_worker_consumer.__wrapped__ = original  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
