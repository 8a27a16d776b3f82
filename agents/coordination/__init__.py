"""The coordination monitor's core (seed 003): does a team of LLM agents beat its members alone?

`run_coordination` runs a team by a strategy through an injected `Model` (the shell's
resilient Anthropic client), judges it with an LLM judge (`_judge`), measures the
baselines and the consensus, and `result_event`/`cost_events` turn its report into wire
events. The rest are plain values: γ, ω and consensus (`_metrics`), the per-model circuit
breaker (`_breaker`), quality drift and ineffective coordination per tenant and strategy
(`_drift`), `coordination.yaml` (`_config`).
"""

from ._config import (CoordinationConfig, JudgeSettings, Price, RateLimit, Retries, coordination_config_from,
                      load_coordination_config)
from ._judge import JUDGE_TOOL_NAME, Judgement, judge_tool, parse_judgement
from ._plan import (BASELINES_TABLE, STATE_TABLE, Admitted, TenantState, admit_request, breaker_effects,
                    budget_status, plan_run, refusal, refused_report, run_request)
from ._prompts import PROMPT_VERSION
from ._result import PROVIDER, cost_events, result_event, result_id
from ._run import (Answer, Call, CallFailed, Embed, Model, Reply, RunReport, RunRequest, SharedCap, Spent,
                   baseline_key, run_coordination)
from ._breaker import BreakerSettings, BreakerState, ModelBreaker, Transition
from ._drift import DriftSettings, RunHistory, Signal
from ._metrics import CoordinationMetrics, consensus, coordination_metrics, gamma, omega
from .exceptions import ConfigError, CoordinationError, JudgeError

__all__ = [
    "BASELINES_TABLE", "JUDGE_TOOL_NAME", "PROMPT_VERSION", "PROVIDER", "STATE_TABLE",
    "Admitted", "Answer", "Call", "CallFailed", "CoordinationConfig", "Embed", "JudgeSettings", "Judgement", "Model", "Price",
    "RateLimit", "Reply", "Retries", "RunReport", "RunRequest", "SharedCap", "Spent", "TenantState",
    "admit_request", "baseline_key", "breaker_effects", "budget_status", "plan_run", "refusal", "refused_report",
    "run_request", "coordination_config_from", "cost_events", "judge_tool", "load_coordination_config",
    "parse_judgement", "result_event", "result_id", "run_coordination",
    "BreakerSettings", "BreakerState", "ConfigError", "CoordinationError", "CoordinationMetrics", "DriftSettings",
    "JudgeError", "ModelBreaker", "RunHistory", "Signal", "Transition",
    "consensus", "coordination_metrics", "gamma", "omega",
]
