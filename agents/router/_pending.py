"""A routed decision waiting for its outcome (issue 4, item 4).

The agent keeps one per routed decision, keyed by the decision's `event_id`, until the
outcome arrives (then it applies the reward once and drops it) or `pending_ttl_s` has
passed (then it expires: a later outcome is a dead letter). It holds what the update
needs: where and what was chosen, the chosen provider's features (for LinUCB), and the
propensity (for off-policy evaluation).

>>> p = PendingDecision("d-1", "llm:a100:us", "akash", "epsilon_greedy", 0.95, 0.0,
...                     (1.0, 0.3, 0.2, 0.95, 0.5), decided_at=1000.0)
>>> p.is_expired(now=4600.0, ttl_s=3600.0), p.is_expired(now=4600.5, ttl_s=3600.0)
(False, True)
>>> PendingDecision.from_dict(p.to_dict()) == p
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from . import _codec as codec
from ._config import POLICIES, PolicyName
from ._features import DIMENSION
from .exceptions import TableError


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """What a routed decision chose; `decided_at` in POSIX seconds."""

    decision_id: str
    state_key: str
    provider_id: str
    policy: PolicyName
    propensity: float
    q_value: float | None
    features: tuple[float, ...]
    decided_at: float

    def expires_at(self, ttl_s: float) -> float:
        return self.decided_at + ttl_s

    def is_expired(self, now: float, ttl_s: float) -> bool:
        """True once more than `ttl_s` seconds have passed (an outcome exactly at the
        deadline still counts)."""
        return now > self.decided_at + ttl_s

    def to_dict(self) -> dict[str, Any]:
        return {"decision_id": self.decision_id, "state_key": self.state_key, "provider_id": self.provider_id,
                "policy": self.policy, "propensity": self.propensity, "q_value": self.q_value,
                "features": list(self.features), "decided_at": self.decided_at}

    @classmethod
    def from_dict(cls, data: object, path: str = "pending") -> Self:
        names = ("decision_id", "state_key", "provider_id", "policy", "propensity", "q_value", "features",
                 "decided_at")
        raw = codec.mapping(data, path, required=names, allowed=names)
        for name in ("decision_id", "state_key", "provider_id"):
            if not isinstance(raw[name], str) or not raw[name]:
                raise TableError(codec.child(path, name), f"must be a non-empty string, got {raw[name]!r}")
        if raw["policy"] not in POLICIES:
            raise TableError(codec.child(path, "policy"),
                             f"must be one of {', '.join(POLICIES)}, got {raw['policy']!r}")
        f_path = codec.child(path, "features")
        features = tuple(codec.real(v, f"{f_path}[{i}]")
                         for i, v in enumerate(codec.sequence(raw["features"], f_path, DIMENSION)))
        return cls(raw["decision_id"], raw["state_key"], raw["provider_id"], raw["policy"],
                   codec.real(raw["propensity"], codec.child(path, "propensity"), 0.0, 1.0),
                   codec.optional_real(raw["q_value"], codec.child(path, "q_value")), features,
                   codec.real(raw["decided_at"], codec.child(path, "decided_at")))
