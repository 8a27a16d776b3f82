"""JSON Schemas: one valid draft 2020-12 schema per event type, matching decode, shipped up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from resontinex.schemas import EVENT_TYPES, export_json_schemas, json_schema
from resontinex.schemas._registry import SHIPPED_DIR, schema_file_name, schema_text
from resontinex.schemas.generate import generate

from .samples import NAMES, sample


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("out") / "nested" / "schemas"
    return {path.name.removesuffix(".schema.json"): path for path in export_json_schemas(directory)}


def _validator(path: Path) -> Draft202012Validator:
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def test_one_file_per_event_type_in_a_created_directory(exported: dict[str, Path]) -> None:
    assert list(exported) == list(EVENT_TYPES)
    assert all(path.is_file() for path in exported.values())
    assert {path.parent for path in exported.values()} == {next(iter(exported.values())).parent}


@pytest.mark.parametrize("name", NAMES)
def test_every_file_is_a_valid_2020_12_schema_with_id_and_title(exported: dict[str, Path], name: str) -> None:
    schema = json.loads(exported[name].read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:resontinex:schema:{name}"
    assert schema["title"] == EVENT_TYPES[name].__name__
    assert schema == json_schema(name)


@pytest.mark.parametrize("name", NAMES)
def test_the_sample_event_validates(exported: dict[str, Path], name: str) -> None:
    _validator(exported[name]).validate(sample(name))


@pytest.mark.parametrize(
    ("name", "field", "bad"),
    [
        ("decision-request", "event_id", ""),
        ("decision-request", "tenant", 5),
        ("decision-request", "ts", "yesterday"),
        ("outcome", "actual_reputation", 101),
        ("decision", "verb", "maybe"),
        ("alert", "severity", "fatal"),
        ("audit-record", "prev_hash", "xyz"),
        ("cost", "input_tokens", -1),
    ],
)
def test_bad_events_fail_their_schema(exported: dict[str, Path], name: str, field: str, bad: object) -> None:
    event = sample(name)
    event[field] = bad
    assert not _validator(exported[name]).is_valid(event)


def test_request_schema_carries_the_risk_or_text_rule(exported: dict[str, Path]) -> None:
    validator = _validator(exported["decision-request"])
    event = sample("decision-request")
    del event["signals"]["epistemic_risk"]
    assert validator.is_valid(event)
    del event["text"]
    assert not validator.is_valid(event)
    event["signals"]["alignment_score"] = 1.5
    event["signals"]["epistemic_risk"] = 0.2
    assert not validator.is_valid(event)


def test_outputs_forbid_and_inputs_allow_extra_fields(exported: dict[str, Path]) -> None:
    assert _validator(exported["decision-request"]).is_valid({**sample("decision-request"), "extra": 1})
    assert not _validator(exported["decision"]).is_valid({**sample("decision"), "extra": 1})


def test_export_overwrites_existing_files(tmp_path: Path) -> None:
    (tmp_path / "decision.schema.json").write_text("stale")
    export_json_schemas(str(tmp_path))
    assert json.loads((tmp_path / "decision.schema.json").read_text())["title"] == "Decision"


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_schema_is_what_the_model_generates(name: str) -> None:
    shipped = (SHIPPED_DIR / schema_file_name(name)).read_text(encoding="utf-8")
    assert shipped == schema_text(name), (
        f"schemas/json/{schema_file_name(name)} differs from its model: "
        "run `python -m resontinex.schemas.generate` and commit the files it rewrites"
    )


def test_one_shipped_file_per_event_type_and_nothing_else() -> None:
    assert sorted(path.name for path in SHIPPED_DIR.iterdir()) == sorted(map(schema_file_name, EVENT_TYPES))


def test_export_copies_the_shipped_files(exported: dict[str, Path]) -> None:
    for name, path in exported.items():
        assert path.read_bytes() == (SHIPPED_DIR / schema_file_name(name)).read_bytes()


def test_generate_writes_every_schema_and_removes_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "retired-event.schema.json").write_text("{}")
    written = generate(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in written)
    assert all(path.read_text(encoding="utf-8") == schema_text(path.name.removesuffix(".schema.json"))
               for path in written)
