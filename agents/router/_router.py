"""The router's whole pure step: decide a route, learn from an outcome.

`RouterState` bundles what the agent keeps per table key: the policy, both anomaly
detectors and the stats, as one JSON-able value. `decide` screens the offers, lets the
policy choose among the candidates and returns the `RouteDecision` (the §3.2 `route`
object, the reasons, the `no_feasible_provider` alert, the pending record). `feedback`
computes seed 002's reward for an outcome, updates the policy once, and returns any
`routing_anomaly`. Applying each outcome once, and expiring pending decisions, is the
caller's job (`PendingDecision`).

>>> from resontinex.agents.router import ProviderState, WorkloadContext, RoutingConfig
>>> state = RouterState.fresh(RoutingConfig())
>>> offers = [ProviderState("akash", 2.5, 120, 95, 100, ("a100",), ("us-west",)),
...           ProviderState("vast", 1.5, 200, 85, 100, ("a100",), ("us-west",))]
>>> ctx = WorkloadContext("llm_inference", "a100", "us-west", 2.0)
>>> state, route = decide(state, context=ctx, providers=offers, constraints=None, psi=None,
...                       rng=decision_rng(0, "req-1"))
>>> route.verb, route.summary()["provider_id"], route.summary()["propensity"]   # a tie: 0.1/2 + 0.9/2
('execute', 'akash', 0.5)
>>> state, fb = feedback(state, route.pending("d-1", decided_at=0.0), success=True,
...                      cost_usd=1.45, latency_ms=145, reputation=89)
>>> fb.reward, state.policy.value("llm_inference:a100:us-west", "akash"), state.stats.outcomes
(9.15, 0.915, 1)
>>> state, route = decide(state, context=ctx, providers=offers, constraints=None, psi=None,
...                       rng=decision_rng(0, "req-2"))
>>> route.summary()["provider_id"], round(route.summary()["propensity"], 6)   # ε decayed to 0.0995
('akash', 0.95025)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np

from . import _codec as codec
from ._anomaly import Anomaly, QJumpDetector, SuccessRateMonitor
from ._base import Choice
from ._config import PolicyName, RoutingConfig
from ._constraints import Screening, Violation, screen
from ._epsilon_greedy import EpsilonGreedy
from ._features import Features, features_by_provider
from ._inputs import ConstraintsLike, ContextLike, ProviderLike, PsiLike, state_key
from ._pending import PendingDecision
from ._policies import AnyPolicy, make_policy
from ._reward import reward as seed_reward
from ._stats import RouterStats
from ._table import export_q_table, import_q_table


def decision_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator for one decision: seeded by the configured `seed` and, say, the
    request's `event_id`, so a redelivered request draws the same numbers whatever else
    the worker processed in between.

    >>> decision_rng(0, "req-1").random() == decision_rng(0, "req-1").random() != decision_rng(0, "req-2").random()
    True
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 8], "big") for i in range(0, 32, 8)]
    return np.random.default_rng([seed, *words])


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The router's part of one decision.

    `choice` None means no provider is feasible (or none was offered): the verb is
    `defer`, `alert()` gives the `no_feasible_provider` alert, `summary()` has
    `provider_id`, `q_value` and `propensity` null, `mode` `explore` (the schema needs
    one) and lists every violation type any offered provider showed. Otherwise the verb is
    `execute`; in lenient mode a chosen provider that breaks soft constraints is
    *flagged*: its violations are in `summary()["violations"]` and in a
    `constraint_violation` reason (the verb stays `execute`).
    """

    state_key: str
    policy: PolicyName
    screening: Screening
    choice: Choice | None
    features: Features | None

    @property
    def verb(self) -> str:
        return "defer" if self.choice is None else "execute"

    @property
    def violations(self) -> tuple[Violation, ...]:
        """The chosen provider's violations (flagged ones); empty when none is chosen."""
        return () if self.choice is None else self.screening.violations_of(self.choice.provider_id)

    def summary(self) -> dict[str, Any]:
        """CONTRACT §3.2 `route`."""
        if self.choice is None:
            return {"provider_id": None, "mode": "explore", "q_value": None, "propensity": None,
                    "policy": self.policy, "violations": [t.value for t in self.screening.violation_types()]}
        c = self.choice
        return {"provider_id": c.provider_id, "mode": c.mode, "q_value": c.q_value, "propensity": c.propensity,
                "policy": c.policy, "violations": [v.type.value for v in self.violations]}

    def reasons(self) -> list[dict[str, str]]:
        """`{component, code, message}` reasons: `no_feasible_provider` or `constraint_violation`."""
        if self.choice is None:
            return [{"component": "router", "code": "no_feasible_provider", "message": self._why_none()}]
        if self.violations:
            found = "; ".join(v.message() for v in self.violations)
            return [{"component": "router", "code": "constraint_violation",
                     "message": f"lenient mode routed to a provider breaking constraints: {found}"}]
        return []

    def _why_none(self) -> str:
        s = self.screening
        if not s.offered:
            return f"no provider offered for {self.state_key}"
        found = "; ".join(v.message() for v in s.all_violations())
        return f"none of {len(s.offered)} providers is feasible for {self.state_key} ({s.mode} mode): {found}"

    def alert(self) -> dict[str, Any] | None:
        """The `no_feasible_provider` alert's `kind`, `severity`, `message`, `details`; None when routed."""
        if self.choice is None:
            s = self.screening
            return {"kind": "no_feasible_provider", "severity": "warning", "message": self._why_none(),
                    "details": {"state_key": self.state_key, "mode": s.mode, "offered": list(s.offered),
                                "violations": [v.as_dict() for v in s.all_violations()]}}
        return None

    def pending(self, decision_id: str, decided_at: float) -> PendingDecision | None:
        """What to keep until the outcome comes; None when nothing was routed."""
        if self.choice is None or self.features is None:
            return None
        c = self.choice
        return PendingDecision(decision_id, self.state_key, c.provider_id, c.policy, c.propensity, c.q_value,
                               self.features, decided_at)


