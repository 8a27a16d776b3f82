from hypothesis import given
from hypothesis import strategies as st

from resontinex.app.engine.recent import RecentMap


@given(st.lists(st.text(max_size=3)), st.integers(1, 20))
def test_keeps_exactly_the_last_distinct_keys(keys, capacity):
    r: RecentMap[int] = RecentMap(capacity)
    for i, k in enumerate(keys):
        r.put(k, i)
    last_distinct = list(dict.fromkeys(reversed(keys)))[:capacity]
    assert len(r) == len(last_distinct)
    assert all(k in r for k in last_distinct)
    for k in last_distinct:
        assert r.get(k) == max(i for i, kk in enumerate(keys) if kk == k)


def test_capacity_must_be_positive():
    import pytest

    with pytest.raises(ValueError):
        RecentMap(0)
