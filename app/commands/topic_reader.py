"""Reading a whole topic once, to the end it had when the read began (CLI commands)."""

from __future__ import annotations

import time
from typing import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from resontinex.app.engine.connect import start_client
from resontinex.app.exceptions import BrokerError, UsageError
from resontinex.app.engine.offsets import true_end_offsets
from resontinex.app.engine.security import client_options

_STALL_S = 30.0


async def read_topic(bootstrap: str, topic: str, handle: Callable[[ConsumerRecord], None]) -> None:
    """Every record of every partition of `topic` up to its end when this starts.

    The end comes from `true_end_offsets` (the embedded broker under-reports ListOffsets);
    a read that makes no progress for `_STALL_S` seconds is a `BrokerError`.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_options(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    try:
        await start_client(consumer, bootstrap)
        # metadata of every topic: asking for one topic by name would create it on a broker
        # that auto-creates topics (the embedded one does)
        if topic not in await consumer.topics():
            raise UsageError(f"topic {topic!r} does not exist at {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await true_end_offsets(bootstrap, tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        progress_at = time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        handle(record)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
            if batch:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > _STALL_S:
                raise BrokerError(f"reading {topic!r} at {bootstrap}: no progress for {_STALL_S:g} s on "
                                  f"{sorted(tp.partition for tp in pending)}")
    except (KafkaError, TimeoutError) as exc:
        raise BrokerError(f"reading {topic!r} at {bootstrap}: {exc}") from exc
    finally:
        await consumer.stop()


