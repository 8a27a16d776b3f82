import asyncio

from hypothesis import given
from hypothesis import strategies as st

from resontinex.app.engine.continuity import FetchedEvent, FetchedMessage, contiguous


def _event(partition: int, offset: int) -> FetchedEvent:
    return FetchedEvent(FetchedMessage("in", partition, offset, b"k", b"v", 0.0))


def _run(events, next_offsets):
    fetched_ranges = []

    async def fetch(topic, partition, start, end):
        fetched_ranges.append((partition, start, end))
        return [_event(partition, o) for o in range(start, end)]

    out, dropped, fetched = asyncio.run(contiguous(events, next_offsets, fetch))
    return [(e.message.partition, e.message.offset) for e in out], dropped, fetched, fetched_ranges


def test_redeliveries_are_dropped_and_gaps_filled():
    events = [_event(0, o) for o in (3, 4, 5, 9, 10)] + [_event(1, 7)]
    out, dropped, fetched, ranges = _run(events, {0: 5, 1: None})
    assert out == [(0, 5), (0, 6), (0, 7), (0, 8), (0, 9), (0, 10), (1, 7)]
    assert (dropped, fetched) == (2, 3) and ranges == [(0, 6, 9)]


@given(st.integers(0, 50), st.lists(st.integers(0, 80), min_size=1, unique=True))
def test_output_is_every_offset_from_next_to_the_last_seen_exactly_once(start, offsets):
    offsets.sort()
    out, _, _, _ = _run([_event(2, o) for o in offsets], {2: start})
    if offsets[-1] < start:
        assert out == []
    else:
        assert [o for _, o in out] == list(range(start, offsets[-1] + 1))


def test_an_unknown_partition_starts_at_its_first_event():
    out, dropped, fetched, _ = _run([_event(3, 40), _event(3, 41)], {})
    assert out == [(3, 40), (3, 41)] and dropped == fetched == 0
