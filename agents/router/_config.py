"""`routing.yaml`: which policy routes, its learning rates, constraint mode, anomaly limits.

Every key is optional (an empty file is the defaults below, seed 002's numbers where it
has them). A bad file is refused whole; the error names the dotted key.

>>> cfg = routing_config_from({"policy": "ucb1", "anomaly": {"q_jump_k": 4}})
>>> cfg.policy, cfg.epsilon, cfg.epsilon_decay, cfg.epsilon_min, cfg.alpha, cfg.gamma
('ucb1', 0.1, 0.995, 0.01, 0.1, 0.95)
>>> cfg.anomaly.q_jump_k, cfg.as_dict()["anomaly"]["q_jump_k"]
(4.0, 4.0)
>>> routing_config_from({"anomaly": {"q_jump_window": 0}})
Traceback (most recent call last):
...
resontinex.agents.router.exceptions.ConfigError: anomaly.q_jump_window: must be an integer >= 2, got 0
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final, Literal, get_args

from resontinex.agents._checks import ROOT, Checks, Converter

from .exceptions import ConfigError

PolicyName = Literal["epsilon_greedy", "ucb1", "thompson", "linucb"]
POLICIES: Final[tuple[PolicyName, ...]] = get_args(PolicyName)
Mode = Literal["strict", "lenient"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)
AlphaSchedule = Literal["constant", "sample_average"]
ALPHA_SCHEDULES: Final[tuple[AlphaSchedule, ...]] = get_args(AlphaSchedule)


@dataclass(frozen=True, slots=True)
class ThompsonConfig:
    """Beta prior of every arm, and how many posterior draws estimate a propensity."""

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    draws: int = 1000


@dataclass(frozen=True, slots=True)
class FeatureScales:
    """LinUCB's feature normalisation: a quantity `v` becomes `v / (v + scale)` in [0, 1),
    so `scale` is the value that maps to 0.5 (reputation is divided by 100)."""

    price_usd_per_hour: float = 5.0
    latency_ms: float = 500.0
    capacity: float = 100.0


@dataclass(frozen=True, slots=True)
class RewardScale:
    """The reward range mapped onto [0, 1] for UCB1, Thompson and LinUCB (clipped outside).

    Seed 002's reward is −20 on failure and at most 11 on success (no cost, no latency,
    reputation 100), so the default range is exactly the reachable one when cost ≥ 0.
    """

    min: float = -20.0
    max: float = 11.0


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    """`routing_anomaly` triggers.

    A Q-value update is a jump when its change deviates from the mean of that
    (state, provider)'s last `q_jump_window` changes by more than `q_jump_k` standard
    deviations, once at least `q_jump_min_samples` changes are known. A provider is
    underperforming when its success rate over its last `success_rate_window` outcomes
    is below `success_rate_min` (judged once the window is full).
    """

    q_jump_k: float = 3.0
    q_jump_window: int = 20
    q_jump_min_samples: int = 5
    success_rate_window: int = 20
    success_rate_min: float = 0.5


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """The router's configuration (`config/routing.yaml`).

    `epsilon_decay` applies once per feedback (an outcome applied to the policy), with
    `epsilon_min` as the floor. `psi_damping` is the 0.5 of ε_eff = ε·(1 − 0.5·density);
    UCB1's `ucb_c` and LinUCB's `linucb_alpha` are damped the same way. `mode`: `strict`
    routes only to providers that meet every constraint; `lenient` falls back to
    providers that break only price, latency or reputation limits, and flags them.
    `alpha_schedule`: ε-greedy's step size, `constant` (`alpha`, seed 002) or
    `sample_average` (1/n for the n-th outcome of a state and provider: each Q-value is
    the mean of its rewards, so it converges on a stationary provider where a constant
    step keeps chasing the latest outcomes; see bench/router_sim).
    `pending_ttl_s`: how long a routed decision waits for its outcome. `seed` seeds the
    per-decision random generators (`decision_rng`).
    """

    policy: PolicyName = "epsilon_greedy"
    mode: Mode = "strict"
    seed: int = 0
    epsilon: float = 0.1
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.01
    alpha: float = 0.1
    alpha_schedule: AlphaSchedule = "constant"
    gamma: float = 0.95
    psi_damping: float = 0.5
    ucb_c: float = 1.414
    linucb_alpha: float = 1.0
    linucb_ridge: float = 1.0
    pending_ttl_s: float = 3600.0
    thompson: ThompsonConfig = field(default_factory=ThompsonConfig)
    features: FeatureScales = field(default_factory=FeatureScales)
    reward_scale: RewardScale = field(default_factory=RewardScale)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)

    def as_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON types (what a policy version hashes).

        >>> sorted(RoutingConfig().as_dict())[:4]
        ['alpha', 'alpha_schedule', 'anomaly', 'epsilon']
        """
        return asdict(self)


