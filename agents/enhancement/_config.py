"""`enhancements.yaml`: preflight items, telemetry windows, the monitor's thresholds and
cooldowns, the canary judge, limits per tenant.

Durations are ISO 8601 (`PT1H30M` is 90 minutes; seed 004's parser kept only the hours):

>>> cfg = enhancement_config_from({"monitor": {"cooldown": {"consecutive": "PT1H30M"}}})
>>> cfg.monitor.cooldown.consecutive_s, cfg.monitor.cooldown.critical_s
(5400.0, 86400.0)
>>> enhancement_config_from({"telemetry": {"window": "1h"}})
Traceback (most recent call last):
...
resontinex.agents.enhancement.exceptions.ConfigError: telemetry.window: must be an ISO 8601 duration such as PT1H30M, got '1h'
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from resontinex.agents._checks import ROOT, Checks

from ._canary import CanarySettings, MetricJudge
from ._ramp import RampSettings
from .exceptions import ConfigError

__all__ = ["CanaryConfig", "Cooldowns", "EnhancementConfig", "MonitorSettings", "PerformanceSettings",
           "PreflightItem", "PreflightSettings", "QualitySettings", "StabilitySettings", "TelemetrySettings",
           "enhancement_config_from", "load_enhancement_config", "parse_duration"]

_check = Checks(ConfigError)
_DURATION = TypeAdapter(timedelta)


def parse_duration(key: str, value: object) -> float:
    """Seconds in an ISO 8601 duration (`PnDTnHnMnS`, or `PnW`); years and months are
    refused (their length varies), as are zero and negative durations.

    >>> parse_duration("k", "PT1H30M"), parse_duration("k", "P1DT2H"), parse_duration("k", "PT0.5S")
    (5400.0, 93600.0, 0.5)
    """
    problem = f"must be an ISO 8601 duration such as PT1H30M, got {value!r}"
    if not isinstance(value, str) or not value.startswith("P"):
        raise ConfigError(key, problem)
    if any(unit in value.partition("T")[0] for unit in "YM"):
        raise ConfigError(key, f"must not count years or months (their length varies), got {value!r}")
    try:
        seconds = _DURATION.validate_strings(value).total_seconds()
    except ValidationError:
        raise ConfigError(key, problem) from None
    if seconds <= 0:
        raise ConfigError(key, f"must be longer than zero, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class PreflightItem:
    """A threshold item: its weight in the score and the least value that passes."""

    weight: float
    minimum: float


SEED_ITEMS: Mapping[str, PreflightItem] = {
    "mandatory": PreflightItem(0.30, 1.00),
    "proxy": PreflightItem(0.25, 0.70),
    "alpha": PreflightItem(0.20, 0.95),
    "sigma": PreflightItem(0.15, 0.05),
    "governance": PreflightItem(0.10, 0.85),
}


@dataclass(frozen=True, slots=True)
class PreflightSettings:
    """Seed 004's weighted threshold satisfaction: pass iff no item of weight ≥
    `critical_weight` fails and the weights of the passing items sum to ≥ `pass_score`."""

    items: Mapping[str, PreflightItem] = field(default_factory=lambda: dict(SEED_ITEMS))
    pass_score: float = 0.70
    critical_weight: float = 0.20


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """Tumbling windows of `window_s`, kept `keep_s`; `sample_size` values sampled per
    window for rank tests; a window is closed `grace_s` after its end."""

    window_s: float = 60.0
    keep_s: float = 86_400.0
    sample_size: int = 64
    grace_s: float = 5.0

    def __post_init__(self) -> None:
        if self.keep_s < self.window_s:
            raise ConfigError("telemetry.keep", f"must be at least one window ({self.window_s:g} s)")


@dataclass(frozen=True, slots=True)
class StabilitySettings:
    metric: str = "quality_score"
    window: int = 10
    min_samples: int = 3
    max_sd: float = 0.15
    min_coefficient: float = 0.80
    trend: int = 3

    def __post_init__(self) -> None:
        if not self.min_samples <= self.window:
            raise ConfigError("monitor.stability.min_samples", f"must be at most window ({self.window})")


@dataclass(frozen=True, slots=True)
class QualitySettings:
    metric: str = "quality_score"
    critical_below: float = 0.75
    window: int = 5
    min_samples: int = 3
    max_relative_drop: float = 0.10

    def __post_init__(self) -> None:
        if not self.min_samples <= self.window:
            raise ConfigError("monitor.quality.min_samples", f"must be at most window ({self.window})")


@dataclass(frozen=True, slots=True)
class PerformanceSettings:
    """Regressions against the submitted baseline; `critical_regressions` of them at once
    are critical."""

    response_time_factor: float = 1.5
    accuracy_drop: float = 0.05
    throughput_drop: float = 0.20
    error_rate_rise: float = 0.02
    critical_regressions: int = 2
    response_time_metric: str = "response_time_ms"
    accuracy_metric: str = "accuracy"
    throughput_metric: str = "throughput"
    error_rate_metric: str = "error_rate"


@dataclass(frozen=True, slots=True)
class Cooldowns:
    critical_s: float = 86_400.0
    consecutive_s: float = 3_600.0
    canary_failed_s: float = 3_600.0


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """`tolerance`: a figure must pass its threshold by more than this to count (float
    error must not decide: 0.85 − 0.80 is 0.04999… in binary)."""

    interval_s: float = 30.0
    stability: StabilitySettings = StabilitySettings()
    quality: QualitySettings = QualitySettings()
    performance: PerformanceSettings = PerformanceSettings()
    consecutive: int = 3
    cooldown: Cooldowns = Cooldowns()
    tolerance: float = 1e-9


DEFAULT_JUDGE: tuple[MetricJudge, ...] = (
    MetricJudge("quality_score", "decrease", 0.05, "quality", critical=True),
    MetricJudge("error_rate", "increase", 0.10, "errors"),
    MetricJudge("response_time_ms", "increase", 0.10, "latency"),
)


DEFAULT_JUDGE_SETTINGS = CanarySettings(alpha=0.01, group_weights={"quality": 50.0, "errors": 30.0, "latency": 20.0})
"""alpha .01: at .05, about 1 healthy canary in 50 failed on one metric by chance (bench/telemetry.py)."""


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    """The canary judge, every `interval_s` while an enhancement is a canary; a pass with
    at least `min_samples` per arm promotes it to full. `sample_size`: values pooled per
    arm and metric since activation. `metrics`: the judge of a submission that names none.
    `judges_per_tick`: the most judges one tick of the monitor runs (about 1 ms each);
    the others due wait for the next tick, so a tick's work is bounded however many
    canaries fall due together."""

    interval_s: float = 60.0
    min_samples: int = 50
    sample_size: int = 200
    judges_per_tick: int = 200
    judge: CanarySettings = DEFAULT_JUDGE_SETTINGS
    metrics: tuple[MetricJudge, ...] = DEFAULT_JUDGE

    def __post_init__(self) -> None:
        if self.sample_size < self.min_samples:
            raise ConfigError("canary.sample_size", f"must be at least min_samples ({self.min_samples})")
        if self.judge.group_weights and (missing := {m.group for m in self.metrics} - set(self.judge.group_weights)):
            raise ConfigError("canary.judge.group_weights", f"no weight for group(s) {', '.join(sorted(missing))}")


@dataclass(frozen=True, slots=True)
class EnhancementConfig:
    max_concurrent: int = 5
    max_deactivations: int = 3
    preflight: PreflightSettings = PreflightSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    monitor: MonitorSettings = MonitorSettings()
    canary: CanaryConfig = CanaryConfig()
    policy: RampSettings = RampSettings()


def _UNIT(key: str, value: object) -> float:
    return _check.real(key, value, 0.0, 1.0)


def _POSITIVE(key: str, value: object) -> float:
    return _check.real(key, value, 0.0, lo_open=True)


def _at_least(n: int) -> Any:
    return lambda k, v: _check.integer(k, v, n)


def _items(key: str, value: object) -> dict[str, PreflightItem]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, f"must map item names to {{weight, minimum}}, got {value!r}")
    items = {}
    for name, item in value.items():
        at = f"{key}.{name}"
        if not isinstance(item, Mapping) or set(item) != {"weight", "minimum"}:
            raise ConfigError(at, f"must be {{weight, minimum}}, got {item!r}")
        items[_check.name(at, name)] = PreflightItem(_check.real(f"{at}.weight", item["weight"], 0.0, 1.0),
                                                     _check.real(f"{at}.minimum", item["minimum"]))
    if not math.isclose(sum(i.weight for i in items.values()), 1.0, abs_tol=1e-9):
        raise ConfigError(key, f"weights must sum to 1, got {sum(i.weight for i in items.values()):g}")
    return items


def _metrics(key: str, value: object) -> tuple[MetricJudge, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(key, f"must be a non-empty list of {{name, direction, tolerance, group, critical}}, got {value!r}")
    judges = []
    for i, item in enumerate(value):
        at = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(at, f"must be {{name, direction[, tolerance, group, critical]}}, got {item!r}")
        judge: MetricJudge = _check.section(item, at, lambda: MetricJudge("?", "either"), {
            "name": _check.name, "direction": _check.choice(("increase", "decrease", "either")),
            "tolerance": lambda k, v: _check.real(k, v, 0.0), "group": _check.name, "critical": _check.boolean})
        if "name" not in item or "direction" not in item:
            raise ConfigError(at, "needs name and direction")
        judges.append(judge)
    if len({j.name for j in judges}) != len(judges):
        raise ConfigError(key, "metric names must be distinct")
    return tuple(judges)


def _steps(key: str, value: object) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(key, f"must be a list of shares rising to 1.0, got {value!r}")
    return tuple(_UNIT(f"{key}[{i}]", v) for i, v in enumerate(value))


def _weights(key: str, value: object) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must map group names to weights, got {value!r}")
    return {_check.name(f"{key}.{g}", g): _POSITIVE(f"{key}.{g}", w) for g, w in value.items()}


def _section(cls: Any, convert: Mapping[str, Any]) -> Callable[[str, object], Any]:
    """A nested section; a duration key (`window`) sets its field in seconds (`window_s`)."""
    seconds = {k: f"{k}_s" for k, c in convert.items() if c is parse_duration}
    return lambda key, value: _check.section(value, key, cls, convert, seconds)


def _judge(key: str, value: object) -> CanarySettings:
    settings: CanarySettings = _check.section(value, key, lambda: DEFAULT_JUDGE_SETTINGS, {
        "alpha": _POSITIVE, "pass_score": _POSITIVE, "marginal_score": _POSITIVE, "min_samples": _at_least(3),
        "group_weights": _weights})
    return settings


_CONVERT: Mapping[str, Any] = {
    "max_concurrent": _at_least(1),
    "max_deactivations": _at_least(1),
    "preflight": _section(PreflightSettings, {"items": _items, "pass_score": _UNIT, "critical_weight": _UNIT}),
    "telemetry": _section(TelemetrySettings, {"window": parse_duration, "keep": parse_duration,
                                              "sample_size": _at_least(2), "grace": parse_duration}),
    "monitor": _section(MonitorSettings, {
        "interval": parse_duration,
        "stability": _section(StabilitySettings, {"metric": _check.name, "window": _at_least(2),
                                                  "min_samples": _at_least(2), "max_sd": _POSITIVE,
                                                  "min_coefficient": _UNIT, "trend": _at_least(2)}),
        "quality": _section(QualitySettings, {"metric": _check.name, "critical_below": _check.real,
                                              "window": _at_least(2), "min_samples": _at_least(2),
                                              "max_relative_drop": _POSITIVE}),
        "performance": _section(PerformanceSettings, {
            "response_time_factor": _POSITIVE, "accuracy_drop": _POSITIVE, "throughput_drop": _UNIT,
            "error_rate_rise": _POSITIVE, "critical_regressions": _at_least(1),
            "response_time_metric": _check.name, "accuracy_metric": _check.name,
            "throughput_metric": _check.name, "error_rate_metric": _check.name}),
        "consecutive": _at_least(1),
        "cooldown": _section(Cooldowns, {"critical": parse_duration, "consecutive": parse_duration,
                                         "canary_failed": parse_duration}),
        "tolerance": _UNIT,
    }),
    "canary": _section(CanaryConfig, {"interval": parse_duration, "min_samples": _at_least(3),
                                      "sample_size": _at_least(3), "judges_per_tick": _at_least(1),
                                      "judge": _judge, "metrics": _metrics}),
    "policy": _section(RampSettings, {"steps": _steps, "min_outcomes": _at_least(1), "max_drop": _UNIT,
                                      "alpha": _UNIT}),
}


def enhancement_config_from(mapping: object) -> EnhancementConfig:
    """Validate a parsed mapping; an unknown key or a bad value raises `ConfigError` naming it."""
    cfg: EnhancementConfig = _section(EnhancementConfig, _CONVERT)(ROOT, mapping)
    return cfg


def load_enhancement_config(path: str | os.PathLike[str]) -> EnhancementConfig:
    """Read and validate the file; a missing file gives the defaults, a bad one is refused whole."""
    return enhancement_config_from(_check.read_yaml(path, missing_ok=True))
