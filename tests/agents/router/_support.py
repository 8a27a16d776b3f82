"""Shared helpers for the router tests: offers, contexts, configs, a seeded generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from resontinex.agents.router import (
    POLICIES,
    PendingDecision,
    ProviderState,
    RouteDecision,
    RoutingConfig,
    WorkloadContext,
    features_by_provider,
    make_policy,
    routing_config_from,
)

KEY = "llm_inference:a100:us-west"
CONTEXT = WorkloadContext("llm_inference", "a100", "us-west", 2.0)


def offer(pid: str, price: float = 2.0, latency: float = 100.0, reputation: float = 90.0,
          capacity: float | None = 100.0, gpus: tuple[str, ...] = ("a100",),
          regions: tuple[str, ...] = ("us-west",)) -> ProviderState:
    """A provider that meets `CONTEXT` unless told otherwise."""
    return ProviderState(pid, price, latency, reputation, capacity, gpus, regions)


def config(**overrides: Any) -> RoutingConfig:
    return routing_config_from(overrides)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def policy(name: str, **overrides: Any) -> Any:
    return make_policy(config(policy=name, **overrides))


def features(*offers: ProviderState, cfg: RoutingConfig | None = None) -> dict[str, tuple[float, ...]]:
    return features_by_provider(offers, (cfg or RoutingConfig()).features)


ALL_POLICIES = POLICIES


def pending_of(route: RouteDecision, decision_id: str, at: float = 0.0) -> PendingDecision:
    """The pending record of a route that chose a provider."""
    pending = route.pending(decision_id, at)
    assert pending is not None, "the route chose no provider"
    return pending
