"""Errors raised by the router.

All are :class:`ValueError` subclasses; catch :class:`RouterError` to handle the router's own.
"""

from __future__ import annotations


class RouterError(ValueError):
    """Base class of every error the router raises (a bad argument to a pure function)."""


class ConfigError(RouterError):
    """`routing.yaml` is invalid; ``key`` names the offending key (dotted)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


class TableError(RouterError):
    """A serialised router state (an exported Q-table, a stored detector) is invalid;
    ``path`` names the offending value, for example ``state.arms['llm:a100:us'].akash.q``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
