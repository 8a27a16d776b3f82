from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import example, given
from hypothesis import strategies as st

from resontinex.agents.trust import _math

from ._support import EDGES, unit


@pytest.fixture
def disagreeing_scipy(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    real = scipy.special.logit
    monkeypatch.setattr(scipy.special, "logit", lambda x: np.nextafter(real(x), np.inf))
    _math.batch_primitives.cache_clear()
    yield
    monkeypatch.undo()
    _math.batch_primitives.cache_clear()


def _half_points() -> list[float]:
    points = []
    for k in (0, 1, 312, 2500, 4999, 5000, 7680, 9999):
        h = (k + 0.5) / 1e4
        points += [h, math.nextafter(h, 0.0), math.nextafter(h, 1.0)]
    return points


@given(st.one_of(st.floats(0.0, 1.0), st.sampled_from(EDGES + _half_points())))
@example(0.03125)  # exactly a half-integer times 1e-4: ties to even
def test_round4_matches_round(x: float) -> None:
    assert _math.round4(x) == round(x, 4)
    assert _math.round4_array(np.array([x]))[0] == round(x, 4)


def test_round4_array_matches_round_on_many_values() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(0, 1, 100_000), _half_points()])
    assert np.array_equal(_math.round4_array(x), [round(v, 4) for v in x.tolist()])


@given(unit)
def test_logit_is_antisymmetric_and_accurate(p: float) -> None:
    p = _math.clamp(p)
    assert math.isclose(_math.logit(p), math.log(p) - math.log1p(-p), rel_tol=1e-12, abs_tol=1e-15)


def test_sigmoid_clamps_z() -> None:
    assert _math.sigmoid(1e6) == _math.sigmoid(500.0) == 1.0
    assert _math.sigmoid(-1e6) == _math.sigmoid(-500.0) > 0.0
    assert _math.sigmoid(0.0) == 0.5


def test_batch_primitives_match_the_scalar_ones() -> None:
    logit, sigmoid = _math.batch_primitives()
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(_math.LO, _math.HI, 200_000), np.clip(EDGES, _math.LO, _math.HI)])
    z = np.concatenate([rng.uniform(-30, 30, 200_000), rng.uniform(-600, 600, 10_000), [0.0, -0.0]])
    assert np.array_equal(logit(p), [_math.logit(v) for v in p.tolist()])
    assert np.array_equal(sigmoid(z), [_math.sigmoid(v) for v in z.tolist()])


@pytest.mark.usefixtures("disagreeing_scipy")
def test_falls_back_to_the_scalar_primitives_when_scipy_disagrees() -> None:
    logit, sigmoid = _math.batch_primitives()
    p = np.array([1e-6, 0.3, 0.5, 0.9])
    assert np.array_equal(logit(p), [_math.logit(v) for v in p.tolist()])
    assert np.array_equal(sigmoid(np.array([-3.0, 0.0, 2.0])), [_math.sigmoid(v) for v in (-3.0, 0.0, 2.0)])
