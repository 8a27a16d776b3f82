"""The one place that reaches into Faust's and aiokafka's private API.

Each use is pinned by tests/app/engine/test_faust_compat.py, so a Faust upgrade that moves it is
noticed:

* `event_context`: Faust tables take the changelog partition (and a windowed table its
  window) from the *current event*, a context variable set only while a stream yields one
  event at a time. Batch handlers write each key once per batch, so they set that context
  to the batch's last event of the key around the write.
* `use_true_highwaters`, `use_fetch_max_wait`: the changelog recovery's end offsets and
  the consumer's fetch wait (the embedded broker, see their docstrings).
* `exclude_from_fetching`, `commit_offsets`, `recovery_pending`, `before_consumer_stops`:
  what `app.engine.record_source` needs to take the hot topics' records from its own
  aiokafka consumer while Faust keeps the group, the assignment and the tables.
* `rewind_uncommitted`: after a rebalance, a partition of a topic its agent commits itself
  that has no commit yet is read again from its beginning.
* `positions_past`, `read_again`: a topic's consumer positions, and a seek back that Faust's
  fetch loop follows (it drops a record below the partition's last delivered offset).
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterable, Iterator, Mapping

from aiokafka import TopicPartition
from faust import streams
from faust.types import TP, AppT, EventT


@contextmanager
def event_context(event: EventT[Any]) -> Iterator[None]:
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

    from resontinex.app.engine.offsets import true_end_offsets

    original = getattr(AIOKafkaConsumerThread._highwaters, "__wrapped__", AIOKafkaConsumerThread._highwaters)

    async def _highwaters(self: AIOKafkaConsumerThread, partitions: list[Any]) -> Mapping[Any, int]:
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


# --------------------------------------------------------------------------- record batches past Faust's delivery
# `app.engine.record_source` takes the hot topics' records from its own aiokafka consumer.
# Faust still subscribes to those topics (its assignor then assigns their partitions
# co-partitioned with the tables' changelogs and standbys) but must never fetch or deliver
# them, and the group's committed offsets must move through Faust's group member.

_EXCLUDED: "weakref.WeakKeyDictionary[Any, frozenset[str]]" = weakref.WeakKeyDictionary()


def exclude_from_fetching(app: AppT, topics: Iterable[str]) -> None:
    """Keep `app`'s own consumer off `topics`: assigned to it, never fetched or delivered.

    Each assignment, before Faust sees it, the listener Faust gives aiokafka pauses the
    partitions of `topics` on Faust's aiokafka consumer, in the consumer's own thread.
    aiokafka's fetcher sends no fetch for a paused partition and drops any records already
    fetched for it, and Faust never calls aiokafka's pause/resume itself (its own
    pause/resume only edits the set it passes to `fetched_records`), so the pause holds
    until the next assignment, where it is made again. Faust's livelock check would log
    "no fetch request since start" for such a partition every 2.5 s: it skips them.
    """
    _EXCLUDED[app] = _EXCLUDED.get(app, frozenset()) | frozenset(topics)
    _pause_excluded_on_assignment()
    _skip_excluded_in_livelock_check()


def excluded_topics(app: AppT) -> frozenset[str]:
    return _EXCLUDED.get(app, frozenset())


def _pause_excluded_on_assignment() -> None:
    from faust.transport.drivers.aiokafka import ConsumerRebalanceListener

    listener = ConsumerRebalanceListener
    original = getattr(listener.on_partitions_assigned, "__wrapped__", listener.on_partitions_assigned)

    async def on_partitions_assigned(self: Any, assigned: Iterable[Any]) -> None:
        assigned = set(assigned)
        thread = self._thread
        excluded = _EXCLUDED.get(thread.app)
        if excluded:
            hot = [tp for tp in assigned if tp.topic in excluded]
            if hot:
                thread._ensure_consumer().pause(*hot)  # in the consumer's thread, as aiokafka needs
        await original(self, assigned)

    on_partitions_assigned.__wrapped__ = original  # type: ignore[attr-defined]
    listener.on_partitions_assigned = on_partitions_assigned  # type: ignore[method-assign]


def _skip_excluded_in_livelock_check() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = getattr(AIOKafkaConsumerThread.verify_event_path, "__wrapped__",
                       AIOKafkaConsumerThread.verify_event_path)

    def verify_event_path(self: AIOKafkaConsumerThread, now: float, tp: TP) -> None:
        if tp.topic not in _EXCLUDED.get(self.app, ()):
            original(self, now, tp)

    verify_event_path.__wrapped__ = original  # type: ignore[attr-defined]
    AIOKafkaConsumerThread.verify_event_path = verify_event_path  # type: ignore[method-assign]


async def commit_offsets(app: AppT, offsets: Mapping[TP, int]) -> bool:
    """Commit `offsets` (next offset to read, per partition) for `app`'s consumer group.

    Through Faust's own group member, in its consumer thread: aiokafka stamps the commit
    with the member id and generation of the moment it is sent, Faust drops partitions no
    longer assigned, and a commit refused because the group rebalanced meanwhile returns
    False (the partition's next owner starts from the last accepted commit). Any other
    failure crashes Faust's consumer, as its own commits do.
    """
    return bool(await app.consumer._commit(offsets))  # type: ignore[attr-defined]


def recovery_pending(app: AppT) -> bool:
    """Whether an assignment's table recovery is signalled but not yet begun.

    `app.on_rebalance_complete` carries no generation: a recovery interrupted by the next
    rebalance can still send it. Set from the moment a new assignment reaches the tables
    until the recovery task picks it up, this flag tells that late signal apart.
    """
    return bool(app.tables.recovery.signal_recovery_start.is_set())  # type: ignore[attr-defined]


def before_consumer_stops(app: AppT, stop: Callable[[], Awaitable[None]]) -> None:
    """Await `stop` first when `app` stops, while its tables and its consumer still run.

    `App.on_stop` stops the fetcher and the tables (`_stop_consumer`) before it sends
    `on_before_shutdown`; a batch of our own still in flight then would write to stopped
    tables. Patched on this app instance only.
    """
    original = app._stop_consumer  # type: ignore[attr-defined]

    async def _stop_consumer() -> None:
        try:
            await stop()
        finally:  # Faust's own shutdown goes on whatever ours met
            await original()

    app._stop_consumer = _stop_consumer  # type: ignore[attr-defined]



async def rewind_uncommitted(app: AppT, topic: str) -> tuple[dict[int, int], list[int]]:
    """Seek each assigned partition of `topic` that has no committed offset to its beginning;
    the offset every assigned partition starts from (its commit, or its beginning), and the
    partitions sought.

    Call it on `app.on_rebalance_complete`, which Faust sends just before it seeks every
    partition to its committed offset. aiokafka's `seek_to_committed` skips a partition
    whose commit is missing (or 0) and leaves it where the fetcher stands, which can be past
    an event Faust fetched in the generation that just ended and skipped: that event would
    never be processed.
    """
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._ensure_consumer()
    assigned = [tp for tp in consumer.assignment() if tp.topic == topic]

    async def rewind() -> tuple[dict[int, int], list[int]]:
        starts, sought = {}, []
        for tp in assigned:
            committed = await consumer.committed(tp)
            if not committed:
                await consumer.seek_to_beginning(tp)
                sought.append(tp.partition)
            starts[tp.partition] = committed or await consumer.position(tp)
        return starts, sought

    found: tuple[dict[int, int], list[int]] = await thread.call_thread(rewind)
    return found


async def positions_past(app: AppT, topic: str, expected: Mapping[int, int]) -> dict[int, int]:
    """The assigned partitions of `topic` whose consumer position is past `expected[p]`
    (the next offset the agent expects), with that position."""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._ensure_consumer()

    async def past() -> dict[int, int]:
        found = {}
        for tp in consumer.assignment():
            if tp.topic == topic and tp.partition in expected:
                position = await consumer.position(tp)
                if position > expected[tp.partition]:
                    found[tp.partition] = position
        return found

    positions: dict[int, int] = await thread.call_thread(past)
    return positions


async def read_again(app: AppT, topic: str, offsets: Mapping[int, int]) -> None:
    """Seek the partitions of `topic` back to `offsets`, so Faust fetches and delivers those
    records again: its fetch loop drops a record below the partition's last delivered
    offset, which is forgotten here."""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._ensure_consumer()
    for partition, offset in offsets.items():
        app.consumer._read_offset.pop(TP(topic, partition), None)  # type: ignore[attr-defined]
        await thread.call_thread(_seek, consumer, TopicPartition(topic, partition), offset)


async def _seek(consumer: Any, tp: TopicPartition, offset: int) -> None:
    consumer.seek(tp, offset)
