"""Errors raised by the enhancement-governance core. All are `ValueError` subclasses."""

from __future__ import annotations

__all__ = ["ConfigError", "EnhancementError"]


class EnhancementError(ValueError):
    """Base class of every error the enhancement core raises."""


class ConfigError(EnhancementError):
    """`enhancements.yaml` is invalid; `key` names the offending key (dotted)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
