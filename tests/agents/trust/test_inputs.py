from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trust import InputVector, InvalidInput


def test_values_are_stored_as_floats() -> None:
    vector = InputVector(1, np.float64(0.25), Fraction(1, 2))
    assert vector == InputVector(1.0, 0.25, 0.5)
    assert all(type(v) is float for v in dataclasses.astuple(vector))


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        InputVector(0.1, 0.2, 0.3).alignment_score = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be a real number in [0, 1], got bool"),
        ("0.5", "must be a real number in [0, 1], got str"),
        (None, "must be a real number in [0, 1], got NoneType"),
        (Decimal("0.5"), "must be a real number in [0, 1], got Decimal"),
        (float("nan"), "must be finite, got nan"),
        (float("inf"), "must be finite, got inf"),
        (float("-inf"), "must be finite, got -inf"),
        (-0.1, "must be in [0, 1], got -0.1"),
        (1.0000001, "must be in [0, 1], got 1.0000001"),
    ],
)
@pytest.mark.parametrize("position", range(3))
def test_invalid_values_name_the_field(value: object, message: str, position: int) -> None:
    names = ("alignment_score", "epistemic_risk", "confidence_band")
    args = [0.5, 0.5, 0.5]
    args[position] = value  # type: ignore[call-overload]
    with pytest.raises(InvalidInput) as info:
        InputVector(*args)
    assert str(info.value) == f"{names[position]} {message}"
    assert isinstance(info.value, ValueError)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_accepts_the_whole_unit_interval(a: float, r: float, c: float) -> None:
    assert InputVector(a, r, c) == InputVector(a, r, c)