@dataclass(frozen=True, slots=True)
class Feedback:
    """What one outcome did: its reward, the value estimate before and after, anomalies."""

    reward: float
    old_value: float | None
    new_value: float | None
    anomalies: tuple[Anomaly, ...]


@dataclass(frozen=True, slots=True)
class RouterState:
    """Policy, anomaly detectors and stats: one serialisable value."""

    policy: AnyPolicy
    q_jumps: QJumpDetector
    success: SuccessRateMonitor
    stats: RouterStats

    @property
    def cfg(self) -> RoutingConfig:
        return self.policy.cfg

    @classmethod
    def fresh(cls, cfg: RoutingConfig) -> Self:
        return cls(make_policy(cfg), QJumpDetector.from_config(cfg.anomaly),
                   SuccessRateMonitor.from_config(cfg.anomaly), RouterStats())

    def to_dict(self) -> dict[str, Any]:
        return {"q_table": export_q_table(self.policy), "q_jumps": self.q_jumps.to_dict(),
                "success": self.success.to_dict(), "stats": self.stats.to_dict()}

    @classmethod
    def from_dict(cls, data: object, cfg: RoutingConfig) -> Self:
        """Back from `to_dict()` under `cfg`'s settings.

        When `cfg.policy` names another policy than the stored table's (the operator
        switched policies), that policy starts fresh, and so does the Q-jump history
        (the old values were on another scale); the stats and the success-rate windows
        are kept. Anything malformed raises `TableError` naming its path.
        """
        raw = codec.mapping(data, "<router>", required=("q_table", "q_jumps", "success", "stats"),
                            allowed=("q_table", "q_jumps", "success", "stats"))
        policy = import_q_table(raw["q_table"], cfg)
        q_jumps = QJumpDetector.from_dict(raw["q_jumps"], cfg.anomaly)
        if policy.name != cfg.policy:
            policy, q_jumps = make_policy(cfg), QJumpDetector.from_config(cfg.anomaly)
        return cls(policy, q_jumps, SuccessRateMonitor.from_dict(raw["success"], cfg.anomaly),
                   RouterStats.from_dict(raw["stats"]))


