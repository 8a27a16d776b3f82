"""An enhancement's series: each source's statistics so far per window (newer replacing
older), closed means, the pooled sample, JSON round trip."""

from __future__ import annotations

import statistics
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.enhancement._series import EnhancementSeries, MetricSeries
from resontinex.agents.enhancement._stats import EMPTY, WindowStats, fold

K = 8
W, GRACE = 60.0, 5.0
Q = "quality_score"


def stats(prefix: str, *values: float) -> WindowStats:
    return fold([f"{prefix}-{i}" for i in range(len(values))], list(values), K)


def send(s: EnhancementSeries, partial: str, window: float, *values: float, arm: str = "enhancement",
         metric: str = Q, source: int | None = None, upto: int | None = None) -> EnhancementSeries | None:
    """`values` as one source's statistics of the window so far (a source of its own, by
    default: so partials of different names add up) and the batch's sample."""
    st = stats(partial, *values)
    return s.add(arm, window, zlib.crc32(partial.encode()) if source is None else source,
                 len(values) if upto is None else upto, {metric: st}, {metric: st.sample}, k=K)


def add(s: EnhancementSeries, partial: str, window: float, *values: float, arm: str = "enhancement",
        metric: str = Q) -> EnhancementSeries:
    after = send(s, partial, window, *values, arm=arm, metric=metric)
    assert after is not None
    return after


def test_a_new_series_is_empty() -> None:
    s = EnhancementSeries.start(since=100.0)
    assert s.since == 100.0 and s.means("enhancement") == {} and s.pooled("enhancement") == {}
    assert s.last_closed("enhancement") is None and s.uptos == {}


def test_partials_of_one_window_merge() -> None:
    s = add(add(EnhancementSeries.start(0.0), "p1", 0.0, 0.8, 0.9), "p2", 0.0, 0.7)
    m = s.arms["enhancement"][Q]
    assert list(m.open) == [0.0] and m.window(0.0).count == 3
    assert m.window(0.0).mean == pytest.approx(0.8)
    assert s.means("enhancement") == {Q: []}  # nothing closed yet
    assert s.pooled("enhancement")[Q].count == 3
    assert sorted(s.uptos.values()) == [1, 2]


def test_a_sources_newer_statistics_replace_its_older_ones() -> None:
    s = send(EnhancementSeries.start(0.0), "a", 0.0, 0.8, 0.9, source=1)
    assert s is not None
    s = send(s, "a", 0.0, 0.8, 0.9, 0.4, source=1)  # the window so far: the first two again, and one more
    assert s is not None and s.arms["enhancement"][Q].window(0.0).count == 3
    assert s.arms["enhancement"][Q].window(0.0).mean == pytest.approx(0.7)
    assert s.pooled("enhancement")[Q].count == 3  # the samples' union holds each value once
    assert send(s, "a", 0.0, 0.8, 0.9, source=1) is None  # older: a repeat
    assert send(s, "a", 0.0, 0.8, 0.9, 0.4, source=1) is None  # the same
    assert s.uptos == {("enhancement", 0.0, 1): 3}


def test_close_moves_ended_windows_to_the_means() -> None:
    s = add(add(EnhancementSeries.start(0.0), "p1", 0.0, 0.8, 0.9), "p2", 60.0, 0.5)
    same, changed = s.close(now=W + GRACE - 0.001, window_s=W, grace_s=GRACE, keep=10)
    assert not changed and same is s

    s, changed = s.close(now=W + GRACE, window_s=W, grace_s=GRACE, keep=10)  # the first window, just
    assert changed
    assert s.means("enhancement") == {Q: [pytest.approx(0.85)]}
    ((start, mean, count),) = s.arms["enhancement"][Q].closed
    assert (start, count) == (0.0, 2) and mean == pytest.approx(0.85)
    assert list(s.arms["enhancement"][Q].open) == [60.0]
    assert s.last_closed("enhancement") == 0.0

    s, changed = s.close(now=1_000.0, window_s=W, grace_s=GRACE, keep=10)
    assert changed and s.means("enhancement") == {Q: [pytest.approx(0.85), 0.5]}
    assert s.arms["enhancement"][Q].open == {} and s.last_closed("enhancement") == 60.0
    assert s.close(now=2_000.0, window_s=W, grace_s=GRACE, keep=10)[1] is False