_check = Checks(ConfigError)
_int, _choice = _check.integer, _check.choice


def _unit(key: str, value: object) -> float:
    return _check.real(key, value, 0.0, 1.0)


def _positive(key: str, value: object) -> float:
    return _check.real(key, value, 0.0, lo_open=True)


def _non_negative(key: str, value: object) -> float:
    return _check.real(key, value, 0.0)


def _any_real(key: str, value: object) -> float:
    return _check.real(key, value)


_THOMPSON: Final[Mapping[str, Converter]] = {
    "prior_alpha": _positive, "prior_beta": _positive, "draws": lambda k, v: _int(k, v, 1)}
_FEATURES: Final[Mapping[str, Converter]] = {
    "price_usd_per_hour": _positive, "latency_ms": _positive, "capacity": _positive}
_REWARD: Final[Mapping[str, Converter]] = {"min": _any_real, "max": _any_real}
_ANOMALY: Final[Mapping[str, Converter]] = {
    "q_jump_k": _positive, "q_jump_window": lambda k, v: _int(k, v, 2),
    "q_jump_min_samples": lambda k, v: _int(k, v, 2),
    "success_rate_window": lambda k, v: _int(k, v, 1), "success_rate_min": _unit}
_TOP: Final[Mapping[str, Converter]] = {
    "policy": _choice(POLICIES), "mode": _choice(MODES), "seed": lambda k, v: _int(k, v, 0),
    "epsilon": _unit, "epsilon_decay": lambda k, v: _check.real(k, v, 0.0, 1.0, lo_open=True),
    "epsilon_min": _unit, "alpha": lambda k, v: _check.real(k, v, 0.0, 1.0, lo_open=True), "gamma": _unit,
    "alpha_schedule": _choice(ALPHA_SCHEDULES),
    "psi_damping": _unit, "ucb_c": _non_negative, "linucb_alpha": _non_negative, "linucb_ridge": _positive,
    "pending_ttl_s": _positive,
    "thompson": lambda k, v: _check.section(v, k, ThompsonConfig, _THOMPSON),
    "features": lambda k, v: _check.section(v, k, FeatureScales, _FEATURES),
    "reward_scale": lambda k, v: _check.section(v, k, RewardScale, _REWARD),
    "anomaly": lambda k, v: _check.section(v, k, AnomalyConfig, _ANOMALY),
}
assert set(_TOP) == {f.name for f in fields(RoutingConfig)}


def routing_config_from(mapping: object) -> RoutingConfig:
    """Validate a parsed `routing.yaml`; the first problem is raised, naming its key.

    >>> routing_config_from({"epsilon": 0.05, "epsilon_min": 0.2})
    Traceback (most recent call last):
    ...
    resontinex.agents.router.exceptions.ConfigError: epsilon_min: must not exceed epsilon (0.05)
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(ROOT, f"must be a mapping, got {type(mapping).__name__}")
    cfg: RoutingConfig = _check.section(mapping, ROOT, RoutingConfig, _TOP)
    if cfg.epsilon_min > cfg.epsilon:
        raise ConfigError("epsilon_min", f"must not exceed epsilon ({cfg.epsilon:g})")
    if cfg.reward_scale.min >= cfg.reward_scale.max:
        raise ConfigError("reward_scale.max", f"must be above reward_scale.min ({cfg.reward_scale.min:g})")
    if cfg.anomaly.q_jump_min_samples > cfg.anomaly.q_jump_window:
        raise ConfigError("anomaly.q_jump_min_samples",
                          f"must not exceed anomaly.q_jump_window ({cfg.anomaly.q_jump_window})")
    return cfg


def load_routing_config(path: str | os.PathLike[str]) -> RoutingConfig:
    """Read and validate the file; a bad file is refused whole, naming the key."""
    return routing_config_from(_check.read_yaml(path))
