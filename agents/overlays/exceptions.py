"""Errors raised by the overlay package.

Loading never raises because of one bad overlay file: such a file becomes a
`agents.overlays.Rejection`. These exceptions are for programmer errors (a bad
argument) and for lookups of an overlay that does not exist.

>>> str(UnknownOverlayError("nope", ("observability_first", "rollback_first")))
"unknown overlay 'nope' (known: observability_first, rollback_first)"
>>> isinstance(UnknownOverlayError("x", ()), KeyError), isinstance(ScenarioError("complexity", "bad"), ValueError)
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["InvalidOverlayError", "OverlayError", "ScenarioError", "UnknownOverlayError"]


class OverlayError(Exception):
    """Base class of every error the overlay package raises."""


class UnknownOverlayError(OverlayError, KeyError):
    """No overlay of that name is loaded; ``known`` lists the loaded names, sorted.

    A `KeyError`, so `agents.overlays.OverlaySet` behaves as a read-only mapping
    (``in``, ``.get``), with a readable message rather than `KeyError`'s quoted one.
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        listed = ", ".join(self.known) if self.known else "none loaded"
        super().__init__(f"unknown overlay {name!r} (known: {listed})")

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidOverlayError(OverlayError, ValueError):
    """An overlay definition is invalid.

    ``reason_code`` is one of `agents.overlays.REASON_CODES` (``missing_field``,
    ``unknown_field``, ``invalid_field``, ``not_a_mapping``); ``field`` names the offending
    field (dotted, with list indexes), or is empty when the problem is the whole document.
    """

    def __init__(self, reason_code: str, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.reason_code = reason_code
        self.field = field
        self.problem = problem


class ScenarioError(OverlayError, ValueError):
    """A scenario field has the wrong type or range; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"scenario.{field}: {problem}")
        self.field = field
