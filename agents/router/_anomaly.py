"""`routing_anomaly` detectors (seed 002 promises them; issue 4 defines them).

`QJumpDetector`: per (state, provider), the last `window` changes of the value estimate
Δ = new − old. A new change is a jump when at least `min_samples` earlier changes are
known and |Δ − μ| > k·σ (μ, σ: mean and population standard deviation of those earlier
changes). When they were all equal (σ = 0) any other change is a jump. Every change,
jump or not, then joins the window (so a lasting regime shift stops alerting once it
is the norm).

`SuccessRateMonitor`: per provider, the last `window` outcomes. Once the window is full,
a success rate below `minimum` is an anomaly, raised once per crossing: again only after
the rate has been back at or above `minimum`.

Both are immutable: `observe` returns the new detector and the anomaly, if any.

>>> m = SuccessRateMonitor(window=4, minimum=0.5)
>>> fired = []
>>> for ok in (True, False, False, False, False, True, True, False, False, False):
...     m, anomaly = m.observe("akash", ok)
...     fired.append(anomaly is not None)
>>> fired
[False, False, False, True, False, False, False, False, False, True]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from . import _codec as codec
from ._config import AnomalyConfig
from .exceptions import RouterError, TableError

AnomalyKind = Literal["q_jump", "success_rate"]
_SAME = 1e-12  # |Δ − μ| at or under this is "the same change" when σ is 0


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One detected anomaly; `alert()` gives the `routing_anomaly` alert's fields."""

    kind: AnomalyKind
    provider_id: str
    state_key: str | None
    message: str
    details: Mapping[str, float | int | str | None]

    def alert(self) -> dict[str, Any]:
        """`kind`, `severity`, `message`, `details` of the alert (CONTRACT §3.7)."""
        details = {"anomaly": self.kind, "provider_id": self.provider_id, "state_key": self.state_key,
                   **self.details}
        return {"kind": "routing_anomaly", "severity": "warning", "message": self.message, "details": details}


