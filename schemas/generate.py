"""Regenerate the shipped JSON Schemas from the models: ``python -m resontinex.schemas.generate``.

Run it after changing a model in `schemas/` and commit the files it rewrites; a test
fails while a shipped file differs from what its model generates.
"""

from __future__ import annotations

from pathlib import Path

from ._registry import EVENT_TYPES, schema_file_name, schema_text

__all__ = ["generate"]

SOURCE_DIR = Path(__file__).resolve().parent / "json"
"""The shipped schemas in the source tree (what `SHIPPED_DIR` reads once installed)."""


def generate(directory: Path = SOURCE_DIR) -> list[Path]:
    """Write every event type's schema into `directory`, remove schema files of no event
    type, and return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = {schema_file_name(name) for name in EVENT_TYPES}
    for stale in directory.glob("*.schema.json"):
        if stale.name not in expected:
            stale.unlink()
    written = []
    for name in EVENT_TYPES:
        path = directory / schema_file_name(name)
        path.write_text(schema_text(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in generate():
        print(written_path)
