"""Composing a prompt with an overlay.

The overlay comes first, because it tells the model how to approach what follows: the
overlay's text (surrounding whitespace removed), one blank line, then the base prompt
unchanged. A base prompt that is empty or only whitespace gives the overlay text alone.

>>> from resontinex.agents.overlays import Overlay, OverlaySet
>>> ov = OverlaySet.of([Overlay("rollback_first", "  Plan the rollback first.\\n")])
>>> apply_overlay("Migrate the ledger table.", "rollback_first", ov)
'Plan the rollback first.\\n\\nMigrate the ledger table.'
>>> apply_overlay("   ", "rollback_first", ov)
'Plan the rollback first.'
>>> apply_overlay("x", "speed_first", ov)
Traceback (most recent call last):
...
resontinex.agents.overlays.exceptions.UnknownOverlayError: unknown overlay 'speed_first' (known: rollback_first)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._model import Overlay
from .exceptions import UnknownOverlayError

__all__ = ["SEPARATOR", "apply_overlay"]

SEPARATOR: Final = "\n\n"
"""Between the overlay's text and the base prompt: one blank line."""


def apply_overlay(prompt: str, name: str, overlays: Mapping[str, Overlay]) -> str:
    """The base ``prompt`` with overlay ``name`` of ``overlays`` put before it (see above).

    Raises `UnknownOverlayError` (a `KeyError`) when no overlay of that name is loaded,
    `TypeError` when ``prompt`` or ``name`` is not a string.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"overlay name must be a string, got {type(name).__name__}")
    try:
        overlay = overlays[name]
    except KeyError:
        raise UnknownOverlayError(name, overlays) from None
    text = overlay.prompt.strip()
    return text + SEPARATOR + prompt if prompt.strip() else text
