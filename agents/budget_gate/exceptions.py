"""Errors raised by the budget gate.

All are :class:`ValueError` subclasses; catch :class:`BudgetGateError` to handle the
gate's own. The command line maps every one of them to exit code 2 (bad input).
"""

from __future__ import annotations

__all__ = ["BudgetGateError", "InvalidThresholds", "ReportError"]


class BudgetGateError(ValueError):
    """Base class of every error the budget gate raises."""


class ReportError(BudgetGateError):
    """A budget report (or a sample set) cannot be gated; names where and what.

    >>> str(ReportError("baseline.json", "scenarios[2].tokens", "expected a list of non-negative numbers"))
    'baseline.json: scenarios[2].tokens: expected a list of non-negative numbers'
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")
        self.source = source
        self.field = field


class InvalidThresholds(BudgetGateError):
    """Thresholds that contradict each other (warn above block) or an alpha outside (0, 1)."""
