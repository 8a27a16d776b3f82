"""The policies by name, and a fresh one for a configuration.

>>> from resontinex.agents.router import RoutingConfig
>>> make_policy(RoutingConfig(policy="thompson")).name, make_policy(RoutingConfig(), "linucb").name
('thompson', 'linucb')
"""

from __future__ import annotations

from typing import Final

from ._base import TabularPolicy
from ._config import PolicyName, RoutingConfig
from ._epsilon_greedy import EpsilonGreedy
from ._linucb import LinUCB
from ._thompson import Thompson
from ._ucb1 import UCB1
from .exceptions import RouterError

AnyPolicy = EpsilonGreedy | UCB1 | Thompson | LinUCB
POLICY_CLASSES: Final[dict[str, type[TabularPolicy]]] = {  # type: ignore[type-arg]
    cls.name: cls for cls in (EpsilonGreedy, UCB1, Thompson, LinUCB)}


def make_policy(cfg: RoutingConfig, name: PolicyName | None = None) -> AnyPolicy:
    """A policy that has learned nothing: `name`, or the configured `cfg.policy`."""
    wanted = cfg.policy if name is None else name
    cls = POLICY_CLASSES.get(wanted)
    if cls is None:
        raise RouterError(f"unknown policy {wanted!r}; known: {', '.join(POLICY_CLASSES)}")
    return cls.fresh(cfg)  # type: ignore[return-value]
