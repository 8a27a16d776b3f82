"""Window statistics: exact against numpy, mergeable in any split, a deterministic bottom-k sample."""

from __future__ import annotations

import json
import math
import random
from functools import reduce

import numpy as np
import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.enhancement import _stats
from resontinex.agents.enhancement._stats import EMPTY, WindowStats, fold, fold_many, sample_hash

K = 8
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
batches = st.lists(finite, max_size=120)


def ids_for(values: list[float], start: int = 0) -> list[str]:
    return [f"evt-{start + i}" for i in range(len(values))]


def close(a: WindowStats, b: WindowStats) -> bool:
    """Equal, mean and m2 within rounding (m2 relative to the values' scale)."""
    scale = max(1.0, abs(a.min), abs(a.max)) if a.count else 1.0
    return (a.count == b.count and a.min == b.min and a.max == b.max and a.sample == b.sample
            and math.isclose(a.mean, b.mean, rel_tol=1e-9, abs_tol=1e-9 * scale)
            and math.isclose(a.m2, b.m2, rel_tol=1e-7, abs_tol=1e-9 * scale * scale * max(a.count, 1)))


def bottom_k(ids: list[str], values: list[float], k: int) -> tuple[tuple[int, float], ...]:
    """The reference sample: per distinct hash its smallest value, the k smallest hashes."""
    best: dict[int, float] = {}
    for i, v in zip(ids, values):
        h = sample_hash(i)
        best[h] = min(best.get(h, math.inf), v)
    return tuple(sorted(best.items())[:k])


def split_at(xs: list[float], cuts: list[int]) -> list[tuple[list[str], list[float]]]:
    ids, bounds = ids_for(xs), sorted({0, len(xs), *(c % (len(xs) + 1) for c in cuts)})
    return [(ids[a:b], xs[a:b]) for a, b in zip(bounds, bounds[1:])]


@given(st.lists(finite, min_size=1, max_size=200), st.integers(1, 100))
def test_fold_equals_numpy(xs: list[float], k: int) -> None:
    s = fold(ids_for(xs), xs, k)
    a = np.array(xs)
    assert s.count == len(xs) and s.min == a.min() and s.max == a.max()
    assert math.isclose(s.mean, a.mean(), rel_tol=1e-9, abs_tol=1e-6)
    if len(xs) > 1:
        assert math.isclose(s.variance, a.var(ddof=1), rel_tol=1e-7, abs_tol=1e-6)
        assert math.isclose(s.sd, a.std(ddof=1), rel_tol=1e-7, abs_tol=1e-3)
    else:
        assert s.variance == 0.0 and s.sd == 0.0
    assert s.sample == bottom_k(ids_for(xs), xs, k) and s.values == tuple(v for _, v in s.sample)


@given(batches, st.lists(st.integers(0, 200), max_size=6), st.integers(1, 20))
def test_folding_in_any_split_equals_folding_whole(xs: list[float], cuts: list[int], k: int) -> None:
    parts = [fold(ids, values, k) for ids, values in split_at(xs, cuts)]
    assert close(reduce(lambda a, b: a.merged(b, k), parts, EMPTY), fold(ids_for(xs), xs, k))


@given(batches, batches, batches)
def test_merge_is_associative_and_commutative(a: list[float], b: list[float], c: list[float]) -> None:
    x, y, z = (fold(ids_for(v, start), v, K) for v, start in ((a, 0), (b, 1000), (c, 2000)))
    assert close(x.merged(y, K).merged(z, K), x.merged(y.merged(z, K), K))
    assert close(x.merged(y, K), y.merged(x, K))


