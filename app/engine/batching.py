"""Adaptive micro-batches over a Faust stream: small when traffic is light, large under load.

Faust's `take_events` stops reading while a batch is handled and then waits up to its
timeout to fill the next one, so a handler with a fixed cost per batch (broker round
trips) either adds that timeout to every decision or works on small batches under
load. Here one task reads events into a buffer while another handles whatever has
accumulated since it last looked: at low rates a batch is one or a few events handled
at once; under load the buffer grows while the previous batch is handled, up to
`max_batch` (reading then pauses until the handler takes the buffer).

Events are acknowledged only after their batch was handled (outputs acknowledged by
the broker), so Faust commits nothing that has not been processed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from resontinex.app.engine.failfast import crash_only

Handler = Callable[[list[Any]], Awaitable[None]]


async def drain_in_batches(stream: Any, handle: Handler, *, max_batch: int, linger_s: float, name: str) -> None:
    """Run `handle` on successive batches of `stream`'s events until the stream ends.

    A batch is taken `linger_s` after its first event arrived (at once when it is full):
    batches then amortise their fixed costs under load, and a lone event waits at most
    `linger_s` plus the batch before it.
    """
    pending: list[Any] = []
    has_work, has_room, full = asyncio.Event(), asyncio.Event(), asyncio.Event()
    has_room.set()

    async def handler() -> None:
        while True:
            await has_work.wait()
            if not full.is_set():
                try:
                    await asyncio.wait_for(full.wait(), linger_s)
                except asyncio.TimeoutError:
                    pass
            batch = pending[:]
            pending.clear()
            has_work.clear()
            full.clear()
            has_room.set()
            async with crash_only(name):
                await handle(batch)
            for event in batch:
                event.ack()

    task = asyncio.ensure_future(handler())
    try:
        async for event in stream.noack().events():
            pending.append(event)
            has_work.set()
            if len(pending) >= max_batch:
                full.set()
                has_room.clear()
                await has_room.wait()
    finally:
        task.cancel()  # a batch cut here is redelivered: its events were not acked
        await asyncio.gather(task, return_exceptions=True)
