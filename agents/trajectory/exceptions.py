"""Errors of the trajectory analyzer."""

from __future__ import annotations


class TrajectoryError(Exception):
    """Base of this package's errors."""


class ConfigError(TrajectoryError, ValueError):
    """A configuration value is invalid; `key` is its dotted path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


class ModelUnavailable(TrajectoryError):
    """The model cannot be found or loaded (offline: nothing is downloaded)."""


class UnscorableText(TrajectoryError):
    """A text gives no token to score (the tokenizer returns nothing for it)."""
