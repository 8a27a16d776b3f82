"""The topic registry against CONTRACT §2."""

from __future__ import annotations

import dataclasses

import pytest

from resontinex import topics
from resontinex.schemas import EVENT_TYPES, InputEvent, OutputEvent
from resontinex.topics import REGISTRY, TopicSpec, all_wire_names, get, wire_name, with_partitions

# CONTRACT §2, row by row: name, direction, key, event type.
CONTRACT = [
    ("decision-requests", "in", "tenant", "decision-request"),
    ("outcomes", "in", "tenant", "outcome"),
    ("costs", "in", "tenant", "cost"),
    ("telemetry", "in", "source", "telemetry"),
    ("trajectory-requests", "in", "tenant", "trajectory-request"),
    ("coordination-requests", "in", "tenant", "coordination-request"),
    ("enhancements", "in", "enhancement", "enhancement"),
    ("control", "in", "tenant", "control"),
    ("decisions", "out", "tenant", "decision"),
    ("alerts", "out", "tenant_or_system", "alert"),
    ("trajectory-results", "out", "tenant", "trajectory-result"),
    ("coordination-results", "out", "tenant", "coordination-result"),
    ("enhancement-events", "out", "enhancement", "enhancement-event"),
    ("audit", "out", "tenant", "audit-record"),
    ("dead-letters", "out", "original", "dead-letter"),
]


def test_the_topics_of_the_contract_plus_control() -> None:
    assert [(s.name, s.direction, s.key, s.schema) for s in REGISTRY] == [
        (name, direction, key, EVENT_TYPES[event]) for name, direction, key, event in CONTRACT
    ]


def test_ids_and_names_are_unique_and_ids_are_names_with_underscores() -> None:
    assert len({s.id for s in REGISTRY}) == len({s.name for s in REGISTRY}) == 15
    assert all(s.id == s.name.replace("-", "_") for s in REGISTRY)


def test_directions_match_the_event_models() -> None:
    for spec in REGISTRY:
        assert issubclass(spec.schema, InputEvent if spec.direction == "in" else OutputEvent)


def test_audit_keeps_everything_and_is_never_compacted() -> None:
    audit = get("audit")
    assert (audit.retention_ms, audit.cleanup_policy) == (-1, "delete")
    assert audit.config() == {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


def test_other_topics_use_broker_default_retention_and_nothing_is_compacted() -> None:
    for spec in REGISTRY:
        config = spec.config()
        assert config["cleanup.policy"] == "delete"
        assert all(isinstance(value, str) for value in config.values())
        if spec.id != "audit":
            assert config == {"cleanup.policy": "delete"}


def test_partitions_default_to_four_and_change_together() -> None:
    assert topics.DEFAULT_PARTITIONS == 4 and {s.partitions for s in REGISTRY} == {4}
    resized = with_partitions(12)
    assert {s.partitions for s in resized} == {12}
    assert [dataclasses.replace(s, partitions=4) for s in resized] == list(REGISTRY)
    assert {s.partitions for s in REGISTRY} == {4}
    with pytest.raises(ValueError, match="at least 1"):
        with_partitions(0)


def test_specs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get("audit").retention_ms = 1  # type: ignore[misc]


def test_get_by_id_or_default_name() -> None:
    assert get("decision_requests") is get("decision-requests") is REGISTRY[0]
    with pytest.raises(KeyError, match="unknown topic 'nope'"):
        get("nope")


def test_wire_names_apply_the_prefix_verbatim() -> None:
    assert wire_name("decision_requests") == "decision-requests"
    assert wire_name(get("dead_letters"), "staging.") == "staging.dead-letters"
    assert wire_name("audit", prefix="acme_") == "acme_audit"
    assert all_wire_names() == tuple(name for name, *_ in CONTRACT)
    prefixed = all_wire_names("t-")
    assert len(set(prefixed)) == 15 and all(name.startswith("t-") for name in prefixed)


@pytest.mark.parametrize("prefix", ["bad prefix.", "ü.", "a/b", "x" * 241])
def test_illegal_topic_names_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="illegal Kafka topic name"):
        wire_name("decisions", prefix)


def test_public_surface() -> None:
    assert set(topics.__all__) == {
        "DEFAULT_PARTITIONS", "INTERNAL", "REGISTRY", "Direction", "KeyKind", "TopicSpec",
        "all_wire_names", "get", "partition_of", "partition_of_key", "wire_name", "with_partitions",
    }
    assert isinstance(REGISTRY[0], TopicSpec)


def test_docstring_examples() -> None:
    import doctest

    import resontinex.topics._registry

    for module in (topics, topics._registry):
        assert doctest.testmod(module).failed == 0
