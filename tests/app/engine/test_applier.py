"""The applier carries out a plan's effects in its one documented order, on the partitions it names."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from faust import streams

from resontinex.agents.audit import verify
from resontinex.agents.effects import AuditItem, Count, Effects, Observation, Output, TableWrite, audit_item
from resontinex.app import metrics
from resontinex.app.engine.applier import Applier
from resontinex.app.engine.partition_state import recover
from resontinex.app.runtime import Runtime
from resontinex.app.settings import Settings


class Journal(list[tuple[Any, ...]]):
    """Every call the applier makes, in order."""


class Sink:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes, **_: Any) -> None:
        self.journal.append(("send", topic, partition, value))

    async def flush(self) -> None:
        self.journal.append(("flush",))


class Table(dict[str, Any]):
    """A table that notes each write with the partition of the event it was made under."""

    def __init__(self, name: str, journal: Journal) -> None:
        super().__init__()
        self.name, self.journal = name, journal

    def __setitem__(self, key: str, value: Any) -> None:
        event = streams.current_event()
        self.journal.append(("write", self.name, key, event.message.partition, event.message.timestamp))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.journal.append(("delete", self.name, key, streams.current_event().message.partition))
        super().__delitem__(key)


class States:
    def __init__(self) -> None:
        self.states = {p: recover([], 100) for p in range(4)}

    async def get(self, partition: int) -> Any:
        return self.states[partition]


@pytest.fixture
def setup() -> tuple[Applier, Journal, dict[str, Table], Runtime]:
    journal = Journal()
    rt = Runtime.load(Settings.from_env({"RESONTINEX_TOPIC_PREFIX": "t."}), client_id="test")
    rt.sink, rt.states = Sink(journal), States()  # type: ignore[assignment]
    tables = {name: Table(name, journal) for name in ("early", "late")}

    async def flush_changelog() -> None:
        journal.append(("changelog",))

    return Applier(rt, "gate", "t.decision-requests", tables, flush_changelog), journal, tables, rt


EFFECTS = Effects(
    early_writes=(TableWrite("early", "k1", {"v": 1}, 2),),
    outputs=(Output("decisions", 2, b"acme", b'{"d":1}'), Output("alerts", 3, b"globex", b'{"a":1}')),
    audit=(AuditItem(2, audit_item("au-1", "decision", "acme", "2026-01-01T00:00:00.000Z", "v1", {"x": 1})),
           AuditItem(3, audit_item("au-2", "alert", "globex", "2026-01-01T00:00:00.000Z", "v1", {"y": 2}))),
    late_writes=(TableWrite("late", "k2", {"w": 2}, 3, at=120.0), TableWrite("late", "absent", None, 1, delete=True)),
    counts=(Count("DECISIONS", ("execute",), 2), Count("FLOOR_VIOLATIONS", (), 1)),
    observations=(Observation("SCORES", (0.5, 0.9)),),
)


def test_effects_are_applied_in_the_documented_order(setup) -> None:
    applier, journal, tables, rt = setup
    asyncio.run(applier.apply(EFFECTS))
    steps = [entry[0] if entry[0] != "send" else f"send {entry[1]}" for entry in journal]
    assert steps == ["write", "changelog", "send t.decisions", "send t.alerts", "flush",
                     *["send t.audit"] * steps.count("send t.audit"), "flush", "write"]
    assert ("write", "early", "k1", 2, 0.0) in journal and ("write", "late", "k2", 3, 120.0) in journal
    assert "absent" not in tables["late"]  # deleting an absent key is a no-op


def test_audit_items_are_sealed_onto_their_partitions_chain(setup) -> None:
    applier, journal, _, rt = setup
    asyncio.run(applier.apply(EFFECTS))
    chains: dict[int, list[dict[str, Any]]] = {}
    for entry in journal:
        if entry[0] == "send" and entry[1] == "t.audit":
            chains.setdefault(entry[2], []).append(orjson.loads(entry[3]))
    assert sorted(chains) == [2, 3]
    for partition, records in chains.items():
        assert records[0]["kind"] == "config"  # a configuration new to the chain is recorded first
        assert verify(records).ok
        assert rt.states.states[partition].head.seq_next == len(records)  # type: ignore[attr-defined]


def test_messages_ahead_are_acknowledged_with_the_changelog_before_any_output_is_sent(setup) -> None:
    applier, journal, _, _ = setup
    ahead = (Output("unaudited_decisions", 2, b"acme", b'{"decision":{}}'),)
    asyncio.run(applier.apply(EFFECTS + Effects(ahead=ahead)))
    steps = [entry[0] if entry[0] != "send" else f"send {entry[1]}" for entry in journal]
    assert steps[:6] == ["write", "send t.unaudited-decisions", "changelog", "flush", "send t.decisions",
                         "send t.alerts"]
    journal.clear()
    asyncio.run(applier.apply(Effects(ahead=ahead, outputs=EFFECTS.outputs)))  # no table write: no changelog wait
    assert [e[0] for e in journal] == ["send", "flush", "send", "send", "flush"]


def test_a_plan_without_table_writes_does_not_wait_for_the_changelog(setup) -> None:
    applier, journal, _, _ = setup
    asyncio.run(applier.apply(Effects(outputs=(Output("decisions", 0, b"a", b"{}"),))))
    assert [e[0] for e in journal] == ["send", "flush"]


def test_counts_reach_the_metrics_they_name(setup) -> None:
    applier, *_ = setup
    def executes() -> float:
        return metrics.REGISTRY.get_sample_value("trust_gate_decisions_total", {"verb": "execute"}) or 0.0

    before = executes()
    asyncio.run(applier.apply(EFFECTS))
    assert executes() == before + 2
