"""`append_audit` with candidate configurations (trust policies under canary): a `config`
record before the first item of each policy version new to the chain, once per chain; and
the partition state's memory of a decision's canary part, kept and replayed with its verb.

`append_audit` reads only a few attributes of its `Runtime`: `FakeRuntime` has them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from resontinex.agents.audit import verify
from resontinex.agents.effects import audit_item
from resontinex.agents.gate import GateBatch, PolicyCanary, arm_of, plan_batch
from resontinex.agents.enhancement import candidate_trust
from resontinex.app.engine.audit_writer import append_audit
from resontinex.app.engine.partition_state import PartitionState, recover
from resontinex.app.runtime import Runtime
from resontinex.app.settings import Settings
from resontinex.schemas import SYSTEM_TENANT

from tests.agents.gate.test_plan import CFG, MONITOR, MONO, NOW, body, rec
from tests.agents.gate.views import DictView

PV = CFG.policy_version  # the runtime's version, the one the gate tests decide under
CAND = "pv-cand"
TS = "2026-01-01T10:00:00.000Z"
RUNTIME_CONF: dict[str, Any] = {"trust": {"trust_floor": 0.6}, "energy": {}}
CANDIDATE_CONF: dict[str, Any] = {"trust": {"trust_floor": 0.7}, "energy": {}}


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes | None, dict[str, Any]]] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes, **_: Any) -> None:
        self.sent.append((topic, partition, key, orjson.loads(value)))


class States:
    def __init__(self, states: dict[int, PartitionState] | None = None) -> None:
        self.states = states if states is not None else {p: recover([], 100) for p in range(4)}

    async def get(self, partition: int) -> PartitionState:
        return self.states[partition]

    def owned(self) -> list[int]:
        return sorted(self.states)


@dataclass
class FakeRuntime:
    """What `append_audit` reads of a `Runtime`."""

    settings: Settings = field(default_factory=lambda: Settings.from_env({"RESONTINEX_TOPIC_PREFIX": "t."}))
    policy_version: str = PV
    configuration: dict[str, Any] = field(default_factory=lambda: dict(RUNTIME_CONF))
    configurations: dict[str, dict[str, Any]] = field(default_factory=lambda: {CAND: dict(CANDIDATE_CONF)})
    sink: Sink = field(default_factory=Sink)
    states: States = field(default_factory=States)
    signing_key: None = None

    def chain(self, partition: int) -> list[dict[str, Any]]:
        return [value for topic, p, _, value in self.sink.sent if topic == "t.audit" and p == partition]


def append(rt: FakeRuntime, partition: int, items: list[dict[str, Any]]) -> None:
    asyncio.run(append_audit(cast(Runtime, rt), partition, items))


def item(event_id: str, version: str, tenant: str = "acme") -> dict[str, Any]:
    return audit_item(event_id, "decision", tenant, TS, version, {"n": event_id})


def configs(records: list[dict[str, Any]]) -> list[str]:
    return [r["policy_version"] for r in records if r["kind"] == "config"]


def kinds(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind or event id, version) of each record, in chain order."""
    return [("config" if r["kind"] == "config" else r["event_id"], r["policy_version"]) for r in records]


def test_two_versions_get_a_config_record_each_before_their_first_item() -> None:
    rt = FakeRuntime()
    append(rt, 1, [item("a", PV), item("b", CAND), item("c", PV), item("d", CAND)])
    chain = rt.chain(1)
    assert len(chain) == 6 and configs(chain) == [PV, CAND]
    for version in (PV, CAND):
        config_at = next(i for i, r in enumerate(chain) if r["kind"] == "config" and r["policy_version"] == version)
        first_item = next(i for i, r in enumerate(chain) if r["kind"] != "config" and r["policy_version"] == version)
        assert config_at < first_item
    assert [r["event_id"] for r in chain if r["kind"] != "config"] == ["a", "b", "c", "d"]  # the items' order kept
    by_version = {r["policy_version"]: r for r in chain if r["kind"] == "config"}
    assert by_version[PV]["record"] == {"policy_version": PV, "configuration": RUNTIME_CONF}
    assert by_version[CAND]["record"] == {"policy_version": CAND, "configuration": CANDIDATE_CONF}
    assert {r["tenant"] for r in by_version.values()} == {SYSTEM_TENANT}
    assert verify(chain).ok
    assert rt.states.states[1].policy_versions == {PV, CAND}
    assert rt.states.states[1].head.seq_next == 6


def test_a_config_record_is_written_once_per_chain() -> None:
    rt = FakeRuntime()
    append(rt, 1, [item("a", PV), item("b", CAND)])
    append(rt, 1, [item("c", CAND), item("d", PV)])
    chain = rt.chain(1)
    assert configs(chain) == [PV, CAND]
    assert kinds(chain)[-2:] == [("c", CAND), ("d", PV)]
    assert verify(chain).ok


