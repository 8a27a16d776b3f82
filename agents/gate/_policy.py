"""A tenant's trust policy under canary (seed 001's shadow mode and ramp, on the stream).

While a `trust_policy` enhancement is active, its candidate configuration decides the
tenant's requests whose bucket — a hash of the enhancement id and the request id, so the
same request always lands in the same arm and `audit reproduce` can follow — is below the
ramp's `share`; the others stay with the current policy. With `share` 0 (shadow) the
current policy decides every request and the candidate's verdict is recorded beside it.
A decision says which arm it was in (`canary`), and one the candidate made carries the
candidate's `policy_version`.

>>> from resontinex.agents.trust import default_config
>>> c = PolicyCanary("floor-65", 0.5, 2, default_config(), "cand")
>>> arm_of(c, "r-1") == arm_of(c, "r-1"), {arm_of(c, f"r-{i}") for i in range(50)} == {"candidate", "current"}
(True, True)
>>> round(sum(bucket("floor-65", f"r-{i}") < 0.1 for i in range(10_000)) / 10_000, 2)
0.1
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from resontinex.agents.trust import TrustConfig

__all__ = ["PolicyCanary", "arm_of", "bucket", "canary_summary"]

Arm = Literal["candidate", "current"]


@dataclass(frozen=True, slots=True)
class PolicyCanary:
    enhancement_id: str
    share: float
    """The part of the tenant's requests the candidate decides; 0: shadow."""
    step: int
    """The ramp step (0: shadow, if the ramp has one), recorded with each decision."""
    trust: TrustConfig
    policy_version: str
    """The candidate's: the version of the whole configuration with its trust settings."""
    activation: int = 0
    """Which activation of the enhancement this ramp belongs to (its deactivations before it)."""

    @property
    def shadow(self) -> bool:
        return self.share <= 0.0


def bucket(enhancement_id: str, request_id: str) -> float:
    """A request's place in [0, 1) for an enhancement, uniform and fixed."""
    digest = hashlib.blake2b(f"{enhancement_id}\x1f{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def arm_of(canary: PolicyCanary, request_id: str) -> Arm:
    return "candidate" if not canary.shadow and bucket(canary.enhancement_id, request_id) < canary.share else "current"


def canary_summary(canary: PolicyCanary, arm: Arm, shadow: dict[str, Any] | None = None) -> dict[str, Any]:
    """The decision's `canary` part: which enhancement, which arm, the ramp's step and share
    (and which of its activations); in shadow, the candidate's verdict (`verb`, `tier`,
    `score`) it would have given."""
    return {"enhancement_id": canary.enhancement_id, "arm": arm, "share": canary.share, "step": canary.step,
            "activation": canary.activation, "candidate_policy_version": canary.policy_version, "shadow": shadow}
