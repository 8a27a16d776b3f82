"""A tenant's policy under canary (seed 001's shadow mode and ramp, on the stream).

While a `trust_policy` or `routing_policy` enhancement is active, its candidate
configuration decides the tenant's requests whose bucket — a hash of the enhancement id
and the request id, so the same request always lands in the same arm and `audit
reproduce` can follow — is below the ramp's `share`; the others stay with the current
policy. A routing candidate takes part only in requests that ask for a route. With
`share` 0 (shadow) the current policy decides every request and the candidate's verdict
(a trust verdict, or the route it would have chosen) is recorded beside it. A decision
says which arm it was in (`canary`), and one the candidate made carries the candidate's
`policy_version`. A tenant has one policy under canary at a time (the enhancement
agent's rule), so what an outcome says is the one change's doing.

>>> from resontinex.agents.trust import default_config
>>> c = PolicyCanary("floor-65", 0.5, 2, "cand", trust=default_config())
>>> arm_of(c, "r-1") == arm_of(c, "r-1"), {arm_of(c, f"r-{i}") for i in range(50)} == {"candidate", "current"}
(True, True)
>>> c.kind, PolicyCanary("eps-2", 0.5, 2, "cand", routing=RoutingConfig(epsilon=0.2)).kind
('trust_policy', 'routing_policy')
>>> round(sum(bucket("floor-65", f"r-{i}") < 0.1 for i in range(10_000)) / 10_000, 2)
0.1
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from resontinex.agents.router import RoutingConfig
from resontinex.agents.trust import TrustConfig

__all__ = ["PolicyCanary", "arm_of", "bucket", "canary_of", "canary_summary"]

Arm = Literal["candidate", "current"]


@dataclass(frozen=True, slots=True)
class PolicyCanary:
    enhancement_id: str
    share: float
    """The part of the tenant's requests the candidate decides; 0: shadow."""
    step: int
    """The ramp step (0: shadow, if the ramp has one), recorded with each decision."""
    policy_version: str
    """The candidate's: the version of the whole configuration with its settings."""
    activation: int = 0
    """Which activation of the enhancement this ramp belongs to (its deactivations before it)."""
    trust: TrustConfig | None = None
    """A `trust_policy` candidate's trust gate configuration."""
    routing: RoutingConfig | None = None
    """A `routing_policy` candidate's router configuration."""

    def __post_init__(self) -> None:
        if (self.trust is None) == (self.routing is None):
            raise ValueError("a policy canary has a candidate trust or routing configuration (one of them)")

    @property
    def shadow(self) -> bool:
        return self.share <= 0.0

    @property
    def kind(self) -> Literal["trust_policy", "routing_policy"]:
        return "trust_policy" if self.routing is None else "routing_policy"


def bucket(enhancement_id: str, request_id: str) -> float:
    """A request's place in [0, 1) for an enhancement, uniform and fixed."""
    digest = hashlib.blake2b(f"{enhancement_id}\x1f{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def arm_of(canary: PolicyCanary, request_id: str) -> Arm:
    return "candidate" if not canary.shadow and bucket(canary.enhancement_id, request_id) < canary.share else "current"


def canary_summary(canary: PolicyCanary, arm: Arm, shadow: dict[str, Any] | None = None) -> dict[str, Any]:
    """The decision's `canary` part: which enhancement (and kind), which arm, the ramp's step
    and share (and which of its activations); in shadow, the candidate's verdict it would
    have given (`verb`, `tier`, `score`; a route's `verb`, `provider_id`, `policy`)."""
    return {"enhancement_id": canary.enhancement_id, "kind": canary.kind, "arm": arm, "share": canary.share,
            "step": canary.step, "activation": canary.activation, "candidate_policy_version": canary.policy_version,
            "shadow": shadow}


def canary_of(decision: dict[str, Any]) -> dict[str, Any] | None:
    """What a decision's outcome is judged against by its ramp: the `canary` part with the
    decision's verb and `part_verb`, the verb of the part under canary alone (the trust
    gate's, or the router's: `execute` when it found a provider, else `defer`), which a
    shadow step compares with the candidate's."""
    canary = decision.get("canary")
    if not canary:
        return None
    part_verb: str | None
    if canary.get("kind") == "routing_policy":
        route = decision.get("route") or {}
        part_verb = "execute" if route.get("provider_id") is not None else "defer"
    else:
        part_verb = (decision.get("trust") or {}).get("decision")
    return {**canary, "verb": decision.get("verb"), "part_verb": part_verb}
