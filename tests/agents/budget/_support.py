"""Shared helpers for the budget tests: a config builder and `assess` with neutral defaults."""

from __future__ import annotations

from typing import Any

from resontinex.agents.budget import Assessment, EnergyConfig, assess, energy_config_from, to_micros


def config(usd: float = 100.0, tokens: int | None = None, **sections: Any) -> EnergyConfig:
    """One tenant-wide day budget for `acme`, plus any section overrides."""
    budget: dict[str, Any] = {"tenant": "acme", "period": "day", "usd": usd}
    if tokens is not None:
        budget["tokens"] = tokens
    return energy_config_from({"budgets": [budget], **sections})


def judge(cfg: EnergyConfig, *, spent_usd: float = 0.0, spent_tokens: int = 0, estimate_usd: float | None = None,
          estimate_tokens: int | None = None, complexity: float | None = None, entropy: float | None = None,
          low_trust: bool = False, braked: bool = False) -> Assessment:
    scoped = cfg.budget_for("acme", "default")
    assert scoped is not None
    return assess(cfg, scoped, spent_micros=to_micros(spent_usd), spent_tokens=spent_tokens,
                  estimate_usd=estimate_usd, estimate_tokens=estimate_tokens, complexity=complexity,
                  entropy=entropy, low_trust=low_trust, braked=braked)
