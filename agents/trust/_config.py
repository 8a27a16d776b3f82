"""Trust gate configuration: parsing, validation, normalisation and the policy version."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from numbers import Real
from typing import Any

import yaml

from ._breaker import BreakerConfig
from ._inputs import SIGNALS
from ._names import TIER_DECISIONS, TIERS
from .exceptions import ConfigError

REQUIRED_KEYS = ("weights", "risk_tiers", "trust_floor", "entropy_threshold")
CALIBRATION_METHODS = ("isotonic", "platt")
DECIDE_ON = ("raw", "calibrated")
"""Which score sets the tier and the verb: the composite score, or a tenant's calibrated
score once the tenant has a calibration (the raw score until then)."""

_DEFAULTS: dict[str, Any] = {
    "weights": {"alignment_score": 0.45, "epistemic_risk": 0.35, "confidence_band": 0.20},
    "risk_tiers": {"block": 0.25, "review": 0.50, "monitor": 0.75, "pass": 1.01},
    "trust_floor": 0.60,
    "entropy_threshold": 0.72,
}
_ROOT = "<config>"
_WEIGHT_DIGITS = 12
_UNIT_SUM_TOLERANCE = 1e-9


def _real(key: str, value: object, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(key, f"must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(key, f"must be finite, got {number!r}")
    if lo is not None and number < lo:
        raise ConfigError(key, f"must be >= {lo}, got {number!r}")
    if hi is not None and number > hi:
        raise ConfigError(key, f"must be <= {hi}, got {number!r}")
    return number


def _mapping(key: str, value: object, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
    for name in value:
        if name not in allowed:
            child = str(name) if key == _ROOT else f"{key}.{name}"
            raise ConfigError(child, f"unknown key (expected one of {', '.join(allowed)})")
    return value


def _checked_weights(weights: object) -> tuple[float, float, float]:
    if not isinstance(weights, tuple) or len(weights) != len(SIGNALS):
        raise ConfigError("weights", f"must be a tuple of {len(SIGNALS)} weights {SIGNALS}")
    a, r, c = (_real(f"weights.{name}", w, lo=0.0) for name, w in zip(SIGNALS, weights))
    if abs(math.fsum((a, r, c)) - 1.0) > _UNIT_SUM_TOLERANCE:
        raise ConfigError("weights", "must sum to 1 (config_from_mapping normalises them)")
    return a, r, c


def _checked_tiers(risk_tiers: object) -> tuple[tuple[str, float], ...]:
    """Every tier once, sorted ascending by threshold, distinct, the last >= 1."""
    if not isinstance(risk_tiers, tuple) or not all(isinstance(i, tuple) and len(i) == 2 for i in risk_tiers):
        raise ConfigError("risk_tiers", f"must be a tuple of (tier, threshold) pairs, got {risk_tiers!r}")
    tiers = []
    for name, threshold in risk_tiers:
        if name not in TIERS:
            raise ConfigError(f"risk_tiers.{name}", f"unknown tier (expected {', '.join(TIERS)})")
        tiers.append((name, _real(f"risk_tiers.{name}", threshold, lo=0.0)))
    names = [name for name, _ in tiers]
    for name in TIERS:
        if names.count(name) != 1:
            raise ConfigError(f"risk_tiers.{name}", "every tier must appear exactly once")
    tiers.sort(key=lambda item: item[1])
    for (_, previous), (name, threshold) in zip(tiers, tiers[1:]):
        if threshold == previous:
            raise ConfigError(f"risk_tiers.{name}", f"threshold {threshold!r} is not distinct")
    if tiers[-1][1] < 1.0:
        raise ConfigError("risk_tiers", "the highest threshold must be >= 1 so every score has a tier")
    return tuple(tiers)


def policy_version_of(mapping: Mapping[str, Any]) -> str:
    """First 12 hex characters of SHA-256 over ``mapping`` as key-sorted compact JSON.

    Exactly what is hashed: the UTF-8 bytes of ``json.dumps(mapping, sort_keys=True,
    separators=(",", ":"), allow_nan=False)`` (ASCII-escaped, Python's shortest float
    repr). Use it to version several components' configurations together, e.g.
    ``policy_version_of({"trust": trust.as_dict(), "budget": ...})``. Data that JSON
    cannot represent (NaN, sets, objects) raises ``ValueError`` or ``TypeError``.

    >>> policy_version_of({"b": 1, "a": [0.5]}) == policy_version_of({"a": [0.5], "b": 1})
    True
    >>> len(policy_version_of({}))
    12
    """
    text = json.dumps(mapping, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class TrustConfig:
    """A validated, normalised trust gate configuration.

    Build it with :func:`config_from_mapping`, :func:`load_config` or
    :func:`default_config`. Direct construction runs the same checks: weights (in
    ``SIGNALS`` order) must be non-negative and sum to 1; ``risk_tiers`` holds every tier
    of ``TIERS`` once, in any order (stored ascending by threshold), with distinct
    thresholds, the highest at least 1 so every score has a tier.

    >>> config = default_config()
    >>> config.weights
    (0.45, 0.35, 0.2)
    >>> config.risk_tiers
    (('block', 0.25), ('review', 0.5), ('monitor', 0.75), ('pass', 1.01))
    """

    weights: tuple[float, float, float]
    risk_tiers: tuple[tuple[str, float], ...]
    trust_floor: float
    entropy_threshold: float
    calibration_method: str = "isotonic"
    calibration_min_samples: int = 50
    decide_on: str = "raw"
    circuit_breaker: BreakerConfig = BreakerConfig()
    # Derived once here so that evaluation does no lookups beyond tuple indexing.
    _thresholds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _tiers: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _tier_decisions: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _version: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "weights", _checked_weights(self.weights))
        tiers = _checked_tiers(self.risk_tiers)
        set_(self, "risk_tiers", tiers)
        set_(self, "trust_floor", _real("trust_floor", self.trust_floor, 0.0, 1.0))
        set_(self, "entropy_threshold", _real("entropy_threshold", self.entropy_threshold, 0.0, 1.0))
        if self.calibration_method not in CALIBRATION_METHODS:
            expected = ", ".join(CALIBRATION_METHODS)
            got = self.calibration_method
            raise ConfigError("calibration.method", f"must be one of {expected}, got {got!r}")
        samples = self.calibration_min_samples
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
            raise ConfigError("calibration.min_samples", f"must be an integer >= 2, got {samples!r}")
        if self.decide_on not in DECIDE_ON:
            raise ConfigError("decide_on", f"must be one of {', '.join(DECIDE_ON)}, got {self.decide_on!r}")
        set_(self, "_thresholds", tuple(threshold for _, threshold in tiers))
        set_(self, "_tiers", tuple(name for name, _ in tiers))
        set_(self, "_tier_decisions", tuple(TIER_DECISIONS[name] for name, _ in tiers))
        set_(self, "_version", policy_version_of(self.as_dict()))

    def as_dict(self) -> dict[str, Any]:
        """The normalised configuration as plain JSON-able data (what the version hashes).

        It is also a valid input to :func:`config_from_mapping`, which returns an equal config.
        ``decide_on`` and ``circuit_breaker`` appear only when they differ from their
        defaults, so configurations written before they existed keep their policy version.
        """
        later = {"decide_on": self.decide_on, "circuit_breaker": self.circuit_breaker.as_dict()}
        defaults = {"decide_on": "raw", "circuit_breaker": BreakerConfig().as_dict()}
        return {k: v for k, v in later.items() if v != defaults[k]} | {
            "weights": dict(zip(SIGNALS, self.weights)),
            "risk_tiers": dict(self.risk_tiers),
            "trust_floor": self.trust_floor,
            "entropy_threshold": self.entropy_threshold,
            "calibration": {
                "method": self.calibration_method,
                "min_samples": self.calibration_min_samples,
            },
        }


def policy_version(config: TrustConfig) -> str:
    """The policy version of a trust config: ``policy_version_of(config.as_dict())``.

    Equal normalised configs hash the same however they were written (key order,
    ``0.45`` or ``45``, ints or floats, tier order).

    >>> a = config_from_mapping({**default_config().as_dict(), "weights": {
    ...     "alignment_score": 45, "epistemic_risk": 35, "confidence_band": 20}})
    >>> policy_version(a) == policy_version(default_config())
    True
    """
    return config._version


def config_from_mapping(mapping: Mapping[str, Any]) -> TrustConfig:
    """Validate and normalise a configuration mapping (e.g. parsed YAML).

    Required keys: ``weights`` (every signal, non-negative, positive sum), ``risk_tiers``
    (block, review, monitor, pass), ``trust_floor`` and ``entropy_threshold`` (in [0, 1]).
    Optional: ``calibration`` with ``method`` (isotonic | platt) and ``min_samples``;
    ``decide_on`` (raw | calibrated, default raw); ``circuit_breaker`` with ``open_rate``,
    ``close_rate``, ``window_s`` and ``min_events`` (see :class:`BreakerConfig`).
    Unknown keys are refused. Weights that already sum to 1 within 1e-9 are used as
    written; others are divided by their sum and rounded to 12 decimal places, so the
    same policy written as 45/35/20, 9/7/4 or 0.45/0.35/0.2 normalises, and hashes,
    identically (and normalising twice changes nothing). Any problem raises
    :class:`ConfigError` naming the key; nothing is returned half-validated.

    >>> config_from_mapping({"weights": {}, "risk_tiers": {}, "trust_floor": 0.6})
    Traceback (most recent call last):
    ...
    resontinex.agents.trust.exceptions.ConfigError: entropy_threshold: required key is missing
    """
    top = _mapping(_ROOT, mapping, (*REQUIRED_KEYS, "calibration", "decide_on", "circuit_breaker"))
    for key in REQUIRED_KEYS:
        if key not in top:
            raise ConfigError(key, "required key is missing")

    weights_in = _mapping("weights", top["weights"], SIGNALS)
    raw = []
    for name in SIGNALS:
        if name not in weights_in:
            raise ConfigError(f"weights.{name}", "required weight is missing")
        raw.append(_real(f"weights.{name}", weights_in[name], lo=0.0))
    try:
        total = math.fsum(raw)
    except OverflowError:
        raise ConfigError("weights", "sum overflows") from None
    if not total > 0.0:
        raise ConfigError("weights", "must have a positive sum")
    if abs(total - 1.0) > _UNIT_SUM_TOLERANCE:
        raw = [round(w / total, _WEIGHT_DIGITS) for w in raw]

    tiers = _mapping("risk_tiers", top["risk_tiers"], TIERS)
    calibration = _mapping("calibration", top.get("calibration", {}), ("method", "min_samples"))
    return TrustConfig(
        weights=(raw[0], raw[1], raw[2]),
        risk_tiers=tuple(tiers.items()),
        trust_floor=top["trust_floor"],
        entropy_threshold=top["entropy_threshold"],
        calibration_method=calibration.get("method", "isotonic"),
        calibration_min_samples=calibration.get("min_samples", 50),
        decide_on=top.get("decide_on", "raw"),
        circuit_breaker=BreakerConfig(**_mapping("circuit_breaker", top.get("circuit_breaker", {}),
                                                 tuple(BreakerConfig().as_dict()))),
    )


def load_config(path: str | os.PathLike[str]) -> TrustConfig:
    """Read a YAML file and return its validated config (see :func:`config_from_mapping`).

    An unreadable or unparsable file raises :class:`ConfigError` keyed by the path.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(os.fspath(path), f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(os.fspath(path), f"not valid YAML: {exc}") from None
    return config_from_mapping(document)


@cache
def default_config() -> TrustConfig:
    """The defaults of CONTRACT section 5 (the values in ``config/trust_gate.yaml``)."""
    return config_from_mapping(_DEFAULTS)
