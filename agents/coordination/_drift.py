"""Quality drift and ineffective coordination per (tenant, strategy), from recent runs.

Drift (seed 003): with at least `min_samples` qualities known, |mean(last `recent`) −
mean(the earlier ones)| > `threshold`. Ineffective: the mean γ of the last `window` runs
is below 1. Each is raised once per crossing: again only after it has cleared. Immutable:
`observe` returns the new history and what it raised.

>>> h = RunHistory()
>>> raised = []
>>> for q in [0.8] * 10 + [0.5] * 10:
...     h, events = h.observe(q, gamma=1.2)
...     raised += events
>>> [e.kind for e in raised], round(raised[0].details["shift"], 3)
(['coordination_drift'], -0.3)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from .exceptions import ConfigError

__all__ = ["DriftSettings", "RunHistory", "Signal"]

SignalKind = Literal["coordination_drift", "coordination_ineffective"]


@dataclass(frozen=True, slots=True)
class DriftSettings:
    min_samples: int = 20
    recent: int = 10
    threshold: float = 0.1
    kept: int = 100
    """Qualities kept: the earlier ones are the `kept − recent` before the recent ones."""
    gamma_window: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.recent < self.min_samples <= self.kept:
            raise ConfigError("drift", "need 1 ≤ recent < min_samples ≤ kept, got "
                                       f"{self.recent}, {self.min_samples}, {self.kept}")
        if not self.threshold > 0 or self.gamma_window < 1:
            raise ConfigError("drift", f"threshold must be > 0 and gamma_window ≥ 1, got {self.threshold}, "
                                       f"{self.gamma_window}")


@dataclass(frozen=True, slots=True)
class Signal:
    kind: SignalKind
    message: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunHistory:
    settings: DriftSettings = DriftSettings()
    qualities: tuple[float, ...] = ()
    gammas: tuple[float, ...] = ()
    drifting: bool = False
    ineffective: bool = False

    def observe(self, quality: float, *, gamma: float) -> tuple[RunHistory, list[Signal]]:
        s = self.settings
        qualities = (*self.qualities, quality)[-s.kept:]
        gammas = (*self.gammas, gamma)[-s.gamma_window:]
        signals: list[Signal] = []
        shift = _shift(qualities, s)
        drifting = shift is not None and abs(shift) > s.threshold
        if drifting and not self.drifting:
            assert shift is not None
            signals.append(Signal("coordination_drift",
                                  f"coordinated quality moved by {shift:+.3f} (mean of the last {s.recent} runs against "
                                  f"the {len(qualities) - s.recent} before them; limit ±{s.threshold:g})",
                                  {"shift": shift, "recent_mean": float(np.mean(qualities[-s.recent:])),
                                   "earlier_mean": float(np.mean(qualities[:-s.recent])), "samples": len(qualities)}))
        mean_gamma = float(np.mean(gammas))
        ineffective = len(gammas) >= s.gamma_window and mean_gamma < 1.0
        if ineffective and not self.ineffective:
            signals.append(Signal("coordination_ineffective",
                                  f"mean γ {mean_gamma:.3f} over the last {s.gamma_window} runs: the team does worse "
                                  "than its members alone",
                                  {"mean_gamma": mean_gamma, "window": s.gamma_window}))
        return replace(self, qualities=qualities, gammas=gammas, drifting=drifting,
                       ineffective=ineffective), signals

    def as_dict(self) -> dict[str, Any]:
        return {"qualities": list(self.qualities), "gammas": list(self.gammas), "drifting": self.drifting,
                "ineffective": self.ineffective}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, settings: DriftSettings) -> RunHistory:
        if not d:
            return cls(settings)
        return cls(settings, tuple(map(float, d["qualities"]))[-settings.kept:],
                   tuple(map(float, d["gammas"]))[-settings.gamma_window:], bool(d["drifting"]),
                   bool(d["ineffective"]))


def _shift(qualities: tuple[float, ...], s: DriftSettings) -> float | None:
    if len(qualities) < s.min_samples:
        return None
    return float(np.mean(qualities[-s.recent:]) - np.mean(qualities[:-s.recent]))