@given(st.lists(st.integers(0, 300), max_size=150), st.randoms(), st.integers(1, 30))
def test_the_sample_is_the_k_smallest_distinct_hashes_whatever_the_order(
        numbers: list[int], rnd: random.Random, k: int) -> None:
    # Events may repeat (a redelivery): the same id always carries the same value.
    events = [(f"evt-{i}", float(i)) for i in numbers]
    ids, values = [e for e, _ in events], [v for _, v in events]
    expected = bottom_k(ids, values, k)
    assert fold(ids, values, k).sample == expected
    rnd.shuffle(events)
    halves = events[:len(events) // 2], events[len(events) // 2:]
    parts = [fold([e for e, _ in h], [v for _, v in h], k) for h in halves]
    assert parts[1].merged(parts[0], k).sample == expected


def test_a_redelivered_batch_is_sampled_once_but_counted_twice() -> None:
    xs = [float(i) for i in range(50)]
    once = fold(ids_for(xs), xs, K)
    twice = once.merged(once, K)
    assert twice.sample == once.sample and len({h for h, _ in twice.sample}) == K
    assert twice.count == 100  # count idempotence is the caller's: it checks event ids
    assert fold(ids_for(xs) * 2, xs * 2, K).sample == once.sample


def test_the_same_event_is_sampled_for_every_metric() -> None:
    ids = ids_for([0.0] * 100)
    latency, cost = fold(ids, [float(i) for i in range(100)], K), fold(ids, [-float(i) for i in range(100)], K)
    assert [h for h, _ in latency.sample] == [h for h, _ in cost.sample]


@given(st.lists(finite, min_size=1, max_size=100), st.lists(st.integers(0, 30), max_size=100), st.integers(1, 40))
def test_the_numpy_and_python_paths_agree(xs: list[float], repeats: list[int], k: int) -> None:
    ids = ids_for(xs) + [f"evt-{r % len(xs)}" for r in repeats]  # some events twice
    values = xs + [xs[r % len(xs)] for r in repeats]
    numpy_path, python_path = _stats._fold_numpy(ids, values, k), fold_python(ids, values, k)
    assert close(numpy_path, python_path)


def test_a_repeated_event_below_the_cut_leaves_room_for_others() -> None:
    xs = [float(i) for i in range(100)]
    ids = ids_for(xs)
    first = min(ids, key=sample_hash)
    ids, xs = ids + [first] * 50, xs + [xs[ids.index(first)]] * 50  # the k smallest hashes are all one event
    assert _stats._fold_numpy(ids, xs, K).sample == bottom_k(ids, xs, K) == fold_python(ids, xs, K).sample
    assert len(bottom_k(ids, xs, K)) == K


def fold_python(ids: list[str], values: list[float], k: int) -> WindowStats:
    """The plain-Python fold at any length: `fold` of chunks short enough, merged."""
    chunks = [fold(ids[i:i + _stats._NUMPY_FROM], values[i:i + _stats._NUMPY_FROM], k)
              for i in range(0, len(values), _stats._NUMPY_FROM)]
    return reduce(lambda a, b: a.merged(b, k), chunks, EMPTY)


@given(batches, st.integers(1, 40))
@settings(max_examples=50)
def test_round_trip_through_json_and_canonical_json(xs: list[float], k: int) -> None:
    s = fold(ids_for(xs), xs, k)
    d = s.as_dict()
    assert all(0 <= h < 2**53 for h, _ in d["s"])
    assert WindowStats.from_dict(d) == s
    assert WindowStats.from_dict(orjson.loads(orjson.dumps(d))) == s
    assert WindowStats.from_dict(json.loads(rfc8785.dumps(d))) == s


def test_empty_is_the_identity_and_encodes_as_finite_json() -> None:
    xs = [3.0, 1.0, 2.0]
    s = fold(ids_for(xs), xs, K)
    assert EMPTY.merged(s, K) is s and s.merged(EMPTY, K) is s and EMPTY.merged(EMPTY, K) == EMPTY
    assert fold([], [], K) == EMPTY and EMPTY.variance == 0.0 and EMPTY.values == ()
    assert WindowStats.from_dict(None) == EMPTY
    assert WindowStats.from_dict(orjson.loads(orjson.dumps(EMPTY.as_dict()))) == EMPTY
    assert json.loads(rfc8785.dumps(EMPTY.as_dict()))["min"] is None


def test_hashes_are_53_bit_and_stable() -> None:
    hashes = [sample_hash(f"evt-{i}") for i in range(2000)]
    assert all(0 <= h < 2**53 for h in hashes) and max(hashes) > 2**52  # the top bit is used
    # Pinned: samples stored in tables and sent between workers were picked by it.
    assert sample_hash("evt-1") == hashes[1] == 2112412409593360


def test_fold_many_folds_each_group() -> None:
    groups = {("acme", "latency"): (["a", "b"], [1.0, 3.0]), ("acme", "cost"): (["a"], [0.5])}
    out = fold_many(groups, K)
    assert out == {key: fold(ids, values, K) for key, (ids, values) in groups.items()}


def test_ids_and_values_must_pair() -> None:
    with pytest.raises(ValueError, match="2 ids for 1 values"):
        fold(["a", "b"], [1.0], K)
