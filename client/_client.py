"""The async client: publish what the processor reads, wait for what it answers.

Every event is checked against its schema before it is published (the same checks, and
the same codes, as a worker's dead letters) and keyed by its tenant, so Kafka's default
partitioner (murmur2, as aiokafka and the Java client use) puts it on its tenant's
partition (CONTRACT §1).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from resontinex.app.engine.connect import start_client
from resontinex.app.exceptions import BrokerError
from resontinex.schemas import (DEFAULT_MAX_BYTES, Alert, AuditRecord, CoordinationRequest, CoordinationResult, Cost,
                                Decision, DecisionRequest, InputEvent, InvalidEvent, Outcome, TrajectoryRequest,
                                TrajectoryResult, decode, ts_to_ms)
from resontinex.topics import partition_of, wire_name
from resontinex.app.engine.security import client_options

from ._topics import Replies, follow
from .exceptions import ClientError, InvalidRequest, ResultTimeout, Unreachable

__all__ = ["Client"]

DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"
"""`resontinex up`'s embedded broker."""

InT = TypeVar("InT", bound=InputEvent)
OutT = TypeVar("OutT", bound=BaseModel)
Event = BaseModel | Mapping[str, Any]
_PUBLISHED: Final[dict[type[BaseModel], str]] = {DecisionRequest: "decision_requests", Outcome: "outcomes",
                                                  Cost: "costs"}
"""The models `Client.publish` sends as they are, and their topics."""


