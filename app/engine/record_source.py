"""Record batches straight from aiokafka for the hot topics, while Faust keeps the group.

Why: Faust delivers one event at a time, ~100–140 µs an event here, and that is the whole
cost of an agent that only forwards (~6k/s); raw aiokafka consumes ~450k records/s. The hot
topics (decision-requests, costs, outcomes) are therefore read by this source's own aiokafka
consumer and handed to a handler as lists of `Record`, while Faust keeps everything that
makes a worker one member of a group: the subscription, the assignment (co-partitioned with
the tables' changelogs and standbys), table recovery, changelogs and the committed offsets.

How, per partition of a hot topic assigned to this worker (see `app.engine.faust_compat` for the
private API it takes):

1. Faust subscribes to the topic, but its own consumer pauses the partition in aiokafka at
   every assignment, so it never fetches or delivers it (`exclude_from_fetching`).
2. After `app.on_partitions_assigned`, the source waits for Faust's table recovery of that
   same generation (`app.on_rebalance_complete`), then asks `start_offset(topic, partition)`
   (None: the group's committed offset, else the earliest) and starts fetching.
3. A reader task appends fetched records to a buffer; a handler task takes what accumulated
   (`linger_s` after the first record arrived, at once when `max_batch` are waiting; the
   reader pauses while the buffer is full), awaits `handle(records)`, then asks for a commit.
4. Commits go through Faust's own group member (`commit_offsets`) after Faust's producer
   was flushed (a batch's table writes reach their changelogs before its offsets are
   committed), at most every `commit_interval_s`, and at once on revocation and shutdown.
5. On revocation (`app.on_partitions_revoked`, awaited by the rebalance) the source stops
   taking the partition's records, drops those not yet handed out, waits for the batch in
   flight, commits, and only then lets the rebalance go on; `on_revoked` runs last. Only
   the reader task moves the consumer: it re-points it (assign, seek) before it reads on.
   A worker never handles a record twice: it restarts a partition it gets back after what
   it handled, even where its commit was refused.

An unexpected error anywhere exits the process (`app.engine.failfast`): the uncommitted records are
redelivered to the next owner. Records are handled at least once across workers (after a
crash) and exactly once by one worker: it never rereads what it handed out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Collection, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import AppT
from mode import Service

from resontinex.app.engine.continuity import FetchedMessage
from resontinex.app.engine.failfast import crash_only
from resontinex.app.engine.security import client_options
from resontinex.app.engine.faust_compat import (before_consumer_stops, commit_offsets, exclude_from_fetching,
                                                recovery_pending)

__all__ = ["Handler", "Lifecycle", "OnRevoked", "Record", "RecordSource", "StartOffset", "label"]

log = logging.getLogger(__name__)

Record = FetchedMessage
"""One record: topic, partition, offset, key, value, timestamp (seconds), headers.

