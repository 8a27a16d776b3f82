"""Trajectory analysis: a causal LM's per-token view of generated text (seed 003).

Perplexity, full-distribution entropy and surprise of each text, batched by length,
cached, tolerant of CUDA running out of memory; the worker role `trajectory` runs it on
its own consumer group (`resontinex.app.wiring.trajectory`).
"""

from ._analyzer import PROBE, Analyzer, AnalyzerStats, Scored
from ._batching import plan_batches
from ._cache import ScoreCache, cache_key
from ._config import TrajectoryConfig, load_trajectory_config, risk_from_entropy, trajectory_config_from
from ._plan import Admitted, Scorer, admit_requests, plan_results, quality_alert, result_event, result_id
from ._model import SMOLLM2, SMOLLM2_HINT, LoadedModel, ModelSource, load, resolve, unavailable_reason
from ._scoring import TextScore, summarise, token_stats
from .exceptions import ConfigError, ModelUnavailable, TrajectoryError, UnscorableText

__all__ = [
    "PROBE", "SMOLLM2", "SMOLLM2_HINT",
    "Admitted", "Analyzer", "AnalyzerStats", "ConfigError", "LoadedModel", "ModelSource", "ModelUnavailable", "Scored",
    "ScoreCache", "Scorer", "TextScore", "TrajectoryConfig", "TrajectoryError", "UnscorableText",
    "admit_requests", "cache_key", "load", "load_trajectory_config", "plan_batches", "plan_results", "quality_alert", "resolve", "result_event", "result_id", "risk_from_entropy",
    "summarise", "token_stats", "trajectory_config_from", "unavailable_reason",
]
