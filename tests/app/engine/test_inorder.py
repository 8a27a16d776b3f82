"""Events finishing in any order commit their partition in offset order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from resontinex.app.engine.inorder import InOrderCommits


@given(st.permutations(list(range(12))))
def test_a_partition_is_committed_only_past_events_that_all_finished(order: list[int]) -> None:
    commits = InOrderCommits()
    events = [(i % 2, 10 + i // 2) for i in range(12)]  # two partitions, offsets 10…15 each
    for p, offset in events:
        commits.started(p, offset)
    finished: set[tuple[int, int]] = set()
    committed = {0: 10, 1: 10}
    for i in order:
        p, offset = events[i]
        finished.add((p, offset))
        upto = commits.done(p, offset)
        if upto is not None:
            assert upto > committed[p]
            committed[p] = upto
        # never past an event still running
        assert all((p, o) in finished for p in (0, 1) for o in range(10, committed[p]))
    assert committed == {0: 16, 1: 16}


def test_a_forgotten_partition_commits_nothing_more() -> None:
    commits = InOrderCommits()
    commits.started(0, 0)
    commits.started(0, 1)
    commits.forget({0})
    assert commits.done(0, 0) is None and commits.done(0, 1) is None
