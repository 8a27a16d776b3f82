"""Reading the processor's topics: replies matched to their requests, and feeds.

The embedded broker under-reports end offsets, so "from now on" starts at
`true_end_offsets`, taken before anything is published: a reply can never come before
the reader is in place, and an older record is never taken for a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from resontinex.app.engine.connect import assigned_consumer
from resontinex.app.engine.offsets import true_end_offsets
from resontinex.app.engine.tail_reader import POLL_MS, TailReader
from resontinex.app.exceptions import BrokerError
from resontinex.schemas import InvalidEvent, decode

from .exceptions import ClientError, Unreachable

__all__ = ["Replies", "follow"]

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)


async def _consumer(bootstrap: str, topic: str, partitions: Callable[[int], list[int]] | None,
                    max_bytes: int) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    try:
        return await assigned_consumer(bootstrap, topic, partitions, max_bytes=max_bytes)
    except BrokerError as exc:
        raise Unreachable(str(exc)) from None


class Replies(TailReader, Generic[ModelT]):
    """Replies on one topic, each matched to the request it answers by `key(reply)`.

    `expect` registers the ids to wait for before their requests are published; `start`
    has placed the reader at the topic's end by then.
    """

    def __init__(self, bootstrap: str, topic: str, model: type[ModelT], key: Callable[[ModelT], str | None],
                 max_bytes: int) -> None:
        super().__init__(bootstrap, topic, max_bytes=max_bytes)
        self.model, self.key = model, key
        self._waiting: dict[str, asyncio.Future[ModelT]] = {}

    async def start(self) -> None:
        try:
            await super().start()
        except BrokerError as exc:
            raise Unreachable(str(exc)) from None

    def expect(self, request_ids: list[str]) -> dict[str, asyncio.Future[ModelT]]:
        loop = asyncio.get_running_loop()
        return {i: self._waiting.setdefault(i, loop.create_future()) for i in request_ids}

    def forget(self, request_ids: list[str]) -> None:
        for i in request_ids:
            self._waiting.pop(i, None)

    def stopped(self, error: BaseException | None) -> None:
        """Every request still waiting fails with the reader's error (none waits in vain),
        or is cancelled when the reader was stopped."""
        for future in self._waiting.values():
            if future.done():
                continue
            if error is None:
                future.cancel()
            else:
                future.set_exception(ClientError(f"reading {self.topic} at {self.bootstrap}: {error}"))
        self._waiting.clear()

    def on_record(self, value: bytes) -> None:
        if not self._waiting:
            return
        try:
            reply = decode(self.model, value, max_bytes=self.max_bytes)
        except InvalidEvent as exc:  # not the processor's: not an answer to anything
            log.warning("unreadable record on %s: %s", self.topic, exc)
            return
        key = self.key(reply)
        future = self._waiting.pop(key, None) if key is not None else None
        if future is not None and not future.done():
            future.set_result(reply)


async def follow(bootstrap: str, topic: str, model: type[ModelT], *, keep: Callable[[ModelT], bool],
                 partitions: Callable[[int], list[int]] | None = None, from_beginning: bool = False,
                 until_end: bool = False, max_bytes: int) -> AsyncGenerator[ModelT, None]:
    """`topic`'s records as `model`, those `keep` accepts, in order per partition: from now
    on (or from the beginning), for ever (or up to the end as it was when called)."""
    consumer, tps = await _consumer(bootstrap, topic, partitions, max_bytes)
    try:
        ends = await true_end_offsets(bootstrap, tps)
        starts = await consumer.beginning_offsets(tps) if from_beginning else ends
        for tp in tps:
            consumer.seek(tp, starts[tp])
        left = {tp for tp in tps if starts[tp] < ends[tp]} if until_end else set(tps)
        while left:
            batches = await consumer.getmany(*left, timeout_ms=POLL_MS)
            for tp, records in batches.items():
                for record in records:
                    if until_end and record.offset >= ends[tp]:
                        break
                    try:
                        event = decode(model, record.value, max_bytes=max_bytes)
                    except InvalidEvent as exc:
                        log.warning("unreadable record on %s at %s: %s", topic, record.offset, exc)
                        continue
                    if keep(event):
                        yield event
                if until_end and await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