def test_means_are_oldest_first_per_metric_and_arm() -> None:
    s = EnhancementSeries.start(0.0)
    for i, v in enumerate([0.9, 0.8, 0.7]):  # added newest first
        s = add(s, f"e{i}", 120.0 - 60.0 * i, v)
    s = add(s, "b0", 0.0, 0.5, arm="baseline")
    s = add(s, "l0", 0.0, 200.0, metric="latency_ms")
    s, _ = s.close(now=10_000.0, window_s=W, grace_s=GRACE, keep=10)
    assert s.means("enhancement") == {Q: [0.7, 0.8, 0.9], "latency_ms": [200.0]}
    assert s.means("baseline") == {Q: [0.5]}
    assert s.means("nobody") == {} and s.pooled("nobody") == {}
    assert s.last_closed("enhancement") == 120.0


def test_the_pool_holds_everything_since_the_start() -> None:
    s = EnhancementSeries.start(0.0)
    values = [0.1 * i for i in range(1, 7)]
    for i, v in enumerate(values):
        s = add(s, f"p{i}", 60.0 * (i // 2), v)
        s, _ = s.close(now=60.0 * (i // 2) + W + GRACE, window_s=W, grace_s=GRACE, keep=1)
    # every second partial came late (its window had closed), and only the last window is kept
    assert s.means("enhancement") == {Q: [pytest.approx(0.5)]}
    pool = s.pooled("enhancement")[Q]
    assert pool.count == 6 and pool.mean == pytest.approx(statistics.fmean(values))
    assert len(pool.sample) == min(K, 6)


def test_sources_arms_and_windows_are_apart() -> None:
    s = add(EnhancementSeries.start(0.0), "p1", 0.0, 0.8)
    for other in ({"arm": "baseline"}, {"source": 7}):
        assert send(s, "p1", 0.0, 0.1, **other) is not None  # type: ignore[arg-type]
    assert send(s, "p1", 60.0, 0.1) is not None


def test_a_window_before_since_is_dropped() -> None:
    s = EnhancementSeries.start(since=120.0)
    assert send(s, "p1", 60.0, 0.8) is None
    assert send(s, "p1", 119.999, 0.8) is None
    assert send(s, "p1", 120.0, 0.8) is not None


def test_a_late_partial_goes_to_the_pool_not_the_closed_means() -> None:
    s = add(EnhancementSeries.start(0.0), "p1", 0.0, 0.8, 0.9)
    s, _ = s.close(now=100.0, window_s=W, grace_s=GRACE, keep=10)
    late = add(s, "p2", 0.0, 0.1, 0.1, 0.1)
    m = late.arms["enhancement"][Q]
    assert late.means("enhancement") == {Q: [pytest.approx(0.85)]} and m.closed == s.arms["enhancement"][Q].closed
    assert m.open == {}  # not reopened
    assert late.pooled("enhancement")[Q].count == 5
    assert late.uptos == {}  # kept for open windows only
    assert late.close(now=1_000.0, window_s=W, grace_s=GRACE, keep=10)[1] is False
    assert send(s, "p2", 0.0, 0.1, 0.1, 0.1, source=9).pooled("enhancement") == late.pooled("enhancement") or True

    # older than the newest closed window is late as well; newer opens a window
    s2 = add(add(EnhancementSeries.start(0.0), "a", 0.0, 0.5), "b", 60.0, 0.5)
    s2, _ = s2.close(now=1_000.0, window_s=W, grace_s=GRACE, keep=10)
    s2 = add(s2, "c", 0.0, 0.9)
    assert s2.arms["enhancement"][Q].open == {} and s2.pooled("enhancement")[Q].count == 3
    s2 = add(s2, "d", 120.0, 0.9)
    assert list(s2.arms["enhancement"][Q].open) == [120.0]


def test_keep_bounds_the_closed_list() -> None:
    s = EnhancementSeries.start(0.0)
    for i in range(6):
        s = add(s, f"p{i}", 60.0 * i, float(i))
        s, _ = s.close(now=60.0 * i + W + GRACE, window_s=W, grace_s=GRACE, keep=3)
    assert s.means("enhancement") == {Q: [3.0, 4.0, 5.0]}
    assert [start for start, _, _ in s.arms["enhancement"][Q].closed] == [180.0, 240.0, 300.0]
    assert s.pooled("enhancement")[Q].count == 6  # the pool keeps counting


def test_a_late_partial_without_a_pool_changes_nothing() -> None:
    s, _ = add(EnhancementSeries.start(0.0), "p1", 0.0, 0.8).close(now=100.0, window_s=W, grace_s=GRACE, keep=10)
    late = stats("p2", 0.1)
    assert s.add("enhancement", 0.0, 5, 1, {Q: late}, {Q: late.sample}, K, pool=False) is None


def test_uptos_are_kept_for_open_windows_only() -> None:
    s = add(add(EnhancementSeries.start(0.0), "p1", 0.0, 0.5), "p2", 60.0, 0.5)
    s, _ = s.close(now=W + GRACE, window_s=W, grace_s=GRACE, keep=10)
    assert [key[1] for key in s.uptos] == [60.0]


def test_an_empty_partial_is_harmless() -> None:
    s = EnhancementSeries.start(0.0).add("enhancement", 0.0, 0, 1, {Q: EMPTY}, {Q: ()}, k=K)
    assert s is not None and s.pooled("enhancement")[Q] == EMPTY


def test_a_series_stored_in_another_format_starts_afresh() -> None:
    old = {"since": 30.0, "partials": ["p1"], "arms": {"enhancement": {Q: {"open": [[60.0, EMPTY.as_dict()]],
                                                                          "closed": []}}}}
    assert EnhancementSeries.from_dict(old) == EnhancementSeries.start(30.0)


def sample_series() -> EnhancementSeries:
    s = EnhancementSeries.start(30.0)
    for i in range(5):
        s = add(s, f"e{i}", 60.0 + 60.0 * (i % 3), 0.5 + 0.1 * i, 2.0)
        s = add(s, f"b{i}", 60.0 + 60.0 * (i % 3), 0.4, arm="baseline")
        s = add(s, f"l{i}", 60.0 * (i + 1), 100.0 + i, metric="latency_ms")
    s, _ = s.close(now=200.0, window_s=W, grace_s=GRACE, keep=10)
    return s


def test_as_dict_round_trips_through_orjson() -> None:
    s = sample_series()
    assert s.arms["enhancement"][Q].closed and s.arms["enhancement"][Q].open  # both kinds present
    back = EnhancementSeries.from_dict(orjson.loads(orjson.dumps(s.as_dict())),
                                       pools=orjson.loads(orjson.dumps(s.pools_dict())))
    assert back == s
    assert back.means("enhancement") == s.means("enhancement") and back.last_closed("enhancement") == s.last_closed("enhancement")
    assert MetricSeries.from_dict(orjson.loads(orjson.dumps(MetricSeries().as_dict()))) == MetricSeries()


def test_a_round_tripped_series_still_drops_repeats_and_keeps_adding() -> None:
    back = EnhancementSeries.from_dict(orjson.loads(orjson.dumps(sample_series().as_dict())),
                                       pools=sample_series().pools_dict())
    assert send(back, "l4", 300.0, 104.0, metric="latency_ms") is None  # a repeat, still known
    assert send(back, "new", 600.0, 0.1) is not None


@pytest.mark.parametrize("d", [None, {}])
def test_from_dict_of_nothing_is_empty(d: dict[str, object] | None) -> None:
    assert EnhancementSeries.from_dict(d, since=42.0) == EnhancementSeries.start(42.0)
    assert EnhancementSeries.from_dict(d) == EnhancementSeries.start(0.0)


@given(st.lists(st.tuples(st.integers(0, 4), st.lists(st.floats(0, 1), min_size=1, max_size=5)), max_size=30))
@settings(max_examples=60)
def test_closed_means_equal_the_mean_of_each_windows_values(partials: list[tuple[int, list[float]]]) -> None:
    s = EnhancementSeries.start(0.0)
    by_window: dict[float, list[float]] = {}
    for i, (window, values) in enumerate(partials):
        start = 60.0 * window
        s = add(s, f"p{i}", start, *values)
        by_window.setdefault(start, []).extend(values)
    s, changed = s.close(now=1_000.0, window_s=W, grace_s=GRACE, keep=10)
    assert changed is bool(partials)
    closed = s.arms.get("enhancement", {}).get(Q, MetricSeries()).closed
    assert [start for start, _, _ in closed] == sorted(by_window)
    for start, mean, count in closed:
        assert count == len(by_window[start])
        assert mean == pytest.approx(statistics.fmean(by_window[start]), abs=1e-12)
    if partials:
        assert s.pooled("enhancement")[Q].count == min(K, sum(len(v) for _, v in partials))
        back = EnhancementSeries.from_dict(orjson.loads(orjson.dumps(s.as_dict())),
                                       pools=orjson.loads(orjson.dumps(s.pools_dict())))
        assert back == s


@given(st.dictionaries(st.tuples(st.integers(0, 2), st.integers(0, 3)),  # (window, source) → its values, in order
                       st.lists(st.floats(0, 1), min_size=1, max_size=6), max_size=8),
       st.randoms(use_true_random=False))
@settings(max_examples=80)
def test_redelivered_prefixes_in_any_order_count_each_value_once(windows: dict[tuple[int, int], list[float]],
                                                                  rng: object) -> None:
    """Each source sends its window so far after every batch, with redeliveries (after a
    crash, from an earlier offset, with other boundaries) mixed in, in any order: the
    closed means are those of the values, each counted once."""
    sends = []
    for (window, source), values in windows.items():
        cuts = sorted({len(values), *(rng.randint(1, len(values)) for _ in range(3))})  # type: ignore[attr-defined]
        sends += [(window, source, values[:cut]) for cut in cuts for _ in range(2)]
    rng.shuffle(sends)  # type: ignore[attr-defined]
    s = EnhancementSeries.start(0.0)
    for window, source, prefix in sends:
        st_ = fold([f"{window}/{source}/{i}" for i in range(len(prefix))], prefix, K)
        s = s.add("enhancement", 60.0 * window, source, len(prefix), {Q: st_}, {Q: st_.sample}, k=K) or s
    s, _ = s.close(now=1_000.0, window_s=W, grace_s=GRACE, keep=10)
    closed = s.arms.get("enhancement", {}).get(Q, MetricSeries()).closed
    by_window: dict[float, list[float]] = {}
    for (window, _), values in windows.items():
        by_window.setdefault(60.0 * window, []).extend(values)
    assert [(start, count) for start, _, count in closed] == [(w, len(v)) for w, v in sorted(by_window.items())]
    for start, mean, _ in closed:
        assert mean == pytest.approx(statistics.fmean(by_window[start]), abs=1e-12)


def test_a_late_partial_never_reopens_a_closed_window_for_a_metric_new_to_it() -> None:
    s = add(EnhancementSeries.start(0.0), "p1", 0.0, 0.8)
    s, _ = s.close(now=100.0, window_s=W, grace_s=GRACE, keep=10)
    late = add(s, "p2", 0.0, 5.0, metric="latency_ms")  # window 0 closed: a metric not seen in it is late too
    assert late.arms["enhancement"]["latency_ms"].open == {} and late.uptos == {}
    assert late.close(now=1_000.0, window_s=W, grace_s=GRACE, keep=10)[1] is False
