"""A tenant's trust policy under canary on live decisions: the arms (`bucket`, `arm_of`)
and what `plan_batch` makes of a batch while `DictView.policies` holds a `PolicyCanary`.

The candidate here raises the trust floor to 0.7, so a request scoring in [0.6, 0.7)
(`MONITOR`, 0.6666) is executed under the current policy and held for review under the
candidate: which policy decided shows in the verb as well as in `policy_version`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson
import pytest

from resontinex.agents.enhancement import candidate_trust
from resontinex.agents.gate import GateBatch, GateConfig, GatePlan, PolicyCanary, arm_of, bucket, plan_batch
from resontinex.agents.trust import CalibrationAdapter, default_config
from resontinex.schemas import Alert, Decision

from .test_plan import CFG, MONITOR, MONO, NOW, PASS, PV, TOPIC, body, rec
from .views import DictView, Rec

CANDIDATE_PV = "pv-candidate"
EID = "floor-70"
CANDIDATE_TRUST = candidate_trust(CFG.trust, {"trust_floor": 0.7})
N = 40


def canary(share: float = 0.5, step: int = 2, enhancement_id: str = EID) -> PolicyCanary:
    return PolicyCanary(enhancement_id, share, step, CANDIDATE_PV, trust=CANDIDATE_TRUST)


# --- bucket and arm_of --------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_buckets_are_uniform_over_ten_thousand_request_ids(share: float) -> None:
    below = sum(bucket(EID, f"req-{i}") < share for i in range(10_000)) / 10_000
    assert abs(below - share) <= 0.02


def test_a_bucket_is_fixed_in_zero_one_and_depends_on_the_enhancement() -> None:
    ids = [f"req-{i}" for i in range(200)]
    first = [bucket(EID, i) for i in ids]
    assert first == [bucket(EID, i) for i in ids]  # deterministic: the same request, the same place
    assert all(0.0 <= b < 1.0 for b in first)
    other = [bucket("floor-65", i) for i in ids]
    assert sum(a != b for a, b in zip(first, other)) >= 199  # another enhancement: another split
    # ... and so other requests in its candidate arm
    cand_a = {i for i in ids if arm_of(canary(0.5), i) == "candidate"}
    cand_b = {i for i in ids if arm_of(canary(0.5, enhancement_id="floor-65"), i) == "candidate"}
    assert cand_a != cand_b


def test_share_zero_is_shadow_and_always_current_share_one_always_candidate() -> None:
    ids = [f"req-{i}" for i in range(2_000)]
    assert canary(0.0).shadow and not canary(0.5).shadow and not canary(1.0).shadow
    assert {arm_of(canary(0.0), i) for i in ids} == {"current"}
    assert {arm_of(canary(1.0), i) for i in ids} == {"candidate"}


def test_arm_of_follows_the_bucket_against_the_share() -> None:
    c = canary(0.3)
    for i in range(500):
        rid = f"req-{i}"
        assert arm_of(c, rid) == ("candidate" if bucket(EID, rid) < 0.3 else "current")


def test_a_larger_share_keeps_every_request_of_a_smaller_one_in_the_candidate_arm() -> None:
    """The ramp only adds requests to the candidate: a step up moves none back."""
    ids = [f"req-{i}" for i in range(1_000)]
    small = {i for i in ids if arm_of(canary(0.1), i) == "candidate"}
    large = {i for i in ids if arm_of(canary(0.5), i) == "candidate"}
    assert small < large


# --- plan_batch with a canary ---------------------------------------------------------------


class Planned:
    """A plan with its decoded outputs; every output checked against its schema."""

    def __init__(self, plan: GatePlan) -> None:
        self.plan = plan
        self.decisions: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        for o in plan.effects.outputs:
            value = orjson.loads(o.value)
            if o.topic == "decisions":
                Decision.model_validate(value)
                self.decisions.append(value)
            elif o.topic == "alerts":
                Alert.model_validate(value)
                self.alerts.append(value)

    def by_request(self) -> dict[str, dict[str, Any]]:
        return {d["request_id"]: d for d in self.decisions}

    def audit(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a.item for a in self.plan.effects.audit if kind is None or a.item["kind"] == kind]


def plan(records: Iterable[Rec], view: DictView, cfg: GateConfig = CFG) -> Planned:
    records = list(records)
    before = view.snapshot()
    batch = GateBatch(records, NOW, MONO)
    made = plan_batch(batch, view, cfg)
    assert view.snapshot() == before, "the plan changed its view"
    again = plan_batch(batch, view, cfg)  # deterministic: the same batch, the same plan
    assert dataclasses.replace(made, evaluation_s=0.0) == dataclasses.replace(again, evaluation_s=0.0)
    for a in made.effects.audit:
        if a.item["kind"] == "decision":
            Decision.model_validate(a.item["record"]["decision"])
    return Planned(made)


def monitor_batch(n: int = N, tenant: str = "acme", prefix: str = "r") -> list[Rec]:
    return [rec(body(f"{prefix}-{i}", MONITOR, tenant=tenant), offset=i) for i in range(n)]


def test_the_candidate_decides_its_arm_and_the_current_policy_the_rest() -> None:
    c = canary(0.5)
    p = plan(monitor_batch(), DictView(policies={"acme": c}))
    assert len(p.decisions) == N
    arms = {d["request_id"]: arm_of(c, d["request_id"]) for d in p.decisions}
    assert set(arms.values()) == {"candidate", "current"}  # both arms are exercised here
    for rid, d in p.by_request().items():
        if arms[rid] == "candidate":
            assert d["policy_version"] == CANDIDATE_PV
            assert (d["trust"]["decision"], d["verb"], d["trust"]["floor_violation"]) == ("review", "review", True)
        else:
            assert d["policy_version"] == PV
            assert (d["trust"]["decision"], d["verb"], d["trust"]["floor_violation"]) == ("execute", "execute", False)
        assert d["trust"]["score"] == pytest.approx(0.6666, abs=1e-4)
        assert d["canary"] == {"enhancement_id": EID, "kind": "trust_policy", "arm": arms[rid], "share": 0.5, "step": 2, "activation": 0,
                               "candidate_policy_version": CANDIDATE_PV, "shadow": None}
    # the floor alerts are the candidate's (its floor is 0.7; the current one's 0.6 holds)
    assert sorted(a["source_event_id"] for a in p.alerts if a["kind"] == "trust_floor_violation") == sorted(
        rid for rid, arm in arms.items() if arm == "candidate")


def test_another_tenants_decisions_have_no_canary_and_the_current_policy() -> None:
    records = [rec(body(f"r-{i}", MONITOR, tenant="acme" if i % 2 else "globex"), offset=i) for i in range(20)]
    p = plan(records, DictView(policies={"acme": canary(0.5)}))
    globex = [d for d in p.decisions if d["tenant"] == "globex"]
    acme = [d for d in p.decisions if d["tenant"] == "acme"]
    assert len(globex) == len(acme) == 10
    for d in globex:
        assert "canary" not in d
        assert (d["policy_version"], d["verb"]) == (PV, "execute")
    assert all(d["canary"]["enhancement_id"] == EID for d in acme)


def test_shadow_decides_everything_under_the_current_policy_and_records_the_candidates_verdict() -> None:
    p = plan(monitor_batch(), DictView(policies={"acme": canary(0.0, step=0)}))
    assert len(p.decisions) == N
    for d in p.decisions:
        assert (d["policy_version"], d["verb"], d["trust"]["floor_violation"]) == (PV, "execute", False)
        part = d["canary"]
        assert {k: v for k, v in part.items() if k != "shadow"} == {
            "enhancement_id": EID, "kind": "trust_policy", "arm": "current", "share": 0.0, "step": 0,
            "activation": 0, "candidate_policy_version": CANDIDATE_PV}
        shadow = part["shadow"]
        assert set(shadow) == {"verb", "tier", "score", "policy_version"}
        assert (shadow["verb"], shadow["tier"], shadow["policy_version"]) == ("review", "monitor", CANDIDATE_PV)
        assert shadow["score"] == pytest.approx(d["trust"]["score"])
    assert not [a for a in p.alerts if a["kind"] == "trust_floor_violation"]  # the candidate decided nothing


def test_a_shadow_verdict_is_the_verdict_the_candidate_gives_when_it_decides() -> None:
    """Shadow and candidate arm judge by the same trust gate: a request's shadow verb is
    the verb it gets once the candidate decides it (nothing but trust in play here)."""
    records = [rec(body(f"r-{i}", sig), offset=i) for i, sig in enumerate([PASS, MONITOR, (0.4, 0.6, 0.5)])]
    shadow = plan(records, DictView(policies={"acme": canary(0.0, step=0)})).by_request()
    decided = plan(records, DictView(policies={"acme": canary(1.0, step=3)})).by_request()
    for rid, d in decided.items():
        assert d["canary"]["arm"] == "candidate" and d["policy_version"] == CANDIDATE_PV
        verdict = shadow[rid]["canary"]["shadow"]
        assert (verdict["verb"], verdict["tier"], verdict["score"]) == (d["verb"], d["trust"]["tier"],
                                                                        d["trust"]["score"])


def test_remembered_keeps_the_canary_part_with_the_verb_in_batch_order() -> None:
    c = canary(0.5)
    records = monitor_batch()
    p = plan(records, DictView(policies={"acme": c}))
    decisions = p.by_request()
    assert [r.request_id for r in p.plan.remembered] == [f"r-{i}" for i in range(N)]
    for r in p.plan.remembered:
        d = decisions[r.request_id]
        assert r.decision_id == d["event_id"]
        assert r.canary == {**d["canary"], "verb": d["verb"], "part_verb": d["trust"]["decision"]}
        assert r.canary["arm"] == arm_of(c, r.request_id)
        assert r.canary["verb"] == ("review" if r.canary["arm"] == "candidate" else "execute")


def test_remembered_in_shadow_has_the_current_verb_and_the_shadow_verdict() -> None:
    p = plan(monitor_batch(5), DictView(policies={"acme": canary(0.0, step=0)}))
    for r in p.plan.remembered:
        assert r.canary is not None
        assert (r.canary["verb"], r.canary["arm"], r.canary["shadow"]["verb"]) == ("execute", "current", "review")


def test_remembered_has_no_canary_without_a_policy_under_canary() -> None:
    p = plan(monitor_batch(5), DictView(policies={"globex": canary(0.5)}))
    assert [r.canary for r in p.plan.remembered] == [None] * 5
    assert all("canary" not in d for d in p.decisions)


def test_the_audit_items_of_candidate_decisions_carry_the_candidates_policy_version_in_batch_order() -> None:
    c = canary(0.5)
    p = plan(monitor_batch(), DictView(policies={"acme": c}))
    audited = p.audit("decision")
    assert [a["record"]["decision"]["request_id"] for a in audited] == [f"r-{i}" for i in range(N)]
    for a in audited:
        decision = a["record"]["decision"]
        assert a["policy_version"] == decision["policy_version"] == (
            CANDIDATE_PV if arm_of(c, decision["request_id"]) == "candidate" else PV)
        assert a["record"]["source"]["topic"] == TOPIC
    # a candidate decision's floor alert is audited under the candidate's version too
    for a in p.audit("alert"):
        request_id = a["record"]["alert"]["source_event_id"]
        assert arm_of(c, request_id) == "candidate" and a["policy_version"] == CANDIDATE_PV
    assert p.audit("alert")


def test_the_audit_stays_in_batch_order_across_tenants_and_arms() -> None:
    records = [rec(body(f"r-{i}", MONITOR, tenant=("acme", "globex")[i % 3 == 0]), offset=i) for i in range(30)]
    p = plan(records, DictView(policies={"acme": canary(0.5)}))
    expected = [f"r-{i}" for i in range(30)]
    assert [a["record"]["decision"]["request_id"] for a in p.audit("decision")] == expected
    assert [r.request_id for r in p.plan.remembered] == expected
    assert [a["record"]["source"]["offset"] for a in p.audit("decision")] == list(range(30))


def test_shadow_audit_items_are_all_under_the_current_version() -> None:
    p = plan(monitor_batch(10), DictView(policies={"acme": canary(0.0, step=0)}))
    assert {a["policy_version"] for a in p.audit()} == {PV}


def test_a_canary_of_default_trust_settings_decides_as_the_current_policy_but_says_so() -> None:
    """The candidate's `policy_version` marks its decisions even when its verdicts agree."""
    same = PolicyCanary(EID, 1.0, 1, CANDIDATE_PV, trust=default_config())
    cfg = dataclasses.replace(CFG, trust=default_config())
    d = plan([rec(body("r-1", PASS))], DictView(policies={"acme": same}), cfg).decisions[0]
    assert (d["verb"], d["policy_version"], d["canary"]["arm"]) == ("execute", CANDIDATE_PV, "candidate")


