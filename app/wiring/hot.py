"""A hot topic's records, in batches straight from the consumer (`app.engine.record_source`),
for a handler written against Faust-like events (`record.message`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust

from resontinex.app.engine.continuity import FetchedEvent
from resontinex.app.engine.record_source import Lifecycle, Record, RecordSource, StartOffset
from resontinex.app.runtime import Runtime

__all__ = ["attach_hot"]


def attach_hot(app: faust.App, rt: Runtime, topic: str, name: str,
               handle: Callable[[list[FetchedEvent]], Awaitable[None]], *, lifecycle: Lifecycle,
               start_offset: StartOffset | None = None) -> RecordSource:
    """Feed `handle` the records of `topic` for the partitions Faust assigns this worker;
    revoked through the worker's `lifecycle`."""
    s = rt.settings

    async def handle_records(records: list[Record]) -> None:
        await handle([FetchedEvent(r) for r in records])

    return RecordSource.attach(app, [topic], handle_records, bootstrap=s.bootstrap,
                               fetch_max_wait_ms=s.fetch_max_wait_ms, start_offset=start_offset,
                               lifecycle=lifecycle, max_batch=s.batch_max, linger_s=s.batch_linger_s, name=name)