def candidate_state(current: RouterState, cfg: RoutingConfig) -> RouterState:
    """A candidate configuration's router, seeded from the `current` one: the same learnt
    arms when it keeps the policy (a different policy starts fresh, as a switch does), the
    anomaly detectors carried on, its own stats. ε-greedy's decayed ε carries on too,
    unless the candidate sets another `epsilon`, where it starts.

    >>> cur = RouterState.fresh(RoutingConfig())
    >>> key = "llm:a100:us"
    >>> cur, _ = feedback(cur, PendingDecision("d", key, "akash", "epsilon_greedy", 1.0, 0.0, None, 0.0),
    ...                   success=True, cost_usd=0, latency_ms=0, reputation=100)
    >>> cand = candidate_state(cur, RoutingConfig(mode="lenient"))
    >>> cand.policy.value(key, "akash"), cand.policy.epsilon == cur.policy.epsilon, cand.stats.outcomes
    (1.1, True, 0)
    >>> candidate_state(cur, RoutingConfig(epsilon=0.3)).policy.epsilon
    0.3
    >>> candidate_state(cur, RoutingConfig(policy="ucb1")).policy.value(key, "akash") is None
    True
    """
    seeded = RouterState.from_dict(current.to_dict(), cfg)
    policy = seeded.policy
    if isinstance(policy, EpsilonGreedy) and cfg.epsilon != current.cfg.epsilon:
        policy = replace(policy, epsilon=cfg.epsilon)
    return replace(seeded, policy=policy, stats=RouterStats())


def decide(state: RouterState, *, context: ContextLike | None, providers: Iterable[ProviderLike],
           constraints: ConstraintsLike | None, psi: PsiLike | None,
           rng: np.random.Generator) -> tuple[RouterState, RouteDecision]:
    """Route one request: screen (`cfg.mode`), choose among the candidates, count it.

    Only the stats change; the policy learns in `feedback`.
    """
    cfg = state.cfg
    offers = list(providers)
    key = state_key(context)
    screening = screen(offers, context, constraints, cfg.mode)
    choice: Choice | None = None
    chosen_features: Features | None = None
    if screening.feasible:
        candidates = [p for p in offers if p.provider_id in screening.candidates]
        features = features_by_provider(candidates, cfg.features)
        choice = state.policy.choose(key, screening.candidates, features, psi, rng)
        chosen_features = features[choice.provider_id]
    route = RouteDecision(key, state.policy.name, screening, choice, chosen_features)
    stats = state.stats.after_decision(routed=choice is not None, flagged=bool(route.violations),
                                       mode=None if choice is None else choice.mode,
                                       violations=(v.type for v in screening.all_violations()))
    return replace(state, stats=stats), route


def feedback(state: RouterState, pending: PendingDecision, *, success: bool, cost_usd: float,
             latency_ms: float, reputation: float) -> tuple[RouterState, Feedback]:
    """Apply one outcome of a pending decision (CONTRACT §3.3): reward, one policy update,
    anomaly checks, stats. Call it once per decision; the caller drops repeats."""
    r = seed_reward(success=success, cost_usd=cost_usd, latency_ms=latency_ms, reputation=reputation)
    key, pid = pending.state_key, pending.provider_id
    old = state.policy.value(key, pid)
    policy = state.policy.update(key, pid, r, pending.features)
    new = policy.value(key, pid)
    anomalies: list[Anomaly] = []
    q_jumps = state.q_jumps
    if old is not None and new is not None:
        q_jumps, jump = q_jumps.observe(key, pid, old, new)
        if jump is not None:
            anomalies.append(jump)
    success_monitor, low = state.success.observe(pid, success)
    if low is not None:
        anomalies.append(low)
    stats = state.stats.after_outcome(success=success, cost_usd=cost_usd, latency_ms=latency_ms, reward=r)
    for a in anomalies:
        stats = stats.after_anomaly(a.kind)
    return RouterState(policy, q_jumps, success_monitor, stats), Feedback(r, old, new, tuple(anomalies))


def expire(state: RouterState, count: int = 1) -> RouterState:
    """Count routed decisions whose outcome did not come within `pending_ttl_s`."""
    return replace(state, stats=state.stats.after_expiry(count))