def test_the_batch_counts_cover_both_arms() -> None:
    c = canary(0.5)
    p = plan(monitor_batch(), DictView(policies={"acme": c}))
    counts = {(x.metric, x.labels): x.amount for x in p.plan.effects.counts}
    candidates = sum(arm_of(c, f"r-{i}") == "candidate" for i in range(N))
    assert counts[("DECISIONS", ("review",))] == candidates
    assert counts[("DECISIONS", ("execute",))] == N - candidates
    assert counts[("TIERS", ("monitor",))] == N
    assert counts[("FLOOR_VIOLATIONS", ())] == candidates


def test_the_scores_histogram_observes_every_decision_of_a_split_batch() -> None:
    p = plan(monitor_batch(), DictView(policies={"acme": canary(0.5)}))
    (scores,) = [o for o in p.plan.effects.observations if o.metric == "SCORES"]
    assert len(scores.values) == N


def calibrated() -> tuple[GateConfig, DictView]:
    """A deployment deciding on calibrated scores, acme's calibration putting PASS's raw 0.7681 at 0."""
    adapter = CalibrationAdapter()
    assert adapter.fit(np.linspace(0.0, 1.0, 200), np.linspace(0.0, 1.0, 200) > 0.95).fitted
    cfg = dataclasses.replace(CFG, trust=dataclasses.replace(CFG.trust, decide_on="calibrated"))
    return cfg, DictView(calibrations={"acme": adapter})


