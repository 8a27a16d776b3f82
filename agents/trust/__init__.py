"""The composite trust gate (CONTRACT section 5): a pure, synchronous module.

Signals in [0, 1] are combined in logit space into a score, a risk tier and a verb.
Tier names are ``TIERS`` (block, review, monitor, pass); verbs are ``DECISIONS``
(execute, review, defer, abort, least to most restrictive).

>>> from resontinex.agents.trust import InputVector, default_config, evaluate, policy_version
>>> config = default_config()
>>> result = evaluate(InputVector(0.8, 0.3, 0.2), config)
>>> result.score, result.tier, result.decision
(0.7681, 'pass', 'execute')
>>> len(policy_version(config))
12
"""

from ._batch import BatchResult, evaluate_batch, rejudge
from ._breaker import BreakerConfig, CircuitBreaker, Transition
from ._calibration import CalibrationAdapter, FitReport
from ._config import (
    TrustConfig,
    config_from_mapping,
    default_config,
    load_config,
    policy_version,
    policy_version_of,
)
from ._explain import explain, explain_batch, verb_change
from ._gate import TrustResult, evaluate, evaluate_values
from ._inputs import SIGNALS, InputVector
from ._monitor import TrustMonitor
from ._names import DECISIONS, TIER_DECISIONS, TIERS
from ._override import OverrideRecord, break_glass_override
from .exceptions import ConfigError, InvalidInput, InvalidOverride, TrustError

__all__ = [
    "DECISIONS",
    "SIGNALS",
    "TIERS",
    "TIER_DECISIONS",
    "BatchResult",
    "BreakerConfig",
    "CalibrationAdapter",
    "CircuitBreaker",
    "ConfigError",
    "FitReport",
    "InputVector",
    "InvalidInput",
    "InvalidOverride",
    "OverrideRecord",
    "TrustConfig",
    "TrustError",
    "TrustMonitor",
    "TrustResult",
    "Transition",
    "break_glass_override",
    "config_from_mapping",
    "default_config",
    "evaluate",
    "evaluate_batch",
    "evaluate_values",
    "explain",
    "explain_batch",
    "load_config",
    "policy_version",
    "policy_version_of",
    "rejudge",
    "verb_change",
]
