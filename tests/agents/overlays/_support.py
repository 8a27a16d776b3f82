"""Shared helpers for the overlay tests: overlay builders and file writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from resontinex.agents.overlays import Keyword, Overlay, OverlaySet

# CONTRACT/issue 4 item 8: category → (primary, secondary)
ISSUE_CATEGORY_MAP: dict[str, tuple[str, ...]] = {
    "financial": ("rollback_first", "observability_first"),
    "security": ("rollback_first", "observability_first"),
    "service_management": ("rollback_first", "observability_first"),
    "system_integration": ("rollback_first", "state_model_first"),
    "data_operations": ("rollback_first", "state_model_first"),
    "compliance": ("observability_first", "state_model_first"),
    "infrastructure": ("observability_first", "rollback_first"),
    "customer_success": ("observability_first",),
}


def overlay(name: str, *, keywords: tuple[str | tuple[str, ...], ...] = (), complexity: tuple[str, ...] = (),
            primary: tuple[str, ...] = (), secondary: tuple[str, ...] = (), prompt: str | None = None) -> Overlay:
    """An overlay built in code; a keyword given as a tuple is one trigger with variants."""
    kws = tuple(Keyword.of(*k) if isinstance(k, tuple) else Keyword.of(k) for k in keywords)
    return Overlay(name, prompt or f"{name.upper()}: do this first.", keywords=kws,
                   complexity=complexity, primary=primary, secondary=secondary)  # type: ignore[arg-type]


def overlay_set(*overlays: Overlay) -> OverlaySet:
    return OverlaySet.of(overlays)


def document(name: str, **fields: Any) -> dict[str, Any]:
    """A valid overlay document with the given fields added or replaced."""
    doc: dict[str, Any] = {"name": name, "prompt": f"{name}: start here.\n", "keywords": ["alpha"],
                           "complexity": ["low"], "categories": {"primary": ["financial"]}}
    doc.update(fields)
    return doc


def write_yaml(directory: Path, filename: str, doc: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def write_bytes(directory: Path, filename: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_bytes(data)
    return path
