"""A `trust_policy` enhancement's candidate: the trust-gate configuration with its payload
applied (nested sections merged key by key, the rest replaced), validated as any
configuration is.

>>> from resontinex.agents.trust import default_config
>>> candidate_trust(default_config(), {"trust_floor": 0.65, "weights": {"alignment_score": 0.5}}).trust_floor
0.65
>>> candidate_trust(default_config(), {"weights": {"alignment_score": 0, "epistemic_risk": 0, "confidence_band": 0}})
Traceback (most recent call last):
...
resontinex.agents.trust.exceptions.ConfigError: weights: must have a positive sum
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resontinex.agents.trust import TrustConfig, config_from_mapping

__all__ = ["candidate_trust"]


def candidate_trust(current: TrustConfig, payload: Mapping[str, Any]) -> TrustConfig:
    """`current` with `payload` applied; `agents.trust.ConfigError` when the result is not a valid configuration."""
    merged: dict[str, Any] = current.as_dict()
    for key, value in payload.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **{k: v for k, v in value.items() if v is not None}}
        else:
            merged[key] = value
    return config_from_mapping(merged)
