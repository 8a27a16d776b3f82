"""One task reading a topic from (about) its end, for whoever waits on what comes next.

The client's replies and the gateway's book of decisions both place one consumer on every
partition of a topic, `lookback` records before each partition's true end
(`true_end_offsets`: the embedded broker under-reports ends), taken before `start`
returns, so nothing published afterwards can slip by; then one task hands each record's
bytes to `on_record`. They differ only in what they do with a record and with the callers
waiting when the reader stops.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from resontinex.app.engine.connect import assigned_consumer
from resontinex.app.engine.offsets import true_end_offsets
from resontinex.app.exceptions import BrokerError

__all__ = ["POLL_MS", "TailReader"]

POLL_MS = 200


class TailReader(ABC):
    """Reads `topic` at `bootstrap` from `lookback` records before its end, once started."""

    def __init__(self, bootstrap: str, topic: str, *, max_bytes: int, lookback: int = 0) -> None:
        self.bootstrap, self.topic, self.max_bytes, self.lookback = bootstrap, topic, max_bytes, lookback
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    def on_record(self, value: bytes) -> None:
        """One record's value, in order per partition (must not raise)."""

    def stopped(self, error: BaseException | None) -> None:
        """The reader stopped: `stop` was called (`error` None) or reading failed."""

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Place the reader (`BrokerError` when Kafka or the topic cannot be reached)."""
        consumer, tps = await assigned_consumer(self.bootstrap, self.topic, max_bytes=self.max_bytes)
        try:
            ends = await true_end_offsets(self.bootstrap, tps)
            begins = await consumer.beginning_offsets(tps) if self.lookback else ends
        except (KafkaError, TimeoutError) as exc:
            await consumer.stop()
            raise BrokerError(f"reading the end of {self.topic} at {self.bootstrap}: {exc}") from None
        except BaseException:
            await consumer.stop()
            raise
        for tp in tps:
            consumer.seek(tp, max(begins[tp], ends[tp] - self.lookback))
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(), name=f"tail-reader:{self.topic}")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        self.stopped(None)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            self.stopped(error)

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=POLL_MS)
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        self.on_record(record.value)
