from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.gate import WindowStats, merge_stats, window_start

rows = st.lists(
    st.tuples(st.sampled_from(["block", "review", "monitor", "pass"]), st.sampled_from(["execute", "review", "defer", "abort"]),
              st.floats(0, 1), st.booleans(), st.booleans()),
    min_size=1, max_size=50,
)


def _stats(rs):
    return WindowStats.of([r[0] for r in rs], [r[1] for r in rs], [r[2] for r in rs], sum(r[3] for r in rs), sum(r[4] for r in rs))


@given(rows, rows)
def test_merging_two_batches_equals_one_batch_of_both(a, b):
    merged, whole = merge_stats(_stats(a), _stats(b)), _stats(a + b)
    assert merged["requests"] == whole["requests"]
    assert merged["tiers"] == whole["tiers"] and merged["verbs"] == whole["verbs"]
    assert merged["floor_violations"] == whole["floor_violations"]
    assert abs(merged["score_mean"] - whole["score_mean"]) < 1e-9


def test_merge_into_nothing_is_the_new_value():
    s = _stats([("pass", "execute", 0.9, False, False)])
    assert merge_stats(None, s) == s


@given(st.floats(0, 4e9))
def test_window_start_is_aligned_and_contains_the_timestamp(t):
    start = window_start(t)
    assert start % 60 == 0 and start <= t < start + 60
