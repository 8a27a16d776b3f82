"""The event types by name, and their JSON Schemas.

The schemas ship with the package as `schemas/json/<name>.schema.json` (`SHIPPED_DIR`),
generated from the models by ``python -m resontinex.schemas.generate``; `export_json_schemas` copies
those files, so what a user exports is what was released.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel

from ._inputs import Control, CoordinationRequest, Cost, DecisionRequest, Outcome, Telemetry, TrajectoryRequest
from ._enhancements import EnhancementEvent, EnhancementSubmission
from ._outputs import Alert, AuditRecord, CoordinationResult, DeadLetter, Decision, TrajectoryResult

__all__ = ["EVENT_TYPES", "SHIPPED_DIR", "export_json_schemas", "json_schema", "schema_file_name", "schema_text"]

EVENT_TYPES: Final[Mapping[str, type[BaseModel]]] = MappingProxyType(
    {
        "decision-request": DecisionRequest,
        "outcome": Outcome,
        "cost": Cost,
        "telemetry": Telemetry,
        "trajectory-request": TrajectoryRequest,
        "coordination-request": CoordinationRequest,
        "enhancement": EnhancementSubmission,
        "control": Control,
        "decision": Decision,
        "alert": Alert,
        "trajectory-result": TrajectoryResult,
        "coordination-result": CoordinationResult,
        "enhancement-event": EnhancementEvent,
        "audit-record": AuditRecord,
        "dead-letter": DeadLetter,
    }
)
"""Every event model by its name; the name is also its schema's file stem."""

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

SHIPPED_DIR: Final[Traversable] = resources.files(__package__) / "json"
"""The package data directory holding one `schema_file_name(name)` per event type."""


def json_schema(name: str) -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one event type, as `decode` accepts it.

    >>> json_schema("decision-request")["$id"]
    'urn:resontinex:schema:decision-request'
    """
    schema = EVENT_TYPES[name].model_json_schema(mode="validation")
    return {"$schema": _DIALECT, "$id": f"urn:resontinex:schema:{name}", **schema}


def schema_text(name: str) -> str:
    """`json_schema(name)` as the text of its shipped file (2-space indent, final newline)."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"


def schema_file_name(name: str) -> str:
    """The file name of an event type's schema.

    >>> schema_file_name("decision")
    'decision.schema.json'
    """
    return f"{name}.schema.json"


def export_json_schemas(directory: str | os.PathLike[str]) -> list[Path]:
    """Copy the shipped `<name>.schema.json` of every event type into `directory`
    (created if missing) and return the paths written.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [path.name for path in export_json_schemas(tmp)][:2]
    ['decision-request.schema.json', 'outcome.schema.json']
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in EVENT_TYPES:
        path = target / schema_file_name(name)
        path.write_bytes((SHIPPED_DIR / schema_file_name(name)).read_bytes())
        written.append(path)
    return written
