"""Prompt micro-overlays: load them, pick one for a scenario, put it before a prompt.

A pure package (no Kafka, no asyncio): the gate agent calls `select_overlay` for a
decision request's `scenario` and writes the choice's `OverlayChoice.as_dict` as the
decision's ``overlay`` (CONTRACT §3.2), or null when there is no choice.

* `load_overlays` reads ``config/overlays/*.yaml`` and the user's
  ``<config-dir>/overlays/`` (`overlay_dirs`); a bad file is skipped and returned as a
  `Rejection` for the caller to alert on and audit.
* `select_overlay` / `rank_overlays` score scenarios (issue 4 item 8; the rules are in
  `agents.overlays._scoring`).
* `apply_overlay` composes a prompt.

>>> overlays, rejections = load_overlays(overlay_dirs())
>>> choice = select_overlay({"category": "compliance_management", "complexity": 0.2,
...                          "description": "Audit trail for the quarterly SOX review"}, overlays)
>>> choice.name, choice.confidence, choice.fallbacks
('observability_first', 0.8, ('state_model_first',))
>>> apply_overlay("Summarise the findings.", choice.name, overlays).endswith("\\n\\nSummarise the findings.")
True
"""

from ._compose import SEPARATOR, apply_overlay
from ._loader import (
    FIELDS,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    PACKAGED_OVERLAYS_DIR,
    REASON_CODES,
    REQUIRED_FIELDS,
    SUFFIXES,
    LoadResult,
    Rejection,
    load_overlays,
    overlay_dirs,
    overlay_from_mapping,
    parse_overlay,
)
from ._model import (
    LEVELS,
    NAME_PATTERN,
    Keyword,
    KeywordIndex,
    Level,
    Overlay,
    OverlaySet,
    category_key,
    normalise_keyword,
    words,
)
from ._scoring import (
    CATEGORY_ALIASES,
    HIGH_ABOVE,
    LOW_AT_MOST,
    WEIGHTS,
    OverlayChoice,
    OverlayScore,
    Scenario,
    Weights,
    complexity_level,
    keyword_hits,
    normalise_category,
    rank_overlays,
    select_overlay,
)
from .exceptions import InvalidOverlayError, OverlayError, ScenarioError, UnknownOverlayError

__all__ = [
    "CATEGORY_ALIASES", "FIELDS", "HIGH_ABOVE", "LEVELS", "LOW_AT_MOST", "MAX_DEPTH", "MAX_FILE_BYTES", "NAME_PATTERN",
    "PACKAGED_OVERLAYS_DIR", "REASON_CODES", "REQUIRED_FIELDS", "SEPARATOR", "SUFFIXES", "WEIGHTS",
    "InvalidOverlayError", "Keyword", "KeywordIndex", "Level", "LoadResult", "Overlay", "OverlayChoice", "OverlayError",
    "OverlayScore", "OverlaySet", "Rejection", "Scenario", "ScenarioError", "UnknownOverlayError", "Weights",
    "apply_overlay", "category_key", "complexity_level", "keyword_hits", "load_overlays", "normalise_category",
    "normalise_keyword", "overlay_dirs", "overlay_from_mapping", "parse_overlay", "rank_overlays",
    "select_overlay", "words",
]
