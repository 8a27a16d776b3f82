"""Adaptive provider routing (issue 4, seed 002's Aurora Intelligence): the pure core.

No Kafka, no asyncio: plain functions and immutable values, every state JSON-able for a
Faust table. Screen the offers against the constraints (`screen`), let a policy choose
(`EpsilonGreedy`, `UCB1`, `Thompson`, `LinUCB`; each choice carries its propensity),
learn from outcomes with seed 002's reward, watch for anomalies, and report a status
snapshot. `decide`/`feedback` do a whole step on a `RouterState`.

>>> from resontinex.agents.router import RoutingConfig, reward, q_update
>>> r = reward(success=True, cost_usd=1.45, latency_ms=145, reputation=89)
>>> r, q_update(0.0, r, alpha=RoutingConfig().alpha, gamma=RoutingConfig().gamma)
(9.15, 0.915)
"""

from ._anomaly import Anomaly, ProviderRecord, QJumpDetector, SuccessRateMonitor
from ._base import Choice, RoutingPolicy, TabularPolicy, candidate_ids
from ._config import (
    MODES,
    POLICIES,
    AnomalyConfig,
    FeatureScales,
    RewardScale,
    RoutingConfig,
    ThompsonConfig,
    load_routing_config,
    routing_config_from,
)
from ._constraints import SOFT, VIOLATION_TYPES, Screening, Violation, ViolationType, check, screen
from ._epsilon_greedy import EpsilonGreedy, QArm
from ._features import DIMENSION, FEATURE_NAMES, features_by_provider, provider_features
from ._inputs import (
    Constraints,
    ConstraintsLike,
    ContextLike,
    ProviderLike,
    ProviderState,
    PsiLike,
    PsiReading,
    WorkloadContext,
    parse_state_key,
    state_key,
)
from ._linucb import LinArm, LinUCB
from ._ope import (
    CrossFitRewards,
    Evaluation,
    LoggedRound,
    OpeEstimate,
    OpeInputs,
    OpeResult,
    Replay,
    WeightDiagnostics,
    doubly_robust,
    effective_sample_size,
    evaluate_policy,
    importance_weights,
    ips,
    off_policy_estimates,
    replay,
    snips,
)
from ._pending import PendingDecision
from ._policies import POLICY_CLASSES, make_policy
from ._reward import effective_epsilon, exploration_scale, from_unit, q_update, reward, unit_reward
from ._router import Feedback, RouteDecision, RouterState, candidate_state, decide, decision_rng, expire, feedback
from ._stats import ANOMALY_KINDS, RouterStats
from ._status import router_status
from ._table import export_q_table, import_q_table
from ._thompson import BetaArm, Thompson
from ._ucb1 import UCB1, UcbArm
from .exceptions import ConfigError, RouterError, TableError

__all__ = [
    "ANOMALY_KINDS", "DIMENSION", "FEATURE_NAMES", "MODES", "POLICIES", "POLICY_CLASSES", "SOFT", "UCB1",
    "VIOLATION_TYPES",
    "Anomaly", "AnomalyConfig", "BetaArm", "Choice", "ConfigError", "Constraints", "ConstraintsLike", "ContextLike",
    "EpsilonGreedy", "FeatureScales", "Feedback", "LinArm", "LinUCB", "PendingDecision", "ProviderLike",
    "ProviderRecord", "ProviderState", "PsiLike", "PsiReading", "QArm", "QJumpDetector", "RewardScale",
    "RouteDecision", "RouterError", "RouterState", "RouterStats", "RoutingConfig", "RoutingPolicy", "Screening",
    "SuccessRateMonitor", "TableError", "TabularPolicy", "Thompson", "ThompsonConfig", "UcbArm", "Violation",
    "ViolationType", "WorkloadContext",
    "candidate_ids", "candidate_state", "check", "decide", "decision_rng", "effective_epsilon", "expire", "exploration_scale",
    "export_q_table", "features_by_provider", "feedback", "from_unit", "import_q_table", "load_routing_config",
    "make_policy", "parse_state_key", "provider_features", "q_update", "reward", "router_status",
    "routing_config_from", "screen", "state_key", "unit_reward",
    "CrossFitRewards", "Evaluation", "LoggedRound", "OpeEstimate", "OpeInputs", "OpeResult", "Replay",
    "WeightDiagnostics", "doubly_robust", "effective_sample_size", "evaluate_policy", "importance_weights", "ips",
    "off_policy_estimates", "replay", "snips",
]
