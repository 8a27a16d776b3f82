"""Acknowledging events that finish out of order, in offset order per partition.

An agent that works on several events of a partition at once (each a long API call)
finishes them in any order. Faust's commit looks for a gap before the acknowledged
offsets only against an offset it committed itself (none yet, or offset 0, and it does
not look), so an event acknowledged while an earlier one still runs could have the
earlier one's offset committed with it, and a crash would then lose it. Here an event is
acknowledged only once every earlier event of its partition was.

>>> class Ev:
...     def __init__(self, offset): self.message, self.acked = type("M", (), {"partition": 0, "offset": offset})(), False
...     def ack(self): self.acked = True
>>> acks, a, b = InOrderAcks(), Ev(1), Ev(2)
>>> acks.started(a); acks.started(b); acks.done(b); (a.acked, b.acked)
(False, False)
>>> acks.done(a); (a.acked, b.acked)
(True, True)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["InOrderAcks"]


class InOrderAcks:
    def __init__(self) -> None:
        self._open: dict[int, deque[list[Any]]] = {}  # partition → [event, done] in arrival order

    def started(self, event: Any) -> None:
        self._open.setdefault(event.message.partition, deque()).append([event, False])

    def done(self, event: Any) -> None:
        """`event` finished: acknowledge it and every finished event after it, up to the first unfinished."""
        queue = self._open.get(event.message.partition)
        if queue is None:  # its partition was revoked meanwhile: the next owner runs it again
            return
        for entry in queue:
            if entry[0] is event:
                entry[1] = True
                break
        while queue and queue[0][1]:
            queue.popleft()[0].ack()

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._open.pop(p, None)
