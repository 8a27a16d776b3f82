"""Starting a Kafka client for a command: bounded in time, failing with one line.

aiokafka bounds reaching a broker only by its request timeout (40 s by default, for the
TCP connect and again for the first request), logs every failed attempt at ERROR, then
raises an exception that does not say why. `start_client` waits `CONNECT_TIMEOUT_S` at
most and raises one `BrokerError` that carries aiokafka's reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from resontinex.app.exceptions import BrokerError
from resontinex.app.engine.security import client_options

CONNECT_TIMEOUT_S: Final = 5.0
"""A broker that answers at all answers bootstrap in well under a second."""


class _Startable(Protocol):
    async def start(self) -> Any: ...


class _HoldBack(logging.Filter):
    """Keeps a logger's records back instead of emitting them.

    >>> log = logging.getLogger("doc.holdback"); held = _HoldBack(); log.addFilter(held)
    >>> log.error("not now"); [r.getMessage() for r in held.records]
    ['not now']
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


async def start_client(client: _Startable, bootstrap: str) -> None:
    """Start `client` (an aiokafka producer, consumer or admin client) or raise `BrokerError`.

    What aiokafka logs while connecting is held back: emitted as usual once connected,
    or folded into the error's message, so a command that cannot reach Kafka says so once.
    The caller still stops or closes the client.
    """
    logger = logging.getLogger("aiokafka")
    held = _HoldBack()
    logger.addFilter(held)
    try:
        await asyncio.wait_for(client.start(), CONNECT_TIMEOUT_S)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        said = list(dict.fromkeys(r.getMessage() for r in held.records if r.levelno >= logging.WARNING))
        if isinstance(exc, asyncio.TimeoutError):
            said.append(f"no answer within {CONNECT_TIMEOUT_S:g} s")
        why = "; ".join(said) or str(exc)
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {why}") from None
    finally:
        logger.removeFilter(held)
    for record in held.records:
        logger.handle(record)


async def assigned_consumer(bootstrap: str, topic: str, partitions: Callable[[int], list[int]] | None = None, *,
                            max_bytes: int, fetch_max_wait_ms: int = 20) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer of no group, assigned `topic`'s partitions (all, or those
    `partitions(count)` names), fetching records of up to `max_bytes`; `BrokerError` when
    Kafka cannot be reached or the topic does not exist.

    A fetch waits `fetch_max_wait_ms` at most for new records: aiokafka's 500 ms would
    be added to every reply read back (the embedded broker holds an empty fetch that long).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_options(), group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms,
                                fetch_max_bytes=max(max_bytes, 1 << 20) * 4,
                                max_partition_fetch_bytes=max(max_bytes, 1 << 20))
    try:
        await start_client(consumer, bootstrap)
        # the metadata of every topic: asking for one by name would create it where topics are auto-created
        await consumer.topics()
        count = len(consumer.partitions_for_topic(topic) or ())
        if not count:
            raise BrokerError(f"topic {topic!r} does not exist at {bootstrap} (run `resontinex topics create`)")
    except BaseException:
        await consumer.stop()
        raise
    tps = [TopicPartition(topic, p) for p in (partitions(count) if partitions else range(count))]
    consumer.assign(tps)
    return consumer, tps