def test_a_candidate_deciding_on_calibrated_scores_uses_the_tenants_calibration() -> None:
    cfg, view = calibrated()
    cand = candidate_trust(cfg.trust, {"trust_floor": 0.7})
    assert cand.decide_on == "calibrated"  # the payload leaves it as the current configuration has it
    view.policies["acme"] = PolicyCanary(EID, 1.0, 3, CANDIDATE_PV, trust=cand)
    d = plan([rec(body("r-1", PASS))], view, cfg).decisions[0]
    assert (d["policy_version"], d["trust"]["decided_on"], d["trust"]["tier"], d["verb"]) == (
        CANDIDATE_PV, "calibrated", "block", "abort")


def test_a_shadow_verdict_under_calibration_is_the_candidates_calibrated_verdict() -> None:
    cfg, view = calibrated()
    cand = candidate_trust(cfg.trust, {"trust_floor": 0.7})
    view.policies["acme"] = PolicyCanary(EID, 0.0, 0, CANDIDATE_PV, trust=cand)
    d = plan([rec(body("r-1", PASS))], view, cfg).decisions[0]
    assert (d["policy_version"], d["verb"]) == (PV, "abort")  # the current policy decides, on the calibrated score
    shadow = d["canary"]["shadow"]
    assert (shadow["verb"], shadow["tier"]) == ("abort", "block")
