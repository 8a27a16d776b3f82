"""The event types by name, and their JSON Schemas."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel

from ._inputs import Control, Cost, DecisionRequest, Outcome, Telemetry, TrajectoryRequest
from ._outputs import Alert, AuditRecord, DeadLetter, Decision, TrajectoryResult

__all__ = ["EVENT_TYPES", "export_json_schemas", "json_schema"]

EVENT_TYPES: Final[Mapping[str, type[BaseModel]]] = MappingProxyType(
    {
        "decision-request": DecisionRequest,
        "outcome": Outcome,
        "cost": Cost,
        "telemetry": Telemetry,
        "trajectory-request": TrajectoryRequest,
        "control": Control,
        "decision": Decision,
        "alert": Alert,
        "trajectory-result": TrajectoryResult,
        "audit-record": AuditRecord,
        "dead-letter": DeadLetter,
    }
)
"""Every event model by its name; the name is also its schema's file stem."""

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def json_schema(name: str) -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one event type, as `decode` accepts it.

    >>> json_schema("decision-request")["$id"]
    'urn:resontinex:schema:decision-request'
    """
    schema = EVENT_TYPES[name].model_json_schema(mode="validation")
    return {"$schema": _DIALECT, "$id": f"urn:resontinex:schema:{name}", **schema}


def export_json_schemas(directory: str | os.PathLike[str]) -> list[Path]:
    """Write `<name>.schema.json` for every event type into `directory`
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
        path = target / f"{name}.schema.json"
        path.write_text(json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
