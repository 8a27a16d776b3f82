"""The AsyncAPI 3.0.0 document of every topic of CONTRACT §2: ``resontinex schemas export --asyncapi FILE``.

Built from the topic registry (`resontinex.topics.REGISTRY`) and the JSON Schemas that
`export_json_schemas` writes: one channel per topic (address: its name on the broker),
holding the topic's event with its schema as payload and its record key described in the
Kafka message binding; one operation per topic, from the processor's side (`receive` for
an input topic, `send` for an output topic); one Kafka server per bootstrap address.

    >>> doc = asyncapi_document("k1:9092,k2:9092", prefix="prod.", version="1.2.3")
    >>> doc["asyncapi"], doc["info"]["version"], sorted(doc["servers"])
    ('3.0.0', '1.2.3', ['kafka-1', 'kafka-2'])
    >>> channel = doc["channels"]["decision_requests"]
    >>> channel["address"], list(channel["messages"])
    ('prod.decision-requests', ['decision-request'])
    >>> doc["operations"]["receive_decision_requests"]["action"], doc["operations"]["send_decisions"]["action"]
    ('receive', 'send')

A payload is the exported schema verbatim, in a Multi Format Schema Object whose format is
JSON Schema draft-07: the schemas declare draft 2020-12 but use only keywords that draft-07
reads the same way (their ``$defs`` are reached by JSON pointer), so a draft-07 tool
validates with them unchanged. This module is not re-exported by `resontinex.schemas`: it
reads `resontinex.topics`, which imports `resontinex.schemas`.
"""

from __future__ import annotations

import copy
import json
import os
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Final

import yaml

from resontinex.topics import DEFAULT_PARTITIONS, REGISTRY, KeyKind, TopicSpec, wire_name

from ._base import SYSTEM_TENANT
from ._registry import EVENT_TYPES, SHIPPED_DIR, schema_file_name

__all__ = ["ASYNCAPI_VERSION", "DEFAULT_BOOTSTRAP", "PAYLOAD_FORMAT", "asyncapi_document", "write_asyncapi"]

ASYNCAPI_VERSION: Final = "3.0.0"
DEFAULT_BOOTSTRAP: Final = "localhost:9092"
PAYLOAD_FORMAT: Final = "application/schema+json;version=draft-07"
"""The payloads' `schemaFormat`: one AsyncAPI 3.0 tooling must support (see the module's docstring)."""

_KAFKA_BINDING: Final = "0.5.0"
_PARTITIONED: Final = "; Kafka's default partitioner (murmur2 of the key) gives the partition (CONTRACT §1)"
_KEYS: Final[dict[KeyKind, dict[str, Any]]] = {
    "tenant": {"type": "string", "description": "the tenant id" + _PARTITIONED + ": one tenant, one partition"},
    "source": {"type": "string", "description": "the telemetry source" + _PARTITIONED},
    "enhancement": {"type": "string", "description": "the enhancement id" + _PARTITIONED},
    "tenant_or_system": {"type": "string",
                         "description": f"the tenant id, or `{SYSTEM_TENANT}` for what concerns no tenant" + _PARTITIONED},
    "original": {"type": ["string", "null"], "description": "the refused record's key (UTF-8, undecodable bytes "
                 "replaced), null when it had none; on the refused record's partition"},
}
"""The record key of each kind of registry topic, as a schema (the Kafka message binding's `key`)."""
_EVENT_NAMES: Final = {model: name for name, model in EVENT_TYPES.items()}


def asyncapi_document(bootstrap: str = DEFAULT_BOOTSTRAP, *, prefix: str = "", partitions: int = DEFAULT_PARTITIONS,
                      version: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every registry topic on the Kafka at `bootstrap`
    (comma-separated HOST:PORT), topic names prefixed with `prefix`, each with `partitions`
    partitions; `version` (default: the installed package's) is the document's info version."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in REGISTRY:
        if spec.schema is None:
            continue  # not an event topic of the contract
        event = _EVENT_NAMES[spec.schema]
        channels[spec.id] = _channel(spec, event, prefix, partitions)
        action = "receive" if spec.direction == "in" else "send"
        operations[f"{action}_{spec.id}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{spec.id}"},
            "summary": f"resontinex {'consumes' if action == 'receive' else 'produces'} `{spec.name}`",
            "messages": [{"$ref": f"#/channels/{spec.id}/messages/{event}"}],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "resontinex",
            "version": version or package_version("resontinex"),
            "description": "Governance stream processor for AI workloads, on Kafka: the topics of its wire "
                           "contract, each with its event's JSON Schema. Every value is one UTF-8 JSON object.",
        },
        "defaultContentType": "application/json",
        "servers": _servers(bootstrap),
        "channels": channels,
        "operations": operations,
    }


def write_asyncapi(path: str | os.PathLike[str], document: dict[str, Any]) -> Path:
    """Write `document` to `path` (its folder created if missing): YAML when the name ends in
    ``.yaml`` or ``.yml``, else JSON. Returns the path written.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write_asyncapi(Path(tmp) / "api.yaml", {"asyncapi": "3.0.0"})
    ...     written.name, written.read_text()
    ('api.yaml', 'asyncapi: 3.0.0\\n')
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in (".yaml", ".yml"):
        text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    target.write_text(text, encoding="utf-8")
    return target


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper without anchors: an object met twice is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _servers(bootstrap: str) -> dict[str, Any]:
    hosts = [host.strip() for host in bootstrap.split(",") if host.strip()] or [DEFAULT_BOOTSTRAP]
    names = ["kafka"] if len(hosts) == 1 else [f"kafka-{i}" for i in range(1, len(hosts) + 1)]
    return {name: {"host": host, "protocol": "kafka", "description": "Kafka bootstrap server"}
            for name, host in zip(names, hosts)}


def _channel(spec: TopicSpec, event: str, prefix: str, partitions: int) -> dict[str, Any]:
    configuration: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if spec.retention_ms is not None:
        configuration["retention.ms"] = spec.retention_ms
    if spec.retention_bytes is not None:
        configuration["retention.bytes"] = spec.retention_bytes
    return {
        "address": wire_name(spec, prefix),
        "title": spec.name,
        "description": f"{'Input' if spec.direction == 'in' else 'Output'} topic of `{event}` events.",
        "messages": {event: _message(spec, event)},
        "bindings": {"kafka": {"partitions": partitions, "topicConfiguration": configuration,
                               "bindingVersion": _KAFKA_BINDING}},
    }


def _message(spec: TopicSpec, event: str) -> dict[str, Any]:
    model = EVENT_TYPES[event]
    return {
        "name": event,
        "title": model.__name__,
        "summary": " ".join((model.__doc__ or event).strip().split("\n\n")[0].split()),
        "contentType": "application/json",
        "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": _exported_schema(event)},
        "bindings": {"kafka": {"key": copy.deepcopy(_KEYS[spec.key]), "bindingVersion": _KAFKA_BINDING}},
    }


def _exported_schema(event: str) -> dict[str, Any]:
    """The JSON Schema `export_json_schemas` writes for `event` (the shipped file)."""
    schema: dict[str, Any] = json.loads((SHIPPED_DIR / schema_file_name(event)).read_text(encoding="utf-8"))
    return schema