class Client:
    """One connection to the processor's topics.

    >>> async def main() -> None:                                           # doctest: +SKIP
    ...     async with Client("127.0.0.1:9092") as client:
    ...         decision = await client.decide({"event_id": "r-1", "tenant": "acme", "signals": {
    ...             "alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}})
    ...         print(decision.verb)

    `bootstrap` defaults to `KAFKA_BOOTSTRAP_SERVERS`, else the embedded broker's address;
    `topic_prefix` to `RESONTINEX_TOPIC_PREFIX`.
    """

    def __init__(self, bootstrap: str | None = None, *, topic_prefix: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP
        self.topic_prefix = os.environ.get("RESONTINEX_TOPIC_PREFIX", "") if topic_prefix is None else topic_prefix
        self.max_message_bytes = max_message_bytes
        self._producer: AIOKafkaProducer | None = None
        self._replies: dict[str, Replies[Any]] = {}
        self._opening = asyncio.Lock()

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect (`Unreachable` when Kafka cannot be reached within a few seconds)."""
        if self._producer is not None:
            return
        # (no idempotent producer: a retried send may repeat a record; the processor drops a repeated event_id)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **client_options(), acks="all",
                                    max_request_size=self.max_message_bytes + 1024)
        try:
            await start_client(producer, self.bootstrap)
        except BrokerError as exc:
            await producer.stop()
            raise Unreachable(str(exc)) from None
        self._producer = producer

    async def close(self) -> None:
        for replies in self._replies.values():
            await replies.stop()
        self._replies.clear()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def topic(self, topic_id: str) -> str:
        """A registry topic's name on the broker (with the prefix)."""
        return wire_name(topic_id, self.topic_prefix)

    # --- requests and their answers

    async def decide(self, request: Event, *, timeout: float = 30.0) -> Decision:
        """Publish a decision request (CONTRACT §3.1) and return its decision."""
        (decision,) = await self.decide_many([request], timeout=timeout)
        return decision

    async def decide_many(self, requests: Iterable[Event], *, timeout: float = 30.0) -> list[Decision]:
        """Publish the requests at once and return their decisions in the same order.
        `ResultTimeout` names those that got none in time (`answered` holds the others)."""
        valid = [self._valid(DecisionRequest, r) for r in requests]
        return await self._ask("decision_requests", valid, "decisions", Decision,
                               lambda d: _key(d.tenant, d.request_id), timeout)

    async def submit(self, request: Event) -> DecisionRequest:
        """Publish a decision request without waiting for its decision (follow `decisions()`
        for it); the request as validated."""
        valid = self._valid(DecisionRequest, request)
        await self.publish(valid)
        return valid

    async def publish(self, event: DecisionRequest | Outcome | Cost) -> None:
        """Publish an event model as it is, on its type's topic, with no second check: for a
        model already validated as a worker checks it (`resontinex.schemas.decode`, as the
        HTTP gateway does with each body). `submit`, `report_outcome` and `report_cost`
        check what they are given first."""
        topic_id = _PUBLISHED.get(type(event))
        if topic_id is None:
            raise TypeError(f"publish takes a DecisionRequest, Outcome or Cost, not {type(event).__name__}")
        await self._publish(topic_id, [event])

    async def score_text(self, request: Event, *, timeout: float = 60.0) -> TrajectoryResult:
        """Publish a text to score (§3.6) and return its perplexity and entropy (a trajectory
        worker must run)."""
        valid = self._valid(TrajectoryRequest, request)
        (result,) = await self._ask("trajectory_requests", [valid], "trajectory_results", TrajectoryResult,
                                    lambda r: _key(r.tenant, r.request_event_id), timeout)
        return result

    async def coordinate(self, request: Event, *, timeout: float = 600.0) -> CoordinationResult:
        """Publish a task for a team of LLM agents (§3.9) and return its result."""
        valid = self._valid(CoordinationRequest, request)
        (result,) = await self._ask("coordination_requests", [valid], "coordination_results", CoordinationResult,
                                    lambda r: _key(r.tenant, r.request_event_id), timeout)
        return result

    async def report_outcome(self, outcome: Event) -> None:
        """Publish what happened after a decision (§3.3)."""
        await self.publish(self._valid(Outcome, outcome))

    async def report_cost(self, cost: Event) -> None:
        """Publish the spend of one AI call (§3.4)."""
        await self.publish(self._valid(Cost, cost))

    # --- feeds

    def decisions(self, *, tenant: str | None = None, verb: str | None = None,
                  from_beginning: bool = False) -> AsyncGenerator[Decision, None]:
        """Decisions as they are made (or from the beginning), those of `tenant` and `verb` if given."""
        return follow(self.bootstrap, self.topic("decisions"), Decision,
                      keep=lambda d: (tenant is None or d.tenant == tenant) and (verb is None or d.verb == verb),
                      partitions=_of(tenant), from_beginning=from_beginning, max_bytes=self.max_message_bytes)

    def alerts(self, *, tenant: str | None = None, kind: str | None = None, severity: str | None = None,
               from_beginning: bool = False) -> AsyncGenerator[Alert, None]:
        """Alerts as they are raised (or from the beginning), filtered by `tenant` (`_system`:
        those of no tenant), `kind` and `severity`."""
        return follow(self.bootstrap, self.topic("alerts"), Alert,
                      keep=lambda a: ((tenant is None or a.tenant == tenant) and (kind is None or a.kind == kind)
                                      and (severity is None or a.severity == severity)),
                      partitions=_of(tenant), from_beginning=from_beginning, max_bytes=self.max_message_bytes)

    def replay(self, *, tenant: str | None = None, kind: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> AsyncGenerator[AuditRecord, None]:
        """The audit trail (§3.8) from its beginning to its end as it is now, in chain order
        per partition: the records of `tenant` and `kind`, stamped in [`since`, `until`)."""
        lo = None if since is None else since.timestamp() * 1000
        hi = None if until is None else until.timestamp() * 1000

        def keep(r: AuditRecord) -> bool:
            at = ts_to_ms(r.ts) if r.ts else None
            return ((tenant is None or r.tenant == tenant) and (kind is None or r.kind == kind)
                    and (lo is None or (at is not None and at >= lo)) and (hi is None or (at is not None and at < hi)))

        return follow(self.bootstrap, self.topic("audit"), AuditRecord, keep=keep, partitions=_of(tenant),
                      from_beginning=True, until_end=True, max_bytes=self.max_message_bytes)

    # --- inside

    def _valid(self, model: type[InT], event: Event) -> InT:
        raw = event.model_dump_json(exclude_none=True).encode() if isinstance(event, BaseModel) else orjson.dumps(event)
        try:
            return decode(model, raw, max_bytes=self.max_message_bytes)
        except InvalidEvent as exc:
            raise InvalidRequest(exc.code, exc.message) from None
        except TypeError as exc:  # orjson: not JSON-able
            raise InvalidRequest("invalid_json", str(exc)) from None

    async def _publish(self, topic_id: str, events: list[InT]) -> None:
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        topic = self.topic(topic_id)
        try:
            sent = [await self._producer.send(topic, e.model_dump_json(exclude_none=True).encode(),
                                              key=e.tenant.encode())  # type: ignore[attr-defined]
                    for e in events]
            await asyncio.gather(*sent)
        except KafkaError as exc:
            raise ClientError(f"publishing to {topic} at {self.bootstrap}: {exc}") from None

    async def _ask(self, topic_id: str, requests: list[InT], reply_topic: str, model: type[OutT],
                   key: Callable[[OutT], str | None], timeout: float) -> list[OutT]:
        if not requests:
            return []
        replies = await self._reader(reply_topic, model, key)
        ids = {_key(r.tenant, r.event_id): r.event_id for r in requests}  # type: ignore[attr-defined]
        futures = replies.expect(list(ids))
        try:
            await self._publish(topic_id, requests)
            done, _ = await asyncio.wait(set(futures.values()), timeout=timeout)
        finally:
            replies.forget(list(ids))
        failed = next((f.exception() for f in done if f.exception() is not None), None)
        if failed is not None:  # the reply reader stopped
            raise failed
        missing = [ids[k] for k, f in futures.items() if f not in done]
        if missing:
            raise ResultTimeout(missing, timeout, {ids[k]: f.result() for k, f in futures.items() if f in done})
        return [futures[_key(r.tenant, r.event_id)].result() for r in requests]  # type: ignore[attr-defined]

    async def _reader(self, reply_topic: str, model: type[OutT], key: Callable[[OutT], str | None]) -> Replies[OutT]:
        async with self._opening:  # one reader per topic, placed at its end before the first request
            if reply_topic in self._replies and not self._replies[reply_topic].alive:  # it stopped on an error
                await self._replies.pop(reply_topic).stop()
            if reply_topic not in self._replies:
                replies = Replies(self.bootstrap, self.topic(reply_topic), model, key, self.max_message_bytes)
                await replies.start()
                self._replies[reply_topic] = replies
        return self._replies[reply_topic]


def _key(tenant: str, request_id: str) -> str:
    """What a reply is matched by: request ids are the producers' own, unique per tenant only."""
    return f"{tenant}\x1f{request_id}"


def _of(tenant: str | None) -> Callable[[int], list[int]] | None:
    """The partitions to read for `tenant`: its own (all when None)."""
    return None if tenant is None else (lambda count: [partition_of(tenant, count)])
