"""`coordination.yaml`: the default model, the judge, the price table, the client's limits.

>>> cfg = coordination_config_from({"model": "claude-haiku-4-5", "rate_limit": {"requests_per_minute": 100}})
>>> cfg.rate_limit.requests_per_minute, cfg.cost_usd("claude-haiku-4-5", 1_000_000, 200_000)
(100.0, 2.0)
>>> coordination_config_from({"judge": {"criteria": []}})
Traceback (most recent call last):
...
resontinex.agents.coordination.exceptions.ConfigError: judge.criteria: must be a non-empty list of distinct names, got []
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from resontinex.agents._checks import ROOT, Checks

from ._breaker import BreakerSettings
from ._drift import DriftSettings
from .exceptions import ConfigError

__all__ = ["CoordinationConfig", "JudgeSettings", "Price", "RateLimit", "Retries", "coordination_config_from",
           "load_coordination_config"]

_check = Checks(ConfigError)


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    criteria: tuple[str, ...] = ("correctness", "completeness", "clarity")
    max_tokens: int = 512


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket per API key: `requests_per_minute`, bursts up to `burst` requests."""

    requests_per_minute: float = 50.0
    burst: int = 10


@dataclass(frozen=True, slots=True)
class Retries:
    """Exponential backoff with full jitter, on 429, 5xx, timeouts and connection errors only."""

    max_attempts: int = 4
    base_s: float = 0.5
    max_s: float = 20.0


DEFAULT_PRICES = {  # published list prices, US dollars per million tokens
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-opus-4-1": Price(15.0, 75.0),
}


@dataclass(frozen=True, slots=True)
class CoordinationConfig:
    model: str = "claude-haiku-4-5"
    max_tokens: int = 1024
    timeout_s: float = 60.0
    judge: JudgeSettings = JudgeSettings()
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    rate_limit: RateLimit = RateLimit()
    retries: Retries = Retries()
    breaker: BreakerSettings = BreakerSettings()
    drift: DriftSettings = DriftSettings()
    tenant_hourly_cap_usd: float = 10.0
    concurrent_runs: int = 8

    def cost_usd(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """What a call's usage costs; `ConfigError` for a model the price table does not know."""
        price = self.prices.get(model)
        if price is None:
            raise ConfigError("prices", f"no price for model {model!r} (known: {', '.join(sorted(self.prices))})")
        return (input_tokens * price.input + output_tokens * price.output) / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prices"] = {m: asdict(p) for m, p in self.prices.items()}
        return d


_POSITIVE = lambda k, v: _check.real(k, v, 0.0, lo_open=True)  # noqa: E731


def _criteria(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(set(map(str, value))) != len(value):
        raise ConfigError(key, f"must be a non-empty list of distinct names, got {value!r}")
    return tuple(_check.name(f"{key}[{i}]", v) for i, v in enumerate(value))


def _prices(key: str, value: object) -> dict[str, Price]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, f"must map model names to {{input, output}} prices, got {value!r}")
    prices = {}
    for model, price in value.items():
        at = f"{key}.{model}"
        if not isinstance(price, Mapping) or set(price) != {"input", "output"}:
            raise ConfigError(at, f"must be {{input: USD per Mtok, output: USD per Mtok}}, got {price!r}")
        prices[_check.name(at, model)] = Price(_check.real(f"{at}.input", price["input"], 0.0),
                                               _check.real(f"{at}.output", price["output"], 0.0))
    return prices


def _section(cls: Any, convert: Mapping[str, Any]) -> Any:
    """A nested section; the settings class checks its values together (`ConfigError`)."""
    return lambda key, value: _check.section(value, key, cls, convert)


_CONVERT = {
    "model": _check.name,
    "max_tokens": lambda k, v: _check.integer(k, v, 1),
    "timeout_s": _POSITIVE,
    "judge": _section(JudgeSettings, {"criteria": _criteria, "max_tokens": lambda k, v: _check.integer(k, v, 1)}),
    "prices": _prices,
    "rate_limit": _section(RateLimit, {"requests_per_minute": _POSITIVE,
                                       "burst": lambda k, v: _check.integer(k, v, 1)}),
    "retries": _section(Retries, {"max_attempts": lambda k, v: _check.integer(k, v, 1), "base_s": _POSITIVE,
                                  "max_s": _POSITIVE}),
    "breaker": _section(BreakerSettings, {"failures": lambda k, v: _check.integer(k, v, 1), "open_s": _POSITIVE,
                                          "successes": lambda k, v: _check.integer(k, v, 1)}),
    "drift": _section(DriftSettings, {"min_samples": lambda k, v: _check.integer(k, v, 2),
                                      "recent": lambda k, v: _check.integer(k, v, 1), "threshold": _POSITIVE,
                                      "kept": lambda k, v: _check.integer(k, v, 2),
                                      "gamma_window": lambda k, v: _check.integer(k, v, 1)}),
    "tenant_hourly_cap_usd": _POSITIVE,
    "concurrent_runs": lambda k, v: _check.integer(k, v, 1),
}


def coordination_config_from(mapping: object) -> CoordinationConfig:
    """Validate a parsed mapping; an unknown key or a bad value raises `ConfigError` naming it."""
    cfg: CoordinationConfig = _check.section(mapping, ROOT, CoordinationConfig, _CONVERT)
    if cfg.model not in cfg.prices:
        raise ConfigError("model", f"{cfg.model!r} has no price in `prices` (spend must be counted)")
    return cfg


def load_coordination_config(path: str | os.PathLike[str]) -> CoordinationConfig:
    """Read and validate the file; a missing file gives the defaults, a bad one is refused whole."""
    return coordination_config_from(_check.read_yaml(path, missing_ok=True))
