"""LinUCB's context: a provider offer as a normalised feature vector.

`(1, price, latency, reputation, capacity)`: a bias term, then each quantity squashed
into [0, 1): `v / (v + scale)` for price, latency and capacity (scales in
`routing.yaml` `features`), `reputation / 100`. An unreported capacity is 0.

>>> from resontinex.agents.router import FeatureScales, ProviderState
>>> provider_features(ProviderState("akash", 5.0, 500, 95, 100), FeatureScales())
(1.0, 0.5, 0.5, 0.95, 0.5)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ._config import FeatureScales
from ._inputs import ProviderLike

FEATURE_NAMES: Final = ("bias", "price", "latency", "reputation", "capacity")
DIMENSION: Final = len(FEATURE_NAMES)

Features = tuple[float, ...]


def _squash(value: float, scale: float) -> float:
    value = max(0.0, float(value))
    return value / (value + scale)


def provider_features(provider: ProviderLike, scales: FeatureScales) -> Features:
    """The feature vector of one offer (length `DIMENSION`)."""
    capacity = provider.capacity_available
    return (
        1.0,
        _squash(provider.price_usd_per_hour, scales.price_usd_per_hour),
        _squash(provider.latency_ms, scales.latency_ms),
        min(1.0, max(0.0, float(provider.reputation) / 100.0)),
        0.0 if capacity is None else _squash(capacity, scales.capacity),
    )


def features_by_provider(providers: Iterable[ProviderLike], scales: FeatureScales) -> dict[str, Features]:
    """provider_id → feature vector (the first offer of an id wins, as in `screen`)."""
    out: dict[str, Features] = {}
    for p in providers:
        out.setdefault(p.provider_id, provider_features(p, scales))
    return out
