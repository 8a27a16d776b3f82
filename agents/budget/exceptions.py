"""Errors raised by the budget governor."""

from __future__ import annotations


class BudgetError(ValueError):
    """Base class of every error the budget governor raises."""


class ConfigError(BudgetError):
    """`energy_governance.yaml` is invalid; ``key`` names the offending key (dotted)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
