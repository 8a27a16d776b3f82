"""Errors raised by the coordination core. All are `ValueError` subclasses."""

from __future__ import annotations

__all__ = ["ConfigError", "CoordinationError", "JudgeError"]


class CoordinationError(ValueError):
    """Base class of every error the coordination core raises."""


class ConfigError(CoordinationError):
    """`coordination.yaml` is invalid; `key` names the offending key (dotted)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


class JudgeError(CoordinationError):
    """A judge's reply that does not hold a score per criterion and a reason."""
