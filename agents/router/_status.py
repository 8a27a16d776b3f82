"""A status snapshot like seed 002's `get_status()`, from a `RouterState`.

Sections as in the seed: `strategist` (the policy: ε, per-state Q-values, decisions,
recent average reward), `executor` (outcomes: counts, success rate, average cost and
latency, pending), `auditor` (approval, rejection and flag rates, violation counts per
type) plus `anomalies`. Undefined averages and rates (nothing counted yet) are None.

>>> from resontinex.agents.router import RouterState, RoutingConfig
>>> snap = router_status(RouterState.fresh(RoutingConfig()))
>>> snap["strategist"]["epsilon"], snap["executor"]["success_rate"], snap["auditor"]["common_violations"]
(0.1, None, [])
"""

from __future__ import annotations

from typing import Any

from ._router import RouterState


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def router_status(state: RouterState) -> dict[str, Any]:
    """A JSON-able snapshot of one router state."""
    s, policy = state.stats, state.policy
    q_values = policy.values()
    counts = {key: {pid: policy.observations(key, pid) for pid in row} for key, row in q_values.items()}
    violations = s.violation_counts()
    common = [{"type": t, "count": n}
              for t, n in sorted(violations.items(), key=lambda item: (-item[1], item[0])) if n]
    below = sorted(pid for pid, rec in state.success.providers.items() if rec.below)
    return {
        "policy": policy.name,
        "strategist": {
            "policy": policy.name,
            "epsilon": policy.epsilon,
            "decision_count": s.decisions,
            "q_states": len(q_values),
            "q_values": q_values,
            "observations": counts,
            "explore": s.explore,
            "exploit": s.exploit,
            "avg_reward_100": s.avg_reward_recent,
            "total_rewards": s.outcomes,
            "reward_sum": s.reward,
        },
        "executor": {
            "total_decisions": s.routed,
            "total_outcomes": s.outcomes,
            "success_rate": s.success_rate,
            "avg_cost_usd": s.avg_cost_usd,
            "avg_latency_ms": s.avg_latency_ms,
            "pending_feedback": s.pending,
            "expired": s.expired,
        },
        "auditor": {
            "total_entries": s.decisions,
            "approval_rate": _rate(s.routed - s.flagged, s.decisions),
            "rejection_rate": _rate(s.no_feasible, s.decisions),
            "flagged_rate": _rate(s.flagged, s.decisions),
            "violations": violations,
            "common_violations": common,
        },
        "anomalies": {**s.anomaly_counts(), "underperforming": below},
    }
