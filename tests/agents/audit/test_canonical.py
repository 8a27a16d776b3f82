"""The fast canonical JSON path must write exactly what rfc8785 writes."""

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.audit._canonical import canonical_json

SAFE_INT = 2**53 - 1
scalars = (
    st.none() | st.booleans()
    | st.integers(-SAFE_INT, SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=1500)
@given(values)
def test_equal_to_rfc8785_byte_for_byte(value):
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [
    1.0, -0.0, 100.0, 1e16, 1e21, 1e-7, 5e-324, 123456789012345680000.0, 0.30000000000000004,
    {"\ue000": 1, "😀": 2, "a": 3}, ["\x00\x1f\x7f\u2028\"\\"], {"k": [1.0, {"x": 2.0}]},
])
def test_the_cases_where_orjson_differs(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_unsafe_integers_are_refused_like_rfc8785():
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json({"n": (SAFE_INT + 1) * 4})
    assert math.isfinite(1.0)
