"""Enhancement governance (seed 004, CONTRACT §3.10): preflight, monitor, canary judge, lifecycle.

An enhancement (a prompt, a model switch, a trust or routing policy change) is checked
before it runs (`_preflight`), watched on its telemetry while it runs (`_telemetry` folds
the stream into windows, `_series` keeps what the monitor reads, `_monitor` holds the
rules, `_canary` judges its arm against the baseline arm), and moved through its
lifecycle (`_lifecycle`) by the cores in `_plan`. `enhancements.yaml` is `_config`.
"""

from ._canary import CanaryJudgement, CanarySettings, MetricJudge, MetricVerdict, judge_canary
from ._config import (CanaryConfig, Cooldowns, EnhancementConfig, MonitorSettings, PerformanceSettings, PreflightItem,
                      PreflightSettings, QualitySettings, StabilitySettings, TelemetrySettings,
                      enhancement_config_from, load_enhancement_config, parse_duration)
from ._lifecycle import ALERTS, TRANSITIONS, Awaiting, Enhancement, Transition, move
from ._monitor import Assessment, Step, Trigger, assess, next_step, performance, quality, stability
from ._plan import (DIRECTORY_TABLE, FEED_POLICY, FEED_ROUTED, FEED_SUBMISSION, FEED_TELEMETRY, INDEX_TABLE,
                    POLICY_KINDS, POOLS_TABLE, SERIES_TABLE, STATE_TABLE, Context, EnhancementView, plan_command, plan_feed,
                    plan_submissions, plan_tick)
from ._policy import CandidateError, candidate_config, candidate_problem, candidate_routing, candidate_trust
from ._ramp import Ramp, RampJudgement, RampSettings, Tally, ramp_steps
from ._preflight import (Check, Installed, PayloadCheck, Preflight, check_requirements, check_schema, check_thresholds,
                         installed_version, preflight)
from ._series import EnhancementSeries, MetricSeries
from ._stats import EMPTY, WindowStats, fold, fold_many, sample_hash
from ._telemetry import ARMS_TABLE, SOURCES_TABLE, TelemetryPlan, TelemetryView, plan_telemetry, window_start
from .exceptions import ConfigError, EnhancementError

__all__ = [
    "ALERTS", "ARMS_TABLE", "DIRECTORY_TABLE", "EMPTY", "FEED_POLICY", "FEED_ROUTED", "FEED_SUBMISSION",
    "FEED_TELEMETRY", "INDEX_TABLE", "POLICY_KINDS", "POOLS_TABLE", "SERIES_TABLE", "SOURCES_TABLE", "STATE_TABLE", "TRANSITIONS",
    "Assessment", "Awaiting", "Installed", "PayloadCheck", "Ramp", "RampJudgement", "RampSettings", "Tally", "CanaryConfig", "CanaryJudgement", "CanarySettings", "Check", "ConfigError", "Context",
    "Cooldowns", "Enhancement", "EnhancementConfig", "EnhancementError", "EnhancementSeries", "EnhancementView",
    "MetricJudge", "MetricSeries", "MetricVerdict", "MonitorSettings", "PerformanceSettings", "Preflight",
    "PreflightItem", "PreflightSettings", "QualitySettings", "StabilitySettings", "Step", "TelemetryPlan",
    "TelemetrySettings", "TelemetryView", "Transition", "Trigger", "WindowStats",
    "CandidateError", "assess", "candidate_config", "candidate_problem", "candidate_routing", "candidate_trust", "check_requirements", "check_schema", "check_thresholds", "enhancement_config_from", "fold",
    "fold_many", "installed_version", "judge_canary", "load_enhancement_config", "move", "next_step",
    "parse_duration", "performance", "plan_command", "plan_feed", "plan_submissions", "plan_telemetry",
    "plan_tick", "preflight", "quality", "ramp_steps", "sample_hash", "stability", "window_start",
]