The fields of a Faust message that handlers read; `app.continuity.FetchedEvent(record)`
stands in for a Faust event where a table write needs one (`faust_compat.event_context`).
"""

Handler = Callable[[list[Record]], Awaitable[None]]
StartOffset = Callable[[str, int], Awaitable["int | None"]]
OnRevoked = Callable[[frozenset[TopicPartition]], Awaitable[None]]


class Lifecycle:
    """Where a worker's partitions are revoked, in one order for every agent: each record
    source stops taking the partitions' records, finishes its batch in flight and commits;
    then `flush` (the shared output sink); then each `forget` drops what the worker kept
    for them (partition state, recovered ids). mode calls a signal's receivers in no set
    order, so the sources do not each answer `on_partitions_revoked` themselves.

    When the app stops, the sources stop (batch in flight finished, offsets committed) and
    the sink is flushed first, before Faust stops its tables and its consumer."""

    def __init__(self, app: AppT, flush: Callable[[], Awaitable[None]]) -> None:
        self.sources: list[RecordSource] = []
        self.forget: list[Callable[[set[Any]], None]] = []
        self.stopping: list[Callable[[], Awaitable[None]]] = []
        """Awaited first when the app stops (agents whose tasks outlive a batch end them here)."""
        self.revoking: list[Callable[[], Awaitable[None]]] = []
        """Awaited with the sources' revoke: work in flight outside a source (a timer's) finishes first."""
        self._flush = flush
        app.on_partitions_revoked.connect(self._revoked)  # type: ignore[arg-type]
        before_consumer_stops(app, self._stopping)

    async def _stopping(self) -> None:
        await asyncio.gather(*(stop() for stop in self.stopping))
        await asyncio.gather(*(source.stop() for source in self.sources))
        await self._flush()

    async def _revoked(self, app: AppT, revoked: Collection[Any], **_: Any) -> None:
        await asyncio.gather(*(source.revoke(revoked) for source in self.sources),
                             *(finish() for finish in self.revoking))
        await self._flush()  # nothing of ours for these partitions lands after the next owner reads their tail
        for forget in self.forget:
            forget(set(revoked))

_POLL_MS = 200  # how long one getmany waits for records before the reader looks again
_FINAL_COMMIT_TIMEOUT_S = 10.0  # at shutdown: Faust's consumer may be going away


def label(tp: TopicPartition) -> str:
    """How logs name a partition.

    >>> label(TopicPartition("decision-requests", 3))
    'decision-requests[3]'
    """
    return f"{tp.topic}[{tp.partition}]"


class RecordSource(Service):
    """Hands the records of `topics` to `handle` in batches, for the partitions Faust assigns.

    Construct it before the app starts and add it to the app's services
    (`app.add_dependency(source)`, or `attach`); no Faust agent may read these topics.
    `handle` must make its outputs durable before it returns (flush and await the acks):
    its records' offsets are committed after it returned.
    """

    def __init__(self, app: AppT, topics: Sequence[str], handle: Handler, *, bootstrap: str,
                 fetch_max_wait_ms: int, start_offset: StartOffset | None = None,
                 on_revoked: OnRevoked | None = None, max_batch: int = 4000, linger_s: float = 0.02,
                 commit_interval_s: float | None = None, max_partition_fetch_bytes: int = 4 * 1024 * 1024,
                 name: str = "record-source", lifecycle: Lifecycle | None = None, **kwargs: Any) -> None:
        if max_batch < 1 or linger_s < 0:
            raise ValueError(f"max_batch must be ≥ 1 and linger_s ≥ 0, got {max_batch}, {linger_s}")
        self.app = app
        self.topics = frozenset(topics)
        self.name = name
        self._handle, self._start_offset, self._on_revoked = handle, start_offset, on_revoked
        self._bootstrap, self._fetch_max_wait_ms = bootstrap, fetch_max_wait_ms
        self._max_partition_fetch_bytes = max_partition_fetch_bytes
        self.max_batch, self.linger_s = max_batch, linger_s
        self.commit_interval_s = float(app.conf.broker_commit_interval if commit_interval_s is None
                                       else commit_interval_s)
        self._consumer: AIOKafkaConsumer | None = None
        self._owned: dict[TopicPartition, int] = {}  # fetching → next offset to fetch
        self._handled_next: dict[TopicPartition, int] = {}  # → after the last record handed out and handled
        self._epoch = self._applied = 0  # `_owned` changed / the consumer's assignment caught up
        self._assigned: tuple[int, frozenset[TopicPartition]] | None = None  # waiting for its recovery
        self._recovered_generation: int | None = None
        self._starter: asyncio.Future[None] | None = None
        self._pending: list[Record] = []
        self._pending_next: dict[TopicPartition, int] = {}  # next offsets of what `_pending` holds
        self._first_at = 0.0
        self._uncommitted: dict[TopicPartition, tuple[int, int]] = {}  # → (next offset, generation)
        self._last_commit = 0.0
        self._workers: list[asyncio.Future[None]] = []  # reader, handler, committer
        super().__init__(loop=app.loop, **kwargs)
        self._has_work, self._full, self._can_read = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._commit_wanted = asyncio.Event()
        self._handling, self._committing = asyncio.Lock(), asyncio.Lock()
        for name_ in sorted(self.topics):  # Faust subscribes (and so assigns) but never delivers
            app.topics.add(app.topic(name_, key_serializer="raw", value_serializer="raw"))
        exclude_from_fetching(app, self.topics)
        # mode types receivers as taking any arguments; these take what each signal sends
        if lifecycle is None:
            app.on_partitions_revoked.connect(self._revoked_signal)  # type: ignore[arg-type]
        else:  # revoked with the worker's other sources, before its shared state is forgotten
            lifecycle.sources.append(self)
        app.on_partitions_assigned.connect(self._assigned_signal)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(self._recovered_signal)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._shutdown_signal)  # type: ignore[arg-type]

    @classmethod
    def attach(cls, app: AppT, topics: Sequence[str], handle: Handler, **kwargs: Any) -> "RecordSource":
        """Build a source and add it to `app`'s services (started and stopped with it)."""
        source = cls(app, topics, handle, **kwargs)
        app.add_dependency(source)
        return source

    @property
    def partitions(self) -> frozenset[TopicPartition]:
        """The partitions being fetched now."""
        return frozenset(self._owned)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end as the last fetch saw it (None before one, or when not fetched here):
        Faust's own consumer never fetches these partitions, so it cannot say."""
        if self._consumer is None or tp not in self._owned:
            return None
        end: int | None = self._consumer.highwater(tp)
        return end

    # ------------------------------------------------------------------ service

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, **client_options(),
            group_id=self.app.conf.id,  # only to read the group's committed offsets: it never joins
            client_id=f"{self.app.conf.broker_client_id}-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a start offset whose records expired
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_partition_fetch_bytes=self._max_partition_fetch_bytes,
        )
        await self._consumer.start()
        self._workers = [asyncio.ensure_future(f()) for f in (self._read, self._handle_batches, self._commit_loop)]

    async def on_stop(self) -> None:
        """Stop fetching, let the batch in flight finish, commit, close the consumer."""
        self._assigned = None
        await self._cancel_starter()
        reader, others = (self._workers[0], self._workers[1:]) if self._workers else (None, [])
        await _cancel(reader)
        self._drop(set(self._owned))
        self._owned.clear()
        async with self._handling:
            pass
        async with self._committing:  # a commit under way finishes before its loop is cancelled
            for task in others:
                await _cancel(task)
        if self._uncommitted and not self.app.consumer.should_stop:
            try:
                await asyncio.wait_for(self._commit(), _FINAL_COMMIT_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("final commit timed out; the next owner re-reads from the last one",
                            extra={"source": self.name})
        if self._consumer is not None:
            await self._consumer.stop()

    # ------------------------------------------------------------------ rebalance

    async def _assigned_signal(self, app: AppT, assigned: Collection[Any], **_: Any) -> None:
        hot = frozenset(TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic in self.topics)
        self._assigned = (app.consumer_generation_id, hot)
        self._maybe_start()

    async def _recovered_signal(self, app: AppT, **_: Any) -> None:
        if not recovery_pending(app):
            self._recovered_generation = app.consumer_generation_id
            self._maybe_start()

    def _maybe_start(self) -> None:
        """Start the assignment's partitions once its own generation's tables are recovered."""
        if self._assigned is None or self.should_stop:
            return
        generation, tps = self._assigned
        if generation != self._recovered_generation or generation != self.app.consumer_generation_id:
            return
        self._assigned = None
        new = tps - self._owned.keys()
        if new:  # not in the signal: Faust's recovery waits for its receivers
            self._starter = asyncio.ensure_future(self._start(generation, new))

    async def _start(self, generation: int, tps: frozenset[TopicPartition]) -> None:
        async with crash_only(self.name):
            positions = {tp: await self._start_position(tp) for tp in sorted(tps)}
            if generation != self.app.consumer_generation_id:
                return  # a revocation cancels this task; a generation moved on without one is stale too
            self._owned.update(positions)
            self._changed()
            log.info("record source fetching", extra={
                "source": self.name, "positions": {label(tp): offset for tp, offset in sorted(positions.items())}})

    async def _start_position(self, tp: TopicPartition) -> int:
        offset = await self._start_offset(tp.topic, tp.partition) if self._start_offset is not None else None
        if offset is None:
            offset = await self._aiokafka.committed(tp)
        if offset is None:
            offset = (await self._aiokafka.beginning_offsets([tp]))[tp]
        handled = self._handled_next.get(tp, 0)
        if handled > offset:  # e.g. our commit at the last revocation was refused: never handle twice
            log.warning("starting after what this worker already handled", extra={
                "source": self.name, "partition": label(tp), "start": offset, "handled": handled})
        return max(int(offset), handled)

    async def _revoked_signal(self, app: AppT, revoked: Collection[Any], **_: Any) -> None:
        await self.revoke(revoked)

    async def revoke(self, revoked: Collection[Any]) -> None:
        """Stop taking `revoked`'s records, let the batch in flight finish, commit, then `on_revoked`."""
        hot = frozenset(TopicPartition(tp.topic, tp.partition) for tp in revoked if tp.topic in self.topics)
        self._assigned = None
        async with crash_only(self.name):
            await self._cancel_starter()
            gone = hot & self._owned.keys()
            if gone:
                for tp in gone:
                    del self._owned[tp]
                self._changed()
                self._drop(gone)
                async with self._handling:  # the batch in flight finishes before the next owner starts
                    pass
                await self._commit(gone)
            if hot and self._on_revoked is not None:
                await self._on_revoked(hot)

    async def _shutdown_signal(self, app: AppT, **_: Any) -> None:
        await self.stop()  # while Faust's consumer still runs, so the last commit can go through it

    async def _cancel_starter(self) -> None:
        starter, self._starter = self._starter, None
        await _cancel(starter)

    def _changed(self) -> None:
        """`_owned` gained or lost partitions: the reader re-points the consumer before it reads on."""
        self._epoch += 1
        self._update_can_read()

    def _drop(self, tps: Collection[TopicPartition]) -> None:
        """Forget the buffered records of `tps`: not handed out, so not committed either."""
        if any(tp in self._pending_next for tp in tps):
            self._pending = [r for r in self._pending if (r.topic, r.partition) not in tps]
            for tp in tps:
                self._pending_next.pop(tp, None)
            if not self._pending:
                self._has_work.clear()
            self._full.clear()
        self._update_can_read()

    # ------------------------------------------------------------------ reading and handling

    async def _read(self) -> None:
        """The one task that moves the consumer: rebalance hooks only edit `_owned`."""
        consumer = self._aiokafka
        async with crash_only(self.name):
            while True:
                await self._can_read.wait()
                epoch = self._epoch
                if self._applied != epoch:
                    consumer.assign(list(self._owned))  # replaces the assignment, drops what was prefetched
                    for tp, offset in self._owned.items():
                        consumer.seek(tp, offset)
                    self._applied = epoch
                    self._update_can_read()
                    continue
                room = self.max_batch - len(self._pending)
                fetched = await consumer.getmany(timeout_ms=_POLL_MS, max_records=room)
                if fetched and epoch == self._epoch:  # else: re-pointed (and re-sought) first, nothing lost
                    self._take(fetched)

    def _take(self, fetched: Mapping[TopicPartition, list[Any]]) -> None:
        pending, owned = self._pending, self._owned
        was_empty = not pending
        for tp, records in fetched.items():
            if tp not in owned or not records:
                continue
            topic, partition = tp.topic, tp.partition
            pending.extend([Record(topic, partition, r.offset, r.key, r.value, r.timestamp / 1000.0, r.headers)
                            for r in records])
            owned[tp] = self._pending_next[tp] = records[-1].offset + 1
        if pending:
            if was_empty:
                self._first_at = time.monotonic()
                self._has_work.set()
            if len(pending) >= self.max_batch:
                self._full.set()
        self._update_can_read()

    def _update_can_read(self) -> None:
        if self._applied != self._epoch or (self._owned and len(self._pending) < self.max_batch):
            self._can_read.set()
        else:
            self._can_read.clear()

    async def _handle_batches(self) -> None:
        async with crash_only(self.name):
            while True:
                await self._has_work.wait()
                linger = self._first_at + self.linger_s - time.monotonic()
                if linger > 0 and not self._full.is_set():
                    try:
                        await asyncio.wait_for(self._full.wait(), linger)
                    except asyncio.TimeoutError:
                        pass
                async with self._handling:  # taken at once after the lock: a revocation waits for it
                    batch, offsets = self._pending, self._pending_next
                    self._pending, self._pending_next = [], {}
                    self._has_work.clear()
                    self._full.clear()
                    self._update_can_read()
                    if not batch:
                        continue
                    generation = self.app.consumer_generation_id
                    await self._handle(batch)
                    self._handled_next.update(offsets)
                    for tp, offset in offsets.items():
                        self._uncommitted[tp] = (offset, generation)
                self._commit_wanted.set()

    # ------------------------------------------------------------------ commits

    async def _commit_loop(self) -> None:
        async with crash_only(self.name):
            while True:
                await self._commit_wanted.wait()
                wait = self._last_commit + self.commit_interval_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._commit_wanted.clear()
                await self._commit()

    async def _commit(self, tps: Collection[TopicPartition] | None = None) -> None:
        """Commit the handled offsets of `tps` (all by default) of the current generation."""
        async with self._committing:
            generation = self.app.consumer_generation_id
            chosen = {tp: self._uncommitted[tp] for tp in (self._uncommitted if tps is None else tps)
                      if tp in self._uncommitted}
            offsets = {tp: offset for tp, (offset, handled_in) in chosen.items() if handled_in == generation}
            for tp, entry in chosen.items():
                if entry[1] != generation:  # handled under an older generation: not ours to commit
                    del self._uncommitted[tp]
            if not offsets:
                return
            self._last_commit = time.monotonic()
            await self.app.producer.flush()  # the batches' table writes are in their changelogs first
            committed = await commit_offsets(self.app, offsets)
            for tp in offsets:  # kept until now: a stop cancelling this commit leaves them for the final one
                if self._uncommitted.get(tp) == chosen[tp]:
                    del self._uncommitted[tp]
            if not committed:
                log.warning("commit refused (the group rebalanced); the next owner re-reads from the last one",
                            extra={"source": self.name, "offsets": {label(tp): o for tp, o in offsets.items()}})

    @property
    def _aiokafka(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"{self.name} used before it started")
        return self._consumer


async def _cancel(task: asyncio.Future[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
