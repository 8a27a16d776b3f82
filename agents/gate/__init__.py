"""The gate: one decision per decision request, the most restrictive of what each part says.

`plan_batch` is the batch core: decision requests and a read-only `GateView` of the
worker's state in, a frozen `GatePlan` of effects out (`resontinex.agents.effects`). The
parts it is built from (`decide`, `budgeting`, `routing`, `text`, `stats`) are plain
functions over plain values; `resontinex.app.wiring.gate` wires it to Kafka and Faust.
"""

from ._alert_audit import FOREIGN_KINDS, plan_alert_audit
from ._budgeting import LAG_LIMIT, BudgetJudge, InsightCache, Judged
from ._decide import (
    CIRCUIT_OPEN_REASON,
    VERB_RANK,
    alert_event,
    alert_id,
    break_glass,
    circuit_alert,
    decision_event,
    decision_id,
    derived_id,
    floor_alert,
    most_restrictive,
    trust_reasons,
)
from ._fusion import AwaitingView, FusionBatch, plan_fusion, plan_sweep
from ._plan import STATS_WINDOW_S, GateBatch, GateConfig, GatePlan, Remembered, plan_batch
from ._policy import PolicyCanary, arm_of, bucket, canary_of, canary_summary
from ._routing import (APPLIED_KEPT, Candidate, RouteJudge, Routed, auditable_table, candidate_of, load_router_state,
                       overlay_for, rejection_alerts, router_state_of, router_value)
from ._stats import WindowStats, merge_stats, window_start
from ._system import circuit_effects, rejection_effects
from ._text import (HELD_BACK, awaiting_key, needs_text_score, scored_request, text_reason, timed_out_request,
                    trajectory_request, unscored_request)
from ._view import GateView

__all__ = [
    "APPLIED_KEPT", "CIRCUIT_OPEN_REASON", "FOREIGN_KINDS", "HELD_BACK", "LAG_LIMIT", "STATS_WINDOW_S", "VERB_RANK",
    "AwaitingView", "BudgetJudge", "Candidate", "FusionBatch", "GateBatch", "GateConfig", "GatePlan", "GateView", "InsightCache", "Judged", "PolicyCanary", "Remembered",
    "RouteJudge", "Routed", "WindowStats",
    "alert_event", "alert_id", "arm_of", "auditable_table", "bucket", "canary_of", "canary_summary", "candidate_of", "awaiting_key", "break_glass", "circuit_alert", "circuit_effects",
    "decision_event", "decision_id", "derived_id", "floor_alert", "load_router_state", "merge_stats",
    "most_restrictive", "needs_text_score", "overlay_for", "plan_alert_audit", "plan_batch", "plan_fusion", "plan_sweep", "rejection_alerts", "rejection_effects",
    "router_state_of", "router_value", "scored_request", "text_reason", "timed_out_request", "trajectory_request",
    "trust_reasons", "unscored_request", "window_start",
]