@dataclass(frozen=True, slots=True)
class QJumpDetector:
    """Flags value-estimate changes far outside a (state, provider)'s recent changes.

    >>> d = QJumpDetector(k=3.0, window=10, min_samples=3)
    >>> for delta in (0.10, 0.12, 0.08, 0.11):
    ...     d, anomaly = d.observe("s:*:*", "akash", 1.0, 1.0 + delta)
    >>> anomaly is None, d.observe("s:*:*", "akash", 1.0, 3.0)[1].kind
    (True, 'q_jump')
    """

    k: float = 3.0
    window: int = 20
    min_samples: int = 5
    history: Mapping[str, Mapping[str, tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: AnomalyConfig) -> Self:
        return cls(cfg.q_jump_k, cfg.q_jump_window, cfg.q_jump_min_samples)

    def changes(self, state_key: str, provider_id: str) -> tuple[float, ...]:
        return self.history.get(state_key, {}).get(provider_id, ())

    def is_jump(self, state_key: str, provider_id: str, delta: float) -> tuple[bool, float, float]:
        """(jump?, μ, σ) of a change against the recent ones."""
        recent = self.changes(state_key, provider_id)
        if len(recent) < self.min_samples:
            return False, math.nan, math.nan
        mu = math.fsum(recent) / len(recent)
        sigma = math.sqrt(math.fsum((d - mu) ** 2 for d in recent) / len(recent))
        off = abs(delta - mu)
        return (off > self.k * sigma if sigma > 0 else off > _SAME), mu, sigma

    def observe(self, state_key: str, provider_id: str, old: float, new: float) -> tuple[Self, Anomaly | None]:
        """Record the change old → new of one value estimate; the anomaly if it is a jump."""
        if not (math.isfinite(old) and math.isfinite(new)):
            raise RouterError(f"value estimates must be finite, got {old!r} -> {new!r}")
        delta = new - old
        jump, mu, sigma = self.is_jump(state_key, provider_id, delta)
        recent = (*self.changes(state_key, provider_id), delta)[-self.window:]
        row = {**self.history.get(state_key, {}), provider_id: recent}
        updated = type(self)(self.k, self.window, self.min_samples, {**self.history, state_key: row})
        if not jump:
            return updated, None
        message = (f"Q-value of {provider_id} in {state_key} moved {delta:+.4g} ({old:.4g} -> {new:.4g}); "
                   f"recent changes {mu:+.4g} ± {sigma:.4g}, limit {self.k:g} sigma")
        return updated, Anomaly("q_jump", provider_id, state_key, message,
                                {"old": old, "new": new, "delta": delta, "mean": mu, "std": sigma, "k": self.k})

    def to_dict(self) -> dict[str, Any]:
        return {"history": {s: {p: list(v) for p, v in sorted(row.items())} for s, row in sorted(self.history.items())}}

    @classmethod
    def from_dict(cls, data: object, cfg: AnomalyConfig, path: str = "q_jump") -> Self:
        body = codec.mapping(data, path, required=("history",), allowed=("history",))
        hist_path = codec.child(path, "history")
        history: dict[str, dict[str, tuple[float, ...]]] = {}
        for state_key, row in codec.mapping(body["history"], hist_path).items():
            row_path = codec.child(hist_path, state_key)
            history[state_key] = {}
            for pid, values in codec.mapping(row, row_path).items():
                p = codec.child(row_path, pid)
                deltas = codec.sequence(values, p)
                kept = tuple(codec.real(v, f"{p}[{i}]") for i, v in enumerate(deltas))
                history[state_key][pid] = kept[-cfg.q_jump_window:]
        return cls(cfg.q_jump_k, cfg.q_jump_window, cfg.q_jump_min_samples, history)


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """A provider's recent outcomes (oldest first) and whether it is below the minimum."""

    outcomes: tuple[bool, ...] = ()
    below: bool = False


@dataclass(frozen=True, slots=True)
class SuccessRateMonitor:
    """Flags a provider whose success rate over its last `window` outcomes drops below
    `minimum`, once per crossing."""

    window: int = 20
    minimum: float = 0.5
    providers: Mapping[str, ProviderRecord] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: AnomalyConfig) -> Self:
        return cls(cfg.success_rate_window, cfg.success_rate_min)

    def rate(self, provider_id: str) -> float | None:
        """The success rate over the provider's recent outcomes (None: none yet)."""
        outcomes = self.providers.get(provider_id, ProviderRecord()).outcomes
        return sum(outcomes) / len(outcomes) if outcomes else None

    def observe(self, provider_id: str, success: bool) -> tuple[Self, Anomaly | None]:
        record = self.providers.get(provider_id, ProviderRecord())
        outcomes = (*record.outcomes, bool(success))[-self.window:]
        full = len(outcomes) == self.window
        rate = sum(outcomes) / len(outcomes)
        below = full and rate < self.minimum
        fired = below and not record.below
        # `below` holds until the rate is back at or above the minimum
        still_below = below or (record.below and rate < self.minimum)
        updated = type(self)(self.window, self.minimum,
                             {**self.providers, provider_id: ProviderRecord(outcomes, still_below)})
        if not fired:
            return updated, None
        message = (f"{provider_id} succeeded in {sum(outcomes)} of its last {len(outcomes)} outcomes "
                   f"({rate:.0%}), below the minimum {self.minimum:.0%}")
        return updated, Anomaly("success_rate", provider_id, None, message,
                                {"success_rate": rate, "minimum": self.minimum, "window": self.window})

    def to_dict(self) -> dict[str, Any]:
        return {"providers": {p: {"outcomes": [int(o) for o in r.outcomes], "below": r.below}
                              for p, r in sorted(self.providers.items())}}

    @classmethod
    def from_dict(cls, data: object, cfg: AnomalyConfig, path: str = "success_rate") -> Self:
        body = codec.mapping(data, path, required=("providers",), allowed=("providers",))
        prov_path = codec.child(path, "providers")
        providers = {}
        for pid, raw in codec.mapping(body["providers"], prov_path).items():
            p = codec.child(prov_path, pid)
            rec = codec.mapping(raw, p, required=("outcomes", "below"), allowed=("outcomes", "below"))
            outs = codec.sequence(rec["outcomes"], codec.child(p, "outcomes"))
            for i, o in enumerate(outs):
                if o not in (0, 1) or isinstance(o, float):
                    raise TableError(f"{codec.child(p, 'outcomes')}[{i}]", f"must be 0 or 1, got {o!r}")
            if not isinstance(rec["below"], bool):
                raise TableError(codec.child(p, "below"), f"must be true or false, got {rec['below']!r}")
            providers[pid] = ProviderRecord(tuple(bool(o) for o in outs)[-cfg.success_rate_window:], rec["below"])
        return cls(cfg.success_rate_window, cfg.success_rate_min, providers)
