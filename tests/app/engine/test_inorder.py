"""Events finishing in any order are acknowledged in offset order per partition."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from resontinex.app.engine.inorder import InOrderAcks


@dataclass(eq=False)
class Msg:
    partition: int
    offset: int


@dataclass(eq=False)
class Ev:
    message: Msg
    journal: list[tuple[int, int]] = field(default_factory=list)

    def ack(self) -> None:
        self.journal.append((self.message.partition, self.message.offset))


@given(st.permutations(list(range(12))))
def test_acks_follow_offsets_whatever_order_the_events_finish_in(order: list[int]) -> None:
    journal: list[tuple[int, int]] = []
    events = [Ev(Msg(i % 2, i // 2), journal) for i in range(12)]
    acks = InOrderAcks()
    for e in events:
        acks.started(e)
    for i in order:
        acks.done(events[i])
        for p in (0, 1):  # never an offset acknowledged while an earlier one of its partition runs
            acked = [o for q, o in journal if q == p]
            assert acked == list(range(len(acked)))
    assert sorted(journal) == sorted((e.message.partition, e.message.offset) for e in events)


def test_a_revoked_partition_acknowledges_nothing_more() -> None:
    journal: list[tuple[int, int]] = []
    a, b = Ev(Msg(0, 0), journal), Ev(Msg(0, 1), journal)
    acks = InOrderAcks()
    acks.started(a)
    acks.started(b)
    acks.forget({0})
    acks.done(a)
    acks.done(b)
    assert journal == []
