"""Records a Faust stream consumed but never handed to its agent.

Faust drops a fetched record on its way to the agent when the flow stops between the fetch
and the delivery (a rebalance starting, a recovery ending), and seeks back only to the
partition's commit: an agent that commits for itself, late, has none for a while, and the
record is gone. `SkipWatch` finds such a partition: its consumer position is past the next
offset the agent expects, at two checks in a row, with nothing delivered in between while
the agent waited for the stream. The shell then seeks it back
(`faust_compat.read_again`), and the records come again.

>>> watch = SkipWatch()
>>> watch.restart({0: 5, 1: 0})              # after a rebalance: where each partition starts
>>> watch.arrived(0, 5)                      # offset 5 delivered: 6 is next
>>> watch.confirm({1: 1})                    # partition 1 is at 1, nothing came: a suspect
{}
>>> watch.confirm({1: 1})                    # still so at the next check: read again from 0
{1: (0, 1)}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["SkipWatch"]


class SkipWatch:
    def __init__(self) -> None:
        self.next: dict[int, int] = {}
        """Partition → the next offset the agent expects from the stream."""
        self._suspects: dict[int, tuple[int, int]] = {}

    def restart(self, starts: Mapping[int, int]) -> None:
        """A new assignment: the offset each partition is read from."""
        self.next = dict(starts)
        self._suspects.clear()

    def arrived(self, partition: int, offset: int) -> None:
        if partition in self.next:
            self.next[partition] = max(self.next[partition], offset + 1)

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.next.pop(p, None)
            self._suspects.pop(p, None)

    def confirm(self, past: Mapping[int, int]) -> dict[int, tuple[int, int]]:
        """Given the partitions whose consumer position is past `next` now (partition →
        position; call with none while the agent is busy), those found so at the last
        check too, with nothing arrived since: partition → (first offset lost, position)."""
        now = {p: (self.next[p], position) for p, position in past.items() if p in self.next}
        lost = {p: seen for p, seen in now.items() if self._suspects.get(p) == seen}
        self._suspects = {p: seen for p, seen in now.items() if p not in lost}
        return lost