def test_a_candidate_version_first_seen_later_gets_its_config_record_then() -> None:
    rt = FakeRuntime()
    append(rt, 2, [item("a", PV)])
    assert configs(rt.chain(2)) == [PV]  # registered, but nothing was decided under it yet
    append(rt, 2, [item("b", PV), item("c", CAND)])
    assert kinds(rt.chain(2)) == [("config", PV), ("a", PV), ("config", CAND), ("b", PV), ("c", CAND)]
    assert verify(rt.chain(2)).ok


def test_each_partitions_chain_records_its_own_configs() -> None:
    rt = FakeRuntime()
    append(rt, 0, [item("a", CAND)])
    append(rt, 3, [item("b", CAND)])
    assert configs(rt.chain(0)) == configs(rt.chain(3)) == [PV, CAND]


def test_an_unregistered_version_gets_no_config_record() -> None:
    rt = FakeRuntime()
    append(rt, 1, [item("a", "pv-unknown"), item("b", PV)])
    chain = rt.chain(1)
    assert configs(chain) == [PV]
    assert "pv-unknown" not in rt.states.states[1].policy_versions
    append(rt, 1, [item("c", "pv-unknown")])
    assert configs(rt.chain(1)) == [PV]


def test_a_chain_recovered_from_its_records_does_not_record_the_configs_again() -> None:
    rt = FakeRuntime()
    append(rt, 1, [item("a", PV), item("b", CAND)])
    recovered = FakeRuntime(states=States({1: recover(rt.chain(1), 100)}))
    assert recovered.states.states[1].policy_versions == {PV, CAND}
    append(recovered, 1, [item("c", CAND), item("d", PV)])
    assert configs(recovered.chain(1)) == []
    assert verify(rt.chain(1) + recovered.chain(1)).ok


def test_nothing_is_written_for_no_items() -> None:
    rt = FakeRuntime()
    append(rt, 1, [])
    assert rt.sink.sent == [] and rt.states.states[1].policy_versions == set()


# --- the gate's audit items through the writer, and back through the partition state


def test_a_canary_batch_is_audited_with_both_configs_and_recovered_with_its_canary_parts() -> None:
    canary = PolicyCanary("floor-70", 0.5, 2, CAND, trust=candidate_trust(CFG.trust, {"trust_floor": 0.7}))
    records = [rec(body(f"r-{i}", MONITOR), offset=i) for i in range(20)]
    plan = plan_batch(GateBatch(records, NOW, MONO), DictView(policies={"acme": canary}), CFG)
    items = [a.item for a in plan.effects.audit]
    assert {i["policy_version"] for i in items} == {PV, CAND}
    rt = FakeRuntime()
    append(rt, 0, items)
    chain = rt.chain(0)
    assert configs(chain) == [PV, CAND] and verify(chain).ok
    for v in (PV, CAND):
        config_at = next(i for i, r in enumerate(chain) if r["kind"] == "config" and r["policy_version"] == v)
        first = next(i for i, r in enumerate(chain) if r["kind"] != "config" and r["policy_version"] == v)
        assert config_at < first
    # the decisions in the batch's order, each under the version of the policy that decided it
    decisions = [r for r in chain if r["kind"] == "decision"]
    assert [r["record"]["decision"]["request_id"] for r in decisions] == [f"r-{i}" for i in range(20)]
    assert all(r["policy_version"] == (CAND if arm_of(canary, r["record"]["decision"]["request_id"]) == "candidate"
                                       else PV) for r in decisions)

    state = recover(chain, 100)  # a restarted worker: what the outcomes agent finds
    for r in plan.remembered:
        kept = state.decisions.get(r.decision_id)
        assert kept is not None
        tenant, raw_score, pending, part = kept
        assert (tenant, raw_score, pending) == ("acme", r.raw_score, None)
        assert part == r.canary
        assert part is not None and part["arm"] == arm_of(canary, r.request_id)
        assert part["verb"] == ("review" if part["arm"] == "candidate" else "execute")
        assert r.request_id in state.requests


def test_remember_and_replay_keep_the_canary_part_with_its_verb() -> None:
    part = {"enhancement_id": "e", "arm": "current", "share": 0.0, "step": 0, "candidate_policy_version": CAND,
            "shadow": {"verb": "review", "tier": "monitor", "score": 0.66, "policy_version": CAND}}
    live = recover([], 10)
    live.remember("r-1", "d-1", "acme", 0.66, None, {**part, "verb": "execute", "part_verb": "execute"})
    live.remember("r-2", "d-2", "acme", 0.5)
    decision = {"event_id": "d-1", "tenant": "acme", "verb": "execute", "trust": {"raw_score": 0.66, "decision": "execute"},
                "canary": part}
    plain = {"event_id": "d-2", "tenant": "acme", "verb": "review", "trust": {"raw_score": 0.5}}
    replayed = recover([], 10)
    replayed.replay({"kind": "decision", "record": {"request": {"event_id": "r-1"}, "decision": decision}})
    replayed.replay({"kind": "decision", "record": {"request": {"event_id": "r-2"}, "decision": plain}})
    for state in (live, replayed):
        assert state.decisions.get("d-1") == ("acme", 0.66, None, {**part, "verb": "execute", "part_verb": "execute"})
        assert state.decisions.get("d-2") == ("acme", 0.5, None, None)
