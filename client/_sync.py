"""The blocking client: the async one, run on an event loop of its own in a thread.

>>> with SyncClient("127.0.0.1:9092") as client:                            # doctest: +SKIP
...     print(client.decide({"event_id": "r-1", "tenant": "acme", "signals": {
...         "alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}).verb)
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Generator, Iterable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from resontinex.schemas import (Alert, AuditRecord, CoordinationResult, Cost, Decision, DecisionRequest, Outcome,
                                TrajectoryResult)

from ._client import Client, Event

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """`Client`'s methods, blocking; its feeds are plain iterators. Close it (or use `with`)."""

    def __init__(self, bootstrap: str | None = None, *, topic_prefix: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="resontinex-client", daemon=True)
        self._thread.start()
        self._feeds: weakref.WeakSet[Generator[Any, None, None]] = weakref.WeakSet()
        self.client = Client(bootstrap, topic_prefix=topic_prefix, **options)
        try:
            self._run(self.client.start())
        except BaseException:
            self._stop_loop()
            raise

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the feeds still open, then the client."""
        if self._thread.is_alive():
            try:
                for feed in list(self._feeds):
                    feed.close()
                self._run(self.client.close())
            finally:
                self._stop_loop()

    def decide(self, request: Event, *, timeout: float = 30.0) -> Decision:
        return self._run(self.client.decide(request, timeout=timeout))

    def decide_many(self, requests: Iterable[Event], *, timeout: float = 30.0) -> list[Decision]:
        return self._run(self.client.decide_many(list(requests), timeout=timeout))

    def score_text(self, request: Event, *, timeout: float = 60.0) -> TrajectoryResult:
        return self._run(self.client.score_text(request, timeout=timeout))

    def coordinate(self, request: Event, *, timeout: float = 600.0) -> CoordinationResult:
        return self._run(self.client.coordinate(request, timeout=timeout))

    def submit(self, request: Event) -> DecisionRequest:
        return self._run(self.client.submit(request))

    def publish(self, event: DecisionRequest | Outcome | Cost) -> None:
        self._run(self.client.publish(event))

    def report_outcome(self, outcome: Event) -> None:
        self._run(self.client.report_outcome(outcome))

    def report_cost(self, cost: Event) -> None:
        self._run(self.client.report_cost(cost))

    def decisions(self, **filters: Any) -> Iterator[Decision]:
        """`Client.decisions` (same filters), as an iterator."""
        return self._iterate(self.client.decisions(**filters))

    def alerts(self, **filters: Any) -> Iterator[Alert]:
        return self._iterate(self.client.alerts(**filters))

    def replay(self, *, tenant: str | None = None, kind: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> Iterator[AuditRecord]:
        return self._iterate(self.client.replay(tenant=tenant, kind=kind, since=since, until=until))

    def _run(self, step: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_awaited(step), self._loop).result()

    def _iterate(self, feed: AsyncGenerator[T, None]) -> Iterator[T]:
        iterator = self._follow(feed)
        self._feeds.add(iterator)
        return iterator

    def _follow(self, feed: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        try:
            while True:
                try:
                    yield self._run(anext(feed))
                except StopAsyncIteration:
                    return
        finally:
            self._run(feed.aclose())

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _awaited(step: Awaitable[T]) -> T:
    return await step
