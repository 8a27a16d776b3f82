"""The AsyncAPI document: valid against the official AsyncAPI 3.0.0 JSON Schema (vendored in
data/, see data/README.md), one channel per registry topic, every payload the exported JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from resontinex.app.cli import main
from resontinex.schemas import EVENT_TYPES, export_json_schemas
from resontinex.schemas.asyncapi import PAYLOAD_FORMAT, asyncapi_document, write_asyncapi
from resontinex.topics import REGISTRY, wire_name

from .samples import NAMES, sample

OFFICIAL = Path(__file__).resolve().parent / "data" / "asyncapi-3.0.0.json"


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    """The official schema: a bundle whose definitions refer to each other by `$id`, so its
    resources are crawled into a registry (nothing is fetched)."""
    schema = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema, default_specification=DRAFT7)).crawl()
    return Draft7Validator(schema, registry=registry)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document("broker-1:9092,broker-2:9092", prefix="prod.", partitions=8)


def _errors(validator: Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(document)]


def _pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_document_is_valid_asyncapi_3_0_0(validator: Draft7Validator, document: dict[str, Any]) -> None:
    assert _errors(validator, document) == []
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"] == {
        "kafka-1": {"host": "broker-1:9092", "protocol": "kafka", "description": "Kafka bootstrap server"},
        "kafka-2": {"host": "broker-2:9092", "protocol": "kafka", "description": "Kafka bootstrap server"},
    }


def _parent(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    return _pointer(doc, "#/" + "/".join(path[:-1])) if len(path) > 1 else doc


def _drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        del _parent(doc, path)[path[-1]]
    return mutate


def _set(value: Any, *path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        _parent(doc, path)[path[-1]] = value
    return mutate


_PAYLOAD = ("channels", "decision_requests", "messages", "decision-request", "payload")
BROKEN = {
    "no info": _drop("info"),
    "no info version": _drop("info", "version"),
    "another AsyncAPI version": _set("2.6.0", "asyncapi"),
    "a server without its protocol": _drop("servers", "kafka-1", "protocol"),
    "an operation that publishes": _set("publish", "operations", "send_decisions", "action"),
    "an operation without its channel": _drop("operations", "receive_outcomes", "channel"),
    "an unknown field on a message": _set("x", *_PAYLOAD[:-1], "tenant"),
    "a payload that is no JSON Schema": _set({"type": 5}, *_PAYLOAD, "schema"),
    "a payload property that is no JSON Schema": _set(["required", 3], *_PAYLOAD, "schema", "required"),
    "a topic with no partitions": _set(0, "channels", "audit", "bindings", "kafka", "partitions"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_official_schema_refuses_a_broken_document(validator: Draft7Validator, document: dict[str, Any],
                                                       case: str) -> None:
    """The validation above proves something: each of these changes makes it fail."""
    broken = copy.deepcopy(document)
    BROKEN[case](broken)
    assert broken != document
    assert _errors(validator, broken), case


def test_every_registry_topic_is_one_channel_at_its_address(document: dict[str, Any]) -> None:
    channels = document["channels"]
    assert list(channels) == [spec.id for spec in REGISTRY]
    for spec in REGISTRY:
        channel = channels[spec.id]
        assert channel["address"] == wire_name(spec, "prod.") == "prod." + spec.name
        assert channel["bindings"]["kafka"]["partitions"] == 8
        assert channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == ["delete"]
    assert channels["audit"]["bindings"]["kafka"]["topicConfiguration"] == {
        "cleanup.policy": ["delete"], "retention.ms": -1, "retention.bytes": -1}


def test_every_payload_is_the_exported_json_schema_of_its_event(document: dict[str, Any], tmp_path: Path) -> None:
    exported = {path.name.removesuffix(".schema.json"): json.loads(path.read_text(encoding="utf-8"))
                for path in export_json_schemas(tmp_path)}
    for spec in REGISTRY:
        messages = document["channels"][spec.id]["messages"]
        assert spec.schema is not None and [EVENT_TYPES[name] for name in messages] == [spec.schema]
        for name, message in messages.items():
            assert message["payload"] == {"schemaFormat": PAYLOAD_FORMAT, "schema": exported[name]}
            assert message["contentType"] == "application/json" and message["title"] == spec.schema.__name__


def test_one_operation_per_topic_from_the_processors_side(document: dict[str, Any]) -> None:
    operations = document["operations"]
    assert len(operations) == len(REGISTRY)
    for spec in REGISTRY:
        action = {"in": "receive", "out": "send"}[spec.direction]
        operation = operations[f"{action}_{spec.id}"]
        assert operation["action"] == action
        channel = _pointer(document, operation["channel"]["$ref"])
        assert channel is document["channels"][spec.id]
        assert [_pointer(document, m["$ref"]) for m in operation["messages"]] == list(channel["messages"].values())


def test_the_message_key_is_described_per_topic(document: dict[str, Any]) -> None:
    def key(topic: str) -> dict[str, Any]:
        (message,) = document["channels"][topic]["messages"].values()
        key_schema: dict[str, Any] = message["bindings"]["kafka"]["key"]
        return key_schema

    assert key("decision_requests")["type"] == "string" and "tenant id" in key("decision_requests")["description"]
    assert "murmur2" in key("outcomes")["description"]
    assert "source" in key("telemetry")["description"]
    assert "_system" in key("alerts")["description"]
    assert key("dead_letters")["type"] == ["string", "null"]


def _keywords(schema: Any, found: set[str]) -> set[str]:
    """The keywords a schema uses (names under properties/$defs/patternProperties are not keywords)."""
    if isinstance(schema, dict):
        for keyword, value in schema.items():
            found.add(keyword)
            if keyword in ("properties", "$defs", "patternProperties"):
                for sub in value.values():
                    _keywords(sub, found)
            elif keyword != "enum" and keyword != "default":
                _keywords(value, found)
    elif isinstance(schema, list):
        for item in schema:
            _keywords(item, found)
    return found


def test_the_payloads_mean_the_same_under_draft_07(document: dict[str, Any]) -> None:
    """The draft-07 `schemaFormat` is honest: every keyword is one draft-07 knows (`$defs` is only
    a place `$ref` points into), and the samples validate, and a broken one fails, under both drafts."""
    draft7 = set(Draft7Validator.META_SCHEMA["properties"]) | {"$defs"}
    for spec in REGISTRY:
        (message,) = document["channels"][spec.id]["messages"].values()
        schema = message["payload"]["schema"]
        assert _keywords(schema, set()) <= draft7, spec.id
    for name in NAMES:
        schema = json.loads(json.dumps(document["channels"][_topic_of(name)]["messages"][name]["payload"]["schema"]))
        schema.pop("$schema")  # so that the draft-07 validator does not defer to 2020-12
        good, bad = sample(name), {**sample(name), "event_id": ""}
        assert Draft7Validator(schema).is_valid(good) and Draft202012Validator(schema).is_valid(good), name
        assert not Draft7Validator(schema).is_valid(bad) and not Draft202012Validator(schema).is_valid(bad), name


def _topic_of(event: str) -> str:
    (spec,) = [spec for spec in REGISTRY if spec.schema is EVENT_TYPES[event]]
    return spec.id


def test_yaml_and_json_files_hold_the_same_document(document: dict[str, Any], tmp_path: Path) -> None:
    as_json = write_asyncapi(tmp_path / "api.json", document)
    as_yaml = write_asyncapi(tmp_path / "nested" / "api.yml", document)
    assert json.loads(as_json.read_text(encoding="utf-8")) == document
    text = as_yaml.read_text(encoding="utf-8")
    assert not text.lstrip().startswith("{") and "&id" not in text  # block style, no anchors
    assert yaml.safe_load(text) == document


def test_the_cli_writes_a_valid_document(validator: Draft7Validator, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RESONTINEX_TOPIC_PREFIX", "stage.")
    target = tmp_path / "out" / "asyncapi.yaml"
    assert main(["schemas", "export", "--asyncapi", str(target), "--bootstrap", "kafka.internal:9093"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(target)]
    written = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert _errors(validator, written) == []
    assert written["servers"]["kafka"]["host"] == "kafka.internal:9093"
    assert written["channels"]["dead_letters"]["address"] == "stage.dead-letters"


def test_the_cli_writes_schemas_and_document_together(validator: Draft7Validator, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "asyncapi.json"
    assert main(["schemas", "export", str(tmp_path / "json"), "--asyncapi", str(target)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(EVENT_TYPES) + 1 and printed[-1] == str(target)
    assert _errors(validator, json.loads(target.read_text(encoding="utf-8"))) == []


def test_the_cli_needs_a_directory_or_a_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "export"]) == 2
    assert "--asyncapi" in capsys.readouterr().err


def test_the_cli_refuses_a_document_path_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert main(["schemas", "export", "--asyncapi", str(tmp_path / "file" / "api.json")]) == 2
    assert "schemas export" in capsys.readouterr().err
