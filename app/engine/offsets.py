"""End offsets that do not trust ListOffsets alone.

The embedded broker answers ListOffsets(latest) with the base offset of a partition's
last record batch + 1, not its last offset + 1; fetch responses carry the right high
watermark. So: ask ListOffsets, then fetch from there once per partition and take the
larger of the two. Against Kafka, which reports the end correctly, the fetch at the end
returns nothing and the answer is unchanged.
"""

from __future__ import annotations

import time
from typing import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from resontinex.app.engine.security import client_options

_PROBE_TIMEOUT_S = 15.0


async def true_end_offsets(bootstrap: str, partitions: Iterable[TopicPartition],
                           reported: Mapping[TopicPartition, int] | None = None) -> dict[TopicPartition, int]:
    """`{tp: offset of the next record to be written}` for every partition."""
    tps = list(partitions)
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_options(), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=1024)
    try:
        await consumer.start()
        consumer.assign(tps)
        ends = dict(reported) if reported is not None else await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
        deadline = time.monotonic() + _PROBE_TIMEOUT_S
        while any(consumer.highwater(tp) is None for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fetch response for {[tp for tp in tps if consumer.highwater(tp) is None]}")
            await consumer.getmany(timeout_ms=100)
        return {tp: max(ends[tp], consumer.highwater(tp) or 0) for tp in tps}
    finally:
        await consumer.stop()
