"""A policy enhancement's candidate: the current configuration with its payload applied
(nested sections merged key by key, the rest replaced), validated as any configuration is:
the trust gate's for a `trust_policy`, the router's for a `routing_policy`.

>>> from resontinex.agents.trust import default_config
>>> candidate_trust(default_config(), {"trust_floor": 0.65, "weights": {"alignment_score": 0.5}}).trust_floor
0.65
>>> candidate_trust(default_config(), {"weights": {"alignment_score": 0, "epistemic_risk": 0, "confidence_band": 0}})
Traceback (most recent call last):
...
resontinex.agents.trust.exceptions.ConfigError: weights: must have a positive sum
>>> from resontinex.agents.router import RoutingConfig
>>> cand = candidate_routing(RoutingConfig(), {"policy": "ucb1", "ucb_c": 2.0, "epsilon": None})
>>> cand.policy, cand.ucb_c, cand.epsilon
('ucb1', 2.0, 0.1)
>>> candidate_routing(RoutingConfig(), {"epsilon": 0.005})
Traceback (most recent call last):
...
resontinex.agents.router.exceptions.ConfigError: epsilon_min: must not exceed epsilon (0.005)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resontinex.agents.router import ConfigError as RouterConfigError
from resontinex.agents.router import RoutingConfig, routing_config_from
from resontinex.agents.trust import ConfigError as TrustConfigError
from resontinex.agents.trust import TrustConfig, config_from_mapping

__all__ = ["CandidateError", "candidate_config", "candidate_problem", "candidate_routing", "candidate_trust"]

CandidateError = (TrustConfigError, RouterConfigError)
"""What `candidate_config` raises when the candidate is not a valid configuration."""
_FILES = {"trust_policy": "trust_gate.yaml", "routing_policy": "routing.yaml"}


def candidate_trust(current: TrustConfig, payload: Mapping[str, Any]) -> TrustConfig:
    """`current` with `payload` applied; `agents.trust.ConfigError` when the result is not a valid configuration."""
    return config_from_mapping(_merged(current.as_dict(), payload))


def candidate_routing(current: RoutingConfig, payload: Mapping[str, Any]) -> RoutingConfig:
    """`current` with `payload` applied; `agents.router.ConfigError` when the result is not a valid configuration."""
    return routing_config_from(_merged(current.as_dict(), payload))


def _merged(merged: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in payload.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **{k: v for k, v in value.items() if v is not None}}
        else:
            merged[key] = value
    return merged


def candidate_config(kind: str, payload: Mapping[str, Any], trust: TrustConfig,
                     routing: RoutingConfig) -> TrustConfig | RoutingConfig:
    """A `trust_policy`'s candidate trust configuration, or a `routing_policy`'s router configuration."""
    if kind == "trust_policy":
        return candidate_trust(trust, payload)
    if kind == "routing_policy":
        return candidate_routing(routing, payload)
    raise ValueError(f"{kind!r} is not a policy kind")


def candidate_problem(kind: str, payload: Mapping[str, Any], trust: TrustConfig, routing: RoutingConfig) -> str | None:
    """Preflight's payload check: why a policy's payload does not make a valid configuration
    (None: it does, or `kind` is no policy).

    >>> from resontinex.agents.trust import default_config
    >>> candidate_problem("routing_policy", {"epsilon": 0.001}, default_config(), RoutingConfig())
    'the routing.yaml configuration it makes is invalid: epsilon_min: must not exceed epsilon (0.001)'
    >>> candidate_problem("model", {"epsilon": 0.001}, default_config(), RoutingConfig()) is None
    True
    """
    if kind not in _FILES:
        return None
    try:
        candidate_config(kind, payload, trust, routing)
    except CandidateError as exc:
        return f"the {_FILES[kind]} configuration it makes is invalid: {exc}"
    return None
