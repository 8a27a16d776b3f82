"""SkipWatch: a partition is read again only when it stays past what the agent got, twice."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from resontinex.app.engine.skips import SkipWatch


def test_records_delivered_between_checks_clear_the_suspicion() -> None:
    watch = SkipWatch()
    watch.restart({0: 0})
    assert watch.confirm({0: 3}) == {}  # 3 consumed, none delivered yet: a suspect
    watch.arrived(0, 2)                 # they come: 3 is next
    assert watch.confirm({}) == {}      # nothing past any more
    assert watch.confirm({0: 4}) == {} and watch.confirm({0: 5}) == {}  # moving: still fetching, not lost


def test_a_busy_agent_or_a_new_assignment_starts_the_count_again() -> None:
    watch = SkipWatch()
    watch.restart({1: 7})
    assert watch.confirm({1: 9}) == {}
    assert watch.confirm({}) == {}      # busy: no check this time
    assert watch.confirm({1: 9}) == {}  # a first sighting again
    watch.restart({1: 7})
    assert watch.confirm({1: 9}) == {}
    assert watch.confirm({1: 9}) == {1: (7, 9)}
    watch.forget([1])
    assert watch.confirm({1: 9}) == {} and watch.next == {}


@given(st.lists(st.integers(0, 50), max_size=30))
def test_the_next_offset_never_goes_back(offsets: list[int]) -> None:
    watch = SkipWatch()
    watch.restart({0: 0})
    for offset in offsets:
        before = watch.next[0]
        watch.arrived(0, offset)
        assert watch.next[0] == max(before, offset + 1)
