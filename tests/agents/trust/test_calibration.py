from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resontinex.agents.trust import CalibrationAdapter, FitReport, InvalidInput


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores whose true success probability is sigmoid(3·logit(s) + 1), not s."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.01, 0.99, n)
    p = 1 / (1 + np.exp(-(3 * np.log(s / (1 - s)) + 1)))
    return s, rng.uniform(size=n) < p


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def test_unfitted_predicts_none() -> None:
    adapter = CalibrationAdapter()
    assert not adapter.fitted and adapter.report is None
    assert adapter.predict(0.5) is None and adapter.predict_batch(np.array([0.5])) is None
    assert adapter.to_dict() == {"min_samples": 50, "model": None}


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_refuses_too_few_samples(method: str) -> None:
    s, y = miscalibrated(49, 0)
    report = CalibrationAdapter().fit(s, y, method)
    assert report == FitReport(False, "need at least 50 samples, got 49", 49, int(y.sum()), method)
    assert CalibrationAdapter(min_samples=10).fit(s, y, method).fitted


@pytest.mark.parametrize("label", [True, False])
def test_refuses_one_class(label: bool) -> None:
    adapter = CalibrationAdapter()
    report = adapter.fit(np.linspace(0, 1, 100), np.full(100, label))
    assert not report.fitted and "one class" in report.reason
    assert not adapter.fitted


def test_refused_fit_keeps_the_previous_model() -> None:
    s, y = miscalibrated(500, 1)
    adapter = CalibrationAdapter()
    adapter.fit(s, y)
    before = adapter.to_dict()
    assert not adapter.fit(s[:10], y[:10]).fitted
    assert adapter.to_dict() == before and adapter.fitted


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 1.2], [0, 1], "scores must be finite"),
        ([0.1, np.nan], [0, 1], "scores must be finite"),
        ([0.1, 0.2], [0, 2], "labels must be booleans or 0/1"),
        ([0.1, 0.2], [0], "labels must be one-dimensional with 2 entries"),
        ([[0.1, 0.2]], [0, 1], "one-dimensional"),
    ],
)
def test_malformed_arguments_raise(scores: list, labels: list, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        CalibrationAdapter().fit(np.array(scores), np.array(labels))


def test_bad_method_and_min_samples() -> None:
    with pytest.raises(InvalidInput, match="method"):
        CalibrationAdapter().fit([0.5], [1], "beta")
    with pytest.raises(InvalidInput, match="min_samples"):
        CalibrationAdapter(min_samples=1)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_improves_brier_score_on_held_out_data(method: str) -> None:
    s, y = miscalibrated(6000, 2)
    adapter = CalibrationAdapter()
    assert adapter.fit(s[:4000], y[:4000], method).fitted
    assert brier(adapter.predict_batch(s[4000:]), y[4000:]) < brier(s[4000:], y[4000:]) - 0.01


def test_platt_recovers_the_generating_curve() -> None:
    s, y = miscalibrated(20000, 3)
    adapter = CalibrationAdapter()
    adapter.fit(s, y, "platt")
    model = adapter.to_dict()["model"]
    assert abs(model["a"] - 3) < 0.3 and abs(model["b"] - 1) < 0.3


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["isotonic", "platt"]), st.integers(50, 400))
def test_monotone_bounded_and_consistent(seed: int, method: str, n: int) -> None:
    rng = np.random.default_rng(seed)
    s = np.round(rng.uniform(0, 1, n), 2)  # rounding makes ties
    y = rng.uniform(size=n) < rng.uniform(0, 1)
    adapter = CalibrationAdapter()
    if not adapter.fit(s, y, method).fitted:
        return
    grid = np.linspace(0.0, 1.0, 1001)
    out = adapter.predict_batch(grid)
    assert np.all(np.diff(out) >= 0)
    assert np.all((out >= 0) & (out <= 1))
    assert [adapter.predict(x) for x in grid.tolist()] == out.tolist()


def test_isotonic_interpolates_and_clips() -> None:
    s = np.array([0.2] * 30 + [0.4] * 30 + [0.8] * 30)
    y = np.array([0] * 30 + [1] * 15 + [0] * 15 + [1] * 30)
    adapter = CalibrationAdapter()
    adapter.fit(s, y)
    assert adapter.predict(0.2) == 0.0 and adapter.predict(0.4) == 0.5 and adapter.predict(0.8) == 1.0
    assert adapter.predict(0.3) == pytest.approx(0.25)
    assert adapter.predict(0.0) == 0.0 and adapter.predict(1.0) == 1.0


def test_isotonic_state_is_compact() -> None:
    s, y = miscalibrated(20000, 4)
    adapter = CalibrationAdapter()
    adapter.fit(s, y)
    assert len(json.dumps(adapter.to_dict())) < 20_000


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_round_trips_through_json(method: str) -> None:
    s, y = miscalibrated(1000, 5)
    adapter = CalibrationAdapter(min_samples=100)
    adapter.fit(s, y, method)
    restored = CalibrationAdapter.from_dict(json.loads(json.dumps(adapter.to_dict())))
    assert restored.to_dict() == adapter.to_dict()
    assert restored.min_samples == 100 and restored.fitted
    grid = np.linspace(0, 1, 257)
    assert np.array_equal(restored.predict_batch(grid), adapter.predict_batch(grid))
    unfitted = CalibrationAdapter.from_dict(CalibrationAdapter().to_dict())
    assert not unfitted.fitted


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_deterministic(method: str) -> None:
    s, y = miscalibrated(2000, 6)
    one, two = CalibrationAdapter(), CalibrationAdapter()
    one.fit(s, y, method)
    two.fit(s.copy(), y.copy(), method)
    assert one.to_dict() == two.to_dict()


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"min_samples": 50},
        {"min_samples": 50, "model": {"method": "beta", "n": 1, "positives": 1}},
        {"min_samples": 50, "model": {"method": "platt", "n": 60, "positives": 30, "a": -1.0, "b": 0.0}},
        {"min_samples": 50, "model": {"method": "platt", "n": 60, "positives": 30, "a": "x", "b": 0.0}},
        {"min_samples": 50, "model": {"method": "isotonic", "n": 60, "positives": 30, "x": [0.5, 0.2], "y": [0, 1]}},
        {"min_samples": 50, "model": {"method": "isotonic", "n": 60, "positives": 30, "x": [0.2, 0.5], "y": [1, 0]}},
        {"min_samples": 50, "model": {"method": "isotonic", "n": 60, "positives": 30, "x": [], "y": []}},
    ],
)
def test_malformed_state_is_refused(state: dict) -> None:
    with pytest.raises(InvalidInput):
        CalibrationAdapter.from_dict(state)


def test_predict_validates_its_input() -> None:
    s, y = miscalibrated(200, 7)
    adapter = CalibrationAdapter()
    adapter.fit(s, y)
    with pytest.raises(InvalidInput):
        adapter.predict(float("nan"))
    with pytest.raises(InvalidInput):
        adapter.predict_batch(np.array([0.5, 2.0]))
