"""Committing the offsets of events that finish out of order, in offset order per partition.

An agent that works on several events of a partition at once (each a long API call)
finishes them in any order; an offset may be committed only once every event before it
finished, or a crash would lose the ones still running. `InOrderCommits` says, as each
event finishes, how far its partition may now be committed.

>>> commits = InOrderCommits()
>>> commits.started(0, 7); commits.started(0, 8)
>>> commits.done(0, 8) is None, commits.done(0, 7)
(True, 9)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["InOrderCommits"]


class InOrderCommits:
    def __init__(self) -> None:
        self._open: dict[int, deque[int]] = {}  # partition → offsets started, in order
        self._done: dict[int, set[int]] = {}

    def started(self, partition: int, offset: int) -> None:
        self._open.setdefault(partition, deque()).append(offset)
        self._done.setdefault(partition, set())

    def done(self, partition: int, offset: int) -> int | None:
        """The offset `partition` may be committed up to now `offset` finished (the next one
        to read), or None when an earlier event still runs (or the partition was forgotten)."""
        queue, finished = self._open.get(partition), self._done.get(partition)
        if queue is None or finished is None:
            return None
        finished.add(offset)
        committable = None
        while queue and queue[0] in finished:
            committable = queue.popleft() + 1
            finished.discard(committable - 1)
        return committable

    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked: what still runs there is the next owner's to run again."""
        for p in partitions:
            self._open.pop(p, None)
            self._done.pop(p, None)
