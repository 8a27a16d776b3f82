"""Errors raised by the trust gate.

All are :class:`ValueError` subclasses, so callers that already treat bad values as
``ValueError`` keep working; catch :class:`TrustError` to handle the gate's own.
"""

from __future__ import annotations


class TrustError(ValueError):
    """Base class of every error the trust gate raises."""


class InvalidInput(TrustError):
    """A signal (or an array of signals) is not a finite real number in [0, 1]."""


class ConfigError(TrustError):
    """A trust gate configuration is invalid; ``key`` names the offending key (dotted)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


class InvalidOverride(TrustError):
    """A break-glass override lacks an operator, a reason, or something to override."""
