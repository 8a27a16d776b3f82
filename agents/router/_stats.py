"""`RouterStats`: counters folded from decisions, outcomes, expiries and anomalies.

Immutable and JSON-serialisable, so a Faust table can hold it beside the policy. The
status snapshot (`router_status`) reads it.

>>> s = RouterStats().after_decision(routed=True, flagged=False, mode="exploit", violations=["price_exceeded"])
>>> s = s.after_outcome(success=True, cost_usd=1.45, latency_ms=145, reward=9.15)
>>> s.routed, s.success_rate, s.avg_cost_usd, s.violation_counts()["price_exceeded"], s.pending
(1, 1.0, 1.45, 1, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final, Self

from . import _codec as codec
from ._constraints import VIOLATION_TYPES, ViolationType
from .exceptions import RouterError

RECENT: Final = 100
"""How many recent rewards `avg_reward_recent` averages (seed 002's `avg_reward_100`)."""
ANOMALY_KINDS: Final = ("q_jump", "success_rate")
_COUNTERS: Final = ("decisions", "routed", "no_feasible", "flagged", "explore", "exploit", "outcomes",
                    "successes", "expired")
_SUMS: Final = ("cost_usd", "latency_ms", "reward")


@dataclass(frozen=True, slots=True)
class RouterStats:
    """Counts since the state was created.

    `decisions`: routing decisions (requests with `routing`); `routed` of them chose a
    provider, `no_feasible` did not (deferred); `flagged` routed to a provider breaking
    soft constraints (lenient mode); `explore`/`exploit` count the modes of routed ones.
    `outcomes` applied (`successes` of them), with the sums of their cost, latency and
    reward; `expired`: routed decisions whose outcome never came in time. `violations`:
    per type (in `VIOLATION_TYPES` order), every violation of every screened provider.
    `anomalies`: per kind (`ANOMALY_KINDS`). `recent_rewards`: the last `RECENT` rewards.
    """

    decisions: int = 0
    routed: int = 0
    no_feasible: int = 0
    flagged: int = 0
    explore: int = 0
    exploit: int = 0
    outcomes: int = 0
    successes: int = 0
    expired: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    reward: float = 0.0
    violations: tuple[int, ...] = (0,) * len(VIOLATION_TYPES)
    anomalies: tuple[int, ...] = (0,) * len(ANOMALY_KINDS)
    recent_rewards: tuple[float, ...] = ()

    def after_decision(self, *, routed: bool, flagged: bool, mode: str | None,
                       violations: Iterable[ViolationType | str]) -> Self:
        """Fold in one routing decision (`mode` of the choice; None when not routed)."""
        counts = list(self.violations)
        for v in violations:
            counts[VIOLATION_TYPES.index(ViolationType(v))] += 1
        return replace(self, decisions=self.decisions + 1, routed=self.routed + routed,
                       no_feasible=self.no_feasible + (not routed), flagged=self.flagged + (routed and flagged),
                       explore=self.explore + (routed and mode == "explore"),
                       exploit=self.exploit + (routed and mode == "exploit"), violations=tuple(counts))

    def after_outcome(self, *, success: bool, cost_usd: float, latency_ms: float, reward: float) -> Self:
        """Fold in one applied outcome."""
        return replace(self, outcomes=self.outcomes + 1, successes=self.successes + bool(success),
                       cost_usd=self.cost_usd + cost_usd, latency_ms=self.latency_ms + latency_ms,
                       reward=self.reward + reward, recent_rewards=(*self.recent_rewards, reward)[-RECENT:])

    def after_expiry(self, count: int = 1) -> Self:
        """Fold in routed decisions that expired without an outcome."""
        return replace(self, expired=self.expired + count)

    def after_anomaly(self, kind: str) -> Self:
        if kind not in ANOMALY_KINDS:
            raise RouterError(f"unknown anomaly kind {kind!r}; known: {', '.join(ANOMALY_KINDS)}")
        counts = list(self.anomalies)
        counts[ANOMALY_KINDS.index(kind)] += 1
        return replace(self, anomalies=tuple(counts))

    @property
    def pending(self) -> int:
        """Routed decisions still waiting for their outcome."""
        return max(0, self.routed - self.outcomes - self.expired)

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.outcomes if self.outcomes else None

    @property
    def avg_cost_usd(self) -> float | None:
        return self.cost_usd / self.outcomes if self.outcomes else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_ms / self.outcomes if self.outcomes else None

    @property
    def avg_reward_recent(self) -> float | None:
        return sum(self.recent_rewards) / len(self.recent_rewards) if self.recent_rewards else None

    def violation_counts(self) -> dict[str, int]:
        return {t.value: n for t, n in zip(VIOLATION_TYPES, self.violations, strict=True)}

    def anomaly_counts(self) -> dict[str, int]:
        return dict(zip(ANOMALY_KINDS, self.anomalies, strict=True))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["violations"] = self.violation_counts()
        out["anomalies"] = self.anomaly_counts()
        out["recent_rewards"] = list(self.recent_rewards)
        return out

    @classmethod
    def from_dict(cls, data: object, path: str = "stats") -> Self:
        names = tuple(f.name for f in fields(cls))
        raw = codec.mapping(data, path, allowed=names)
        values: dict[str, Any] = {}
        for name in _COUNTERS:
            if name in raw:
                values[name] = codec.count(raw[name], codec.child(path, name))
        for name in _SUMS:
            if name in raw:
                values[name] = codec.real(raw[name], codec.child(path, name))
        values["violations"] = _counts(raw.get("violations", {}), codec.child(path, "violations"),
                                       tuple(t.value for t in VIOLATION_TYPES))
        values["anomalies"] = _counts(raw.get("anomalies", {}), codec.child(path, "anomalies"), ANOMALY_KINDS)
        rewards_path = codec.child(path, "recent_rewards")
        rewards = codec.sequence(raw.get("recent_rewards", []), rewards_path)
        values["recent_rewards"] = tuple(codec.real(r, f"{rewards_path}[{i}]") for i, r in enumerate(rewards))[-RECENT:]
        return cls(**values)


def _counts(data: object, path: str, names: tuple[str, ...]) -> tuple[int, ...]:
    raw: Mapping[str, Any] = codec.mapping(data, path, allowed=names)
    return tuple(codec.count(raw.get(n, 0), codec.child(path, n)) for n in names)

