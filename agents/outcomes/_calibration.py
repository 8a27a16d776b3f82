"""A tenant's calibration samples and their refit (`trust-calibration` values).

Samples are kept per tenant keyed by decision id, so a redelivered outcome replaces its own
sample instead of adding one; the oldest go beyond `MAX_SAMPLES`.

>>> entry, fitted = refit(None, [Sample("d-1", 0.9, True)], min_samples=50, method="platt")
>>> entry["samples"], entry["since_fit"], fitted
({'d-1': [0.9, True]}, 1, False)
>>> entry, _ = refit(entry, [Sample("d-1", 0.8, False)], min_samples=50, method="platt")
>>> entry["samples"], entry["since_fit"]
({'d-1': [0.8, False]}, 2)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from resontinex.agents.trust import CalibrationAdapter

__all__ = ["MAX_SAMPLES", "REFIT_EVERY", "Sample", "refit"]

MAX_SAMPLES = 2000
REFIT_EVERY = 25


class Sample(NamedTuple):
    decision_id: str
    raw_score: float
    label: bool


def refit(entry: dict[str, Any] | None, samples: list[Sample], *, min_samples: int,
          method: str) -> tuple[dict[str, Any], bool | None]:
    """The tenant's value with `samples` added, refitted when `REFIT_EVERY` samples came
    since the last fit or none succeeded yet; and whether a fit was tried and succeeded
    (None: not tried). `entry` is not changed."""
    entry = dict(entry or {"samples": {}, "fits": 0, "since_fit": 0, "model": None})
    kept = dict(entry["samples"])
    for s in samples:
        kept.pop(s.decision_id, None)
        kept[s.decision_id] = [s.raw_score, s.label]
    while len(kept) > MAX_SAMPLES:
        kept.pop(next(iter(kept)))
    entry["samples"] = kept
    entry["since_fit"] += len(samples)
    if entry["since_fit"] < REFIT_EVERY and entry["model"] is not None:
        return entry, None
    adapter = CalibrationAdapter(min_samples=min_samples)
    report = adapter.fit([v[0] for v in kept.values()], [bool(v[1]) for v in kept.values()], method=method)
    if report.fitted:
        entry.update(model=adapter.to_dict(), fits=entry["fits"] + 1, since_fit=0)
    return entry, report.fitted
