"""Calibration of raw trust scores against observed outcome labels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression, minimize

from ._inputs import unit_interval
from ._math import HI, LO, batch_primitives, clamp, logit, sigmoid
from .exceptions import InvalidInput

METHODS = ("isotonic", "platt")


@dataclass(frozen=True, slots=True)
class FitReport:
    """What a :meth:`CalibrationAdapter.fit` call did; ``reason`` explains a refusal."""

    fitted: bool
    reason: str
    n: int
    positives: int
    method: str


def _scores(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise InvalidInput(
            f"scores must be a one-dimensional array of numbers, got {array.dtype} {array.shape}"
        )
    array = array.astype(np.float64, copy=False)
    if not ((array >= 0.0) & (array <= 1.0)).all():
        raise InvalidInput("scores must be finite and in [0, 1]")
    return array


def _labels(values: npt.ArrayLike, n: int) -> npt.NDArray[np.float64]:
    array = np.asarray(values)
    if array.shape != (n,):
        raise InvalidInput(
            f"labels must be one-dimensional with {n} entries like scores, got shape {array.shape}"
        )
    if array.dtype != np.bool_ and not ((array == 0) | (array == 1)).all():
        raise InvalidInput("labels must be booleans or 0/1")
    return array.astype(np.float64)


def _isotonic_knots(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # Pool equal scores first so each distinct score gets one fitted value.
    ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    result = isotonic_regression(means, weights=counts, increasing=True)
    # A block has one value: keeping its first and last score interpolates identically.
    keep = np.unique(np.concatenate([result.blocks[:-1], result.blocks[1:] - 1]))
    # Weighted means of 0/1 labels can overshoot [0, 1] by an ulp.
    return ux[keep], np.clip(result.x[keep], 0.0, 1.0)


def _platt_parameters(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], positives: int
) -> tuple[float, float]:
    negatives = x.shape[0] - positives
    # Platt's smoothed targets keep the fit finite on separable data.
    target = np.where(y > 0.5, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
    logit_array, sigmoid_array = batch_primitives()
    features = logit_array(np.clip(x, LO, HI))

    def log_loss(params: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        f = params[0] * features + params[1]
        residual = sigmoid_array(f) - target
        value = float(np.sum(np.logaddexp(0.0, f) - target * f))
        return value, np.array([residual @ features, residual.sum()])

    # Start from the identity map (a = 1, b = 0); a >= 0 keeps the order of scores.
    result = minimize(
        log_loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)]
    )
    return float(result.x[0]), float(result.x[1])


class CalibrationAdapter:
    """Maps raw trust scores to calibrated probabilities of a correct ``execute``.

    Fit it on (raw score, outcome label) pairs with isotonic regression (monotone,
    piecewise linear between fitted points, flat beyond them) or Platt scaling
    (``sigmoid(a * logit(score) + b)`` with ``a >= 0``, so it never reverses the order of
    scores). Until a fit succeeds, predictions are ``None``. A refused fit keeps the
    previous model. Deterministic; the state round-trips through :meth:`to_dict`, which
    is small and JSON-able.

    >>> import numpy as np
    >>> scores = np.linspace(0.0, 1.0, 200)
    >>> labels = scores > 0.7
    >>> adapter = CalibrationAdapter()
    >>> adapter.predict(0.9) is None
    True
    >>> adapter.fit(scores, labels).fitted
    True
    >>> adapter.predict(0.9), adapter.predict(0.1)
    (1.0, 0.0)
    >>> adapter.fit(scores[:10], labels[:10]).reason
    'need at least 50 samples, got 10'
    """

    __slots__ = ("_min_samples", "_report", "_knots", "_a", "_b")

    def __init__(self, *, min_samples: int = 50) -> None:
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 2:
            raise InvalidInput(f"min_samples must be an integer >= 2, got {min_samples!r}")
        self._min_samples = min_samples
        self._report: FitReport | None = None
        # isotonic: the knots (scores, values) interpolated between; platt: None, with a, b
        self._knots: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
        self._a = 0.0
        self._b = 0.0

    @property
    def min_samples(self) -> int:
        return self._min_samples

    @property
    def fitted(self) -> bool:
        return self._report is not None

    @property
    def report(self) -> FitReport | None:
        """The report of the fit in use, or None."""
        return self._report

    def fit(self, scores: npt.ArrayLike, labels: npt.ArrayLike, method: str = "isotonic") -> FitReport:
        """Fit on raw scores in [0, 1] and boolean (or 0/1) labels.

        Refuses, returning ``fitted=False`` with a reason and keeping any previous model,
        when there are fewer than ``min_samples`` pairs or only one class of label.
        Malformed arguments raise :class:`InvalidInput`.
        """
        if method not in METHODS:
            raise InvalidInput(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        x = _scores(scores)
        y = _labels(labels, x.shape[0])
        n, positives = int(x.shape[0]), int(y.sum())
        if n < self._min_samples:
            reason = f"need at least {self._min_samples} samples, got {n}"
            return FitReport(False, reason, n, positives, method)
        if positives in (0, n):
            which = "positive" if positives else "negative"
            reason = f"labels are all {which}: one class cannot be calibrated"
            return FitReport(False, reason, n, positives, method)
        if method == "isotonic":
            self._knots = _isotonic_knots(x, y)
        else:
            self._knots = None
            self._a, self._b = _platt_parameters(x, y, positives)
        self._report = FitReport(True, f"{method} fit on {n} samples", n, positives, method)
        return self._report

    def predict(self, raw_score: float) -> float | None:
        """The calibrated probability for one raw score in [0, 1], or None before a fit."""
        if self._report is None:
            return None
        raw_score = unit_interval("raw_score", raw_score)
        if self._knots is not None:
            return float(np.interp(raw_score, *self._knots))
        return sigmoid(self._a * logit(clamp(raw_score)) + self._b)

    def predict_batch(self, raw_scores: npt.ArrayLike) -> npt.NDArray[np.float64] | None:
        """:meth:`predict` over an array, element for element identical; None before a fit."""
        if self._report is None:
            return None
        x = _scores(raw_scores)
        if self._knots is not None:
            return np.interp(x, *self._knots)
        logit_array, sigmoid_array = batch_primitives()
        return sigmoid_array(self._a * logit_array(np.clip(x, LO, HI)) + self._b)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_dict` restores an adapter that predicts identically."""
        state: dict[str, Any] = {"min_samples": self._min_samples, "model": None}
        report = self._report
        if report is not None:
            model: dict[str, Any] = {"method": report.method, "n": report.n, "positives": report.positives}
            if self._knots is not None:
                model.update(x=self._knots[0].tolist(), y=self._knots[1].tolist())
            else:
                model.update(a=self._a, b=self._b)
            state["model"] = model
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CalibrationAdapter:
        """Rebuild an adapter from :meth:`to_dict` output; malformed state raises InvalidInput."""
        try:
            adapter = cls(min_samples=state["min_samples"])
            model = state["model"]
            if model is None:
                return adapter
            method, n, positives = model["method"], int(model["n"]), int(model["positives"])
            if method == "isotonic":
                x = np.asarray(model["x"], dtype=np.float64)
                y = np.asarray(model["y"], dtype=np.float64)
                ok = x.ndim == 1 and x.shape == y.shape and x.size > 0
                ok = ok and bool(np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0))
                ok = ok and bool(((x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)).all())
                if not ok:
                    raise InvalidInput(
                        "isotonic knots must be increasing scores with non-decreasing values in [0, 1]"
                    )
                adapter._knots = x, y
            elif method == "platt":
                a, b = float(model["a"]), float(model["b"])
                if not (math.isfinite(a) and math.isfinite(b) and a >= 0.0):
                    raise InvalidInput("platt parameters must be finite with a >= 0")
                adapter._a, adapter._b = a, b
            else:
                raise InvalidInput(f"unknown calibration method {method!r}")
        except InvalidInput:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed calibration state: {exc!r}") from None
        adapter._report = FitReport(True, f"{method} fit on {n} samples (restored)", n, positives, method)
        return adapter
