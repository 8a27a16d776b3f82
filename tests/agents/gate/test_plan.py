"""The gate's batch core `plan_batch`, over a dict-backed view: no broker, no Faust, no tables.

Every plan made here goes through `run`, which also checks what holds for any batch: each
output validates against its schema model, the audit's decision records agree with the
decisions, the view is left as it was and planning the batch again gives the same plan.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resontinex.agents import router
from resontinex.agents.budget import STATUS_VERB, Mark, load_energy_config, mark_key
from resontinex.agents.effects import Count, Effects, TableWrite
from resontinex.agents.gate import (LAG_LIMIT, VERB_RANK, GateBatch, GateConfig, GatePlan, awaiting_key,
                                    circuit_effects, decision_id, plan_batch, rejection_effects)
from resontinex.agents.gate._plan import RETURN_MARGIN
from resontinex.agents.overlays import load_overlays, overlay_dirs
from resontinex.agents.router import load_routing_config
from resontinex.agents.trajectory import load_trajectory_config
from resontinex.agents.trust import BreakerConfig, CalibrationAdapter, load_config
from resontinex.config import PACKAGED_DIR
from resontinex.schemas import DEFAULT_MAX_BYTES, Alert, DeadLetter, Decision, TrajectoryRequest

from .views import DictView, Rec

TOPIC = "decision-requests"
NOW = 1_767_261_600.0  # 2026-01-01T10:00:00Z
MONO = 5_000.0
DAY = "2026-01-01T00:00:00Z"
NOW_TS = "2026-01-01T10:00:00.000Z"
PV = "pv-test"
MARK = mark_key("acme", DAY)  # the packaged budget: "*", $100 a day, so acme's scope is "acme"
CFG = GateConfig(
    trust=load_config(PACKAGED_DIR / "trust_gate.yaml"),
    energy=load_energy_config(PACKAGED_DIR / "energy_governance.yaml"),
    routing=load_routing_config(PACKAGED_DIR / "routing.yaml"),
    trajectory=load_trajectory_config(PACKAGED_DIR / "trajectory.yaml"),
    overlays=load_overlays(overlay_dirs()).overlays,
    policy_version=PV,
    max_message_bytes=DEFAULT_MAX_BYTES,
)
USD = 1_000_000  # micro-dollars

# signals (a, r, c) → what the packaged trust gate makes of them
PASS = (0.8, 0.3, 0.2)  # 0.7681 pass → execute (CONTRACT §5's example)
MONITOR = (0.7, 0.4, 0.3)  # 0.6666 monitor → execute
MONITOR_LOW = (0.65, 0.5, 0.4)  # 0.589 monitor, under the floor → review
REVIEW = (0.4, 0.6, 0.5)  # 0.4196 review → review
BLOCK = (0.1, 0.9, 0.5)  # 0.1471 block → abort
WIDE = (0.95, 0.05, 0.8)  # 0.8888 pass, band over the entropy threshold → defer
PROVIDERS = [{"provider_id": pid, "price_usd_per_hour": 2.0, "latency_ms": 100, "reputation": 90,
              "capacity_available": 10, "gpu_types": ["a100"], "regions": ["us"]} for pid in ("akash", "vast")]
ROUTING = {"context": {"workload_type": "llm", "gpu_type": "a100", "region": "us", "gpu_hours": 1.0},
           "providers": PROVIDERS}
INFEASIBLE = {**ROUTING, "constraints": {"max_price": 1.0}}
MODELS = {"decisions": Decision, "alerts": Alert, "dead_letters": DeadLetter, "trajectory_requests": TrajectoryRequest}


def body(event_id: str = "r-1", signals: tuple[float, float | None, float] = PASS, tenant: str = "acme",
         **extra: Any) -> dict[str, Any]:
    a, r, c = signals
    sig: dict[str, float] = {"alignment_score": a, "confidence_band": c}
    if r is not None:
        sig["epistemic_risk"] = r
    return {"event_id": event_id, "tenant": tenant, "signals": sig, **extra}


def rec(value: dict[str, Any] | bytes | None, *, key: bytes | None | str = "tenant", partition: int = 0,
        offset: int = 0, ts: float = NOW) -> Rec:
    if key == "tenant":
        key = value["tenant"].encode() if isinstance(value, dict) else b"acme"
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return Rec(TOPIC, partition, offset, key, raw, ts)  # type: ignore[arg-type]


def recs(*bodies: dict[str, Any], partition: int = 0) -> list[Rec]:
    return [rec(b, partition=partition, offset=i) for i, b in enumerate(bodies)]


class Planned:
    """A plan with its outputs decoded."""

    def __init__(self, plan: GatePlan) -> None:
        self.plan = plan
        self.effects = plan.effects
        self.out: dict[str, list[dict[str, Any]]] = {}
        for o in plan.effects.outputs:
            self.out.setdefault(o.topic, []).append(orjson.loads(o.value))
        self.counts = {(c.metric, c.labels): c.amount for c in plan.effects.counts}

    def __getitem__(self, topic: str) -> list[dict[str, Any]]:
        return self.out.get(topic, [])

    @property
    def decisions(self) -> list[dict[str, Any]]:
        return self["decisions"]

    @property
    def decision(self) -> dict[str, Any]:
        (only,) = self.decisions
        return only

    def codes(self, decision: dict[str, Any] | None = None) -> list[str]:
        return [r["code"] for r in (decision or self.decision)["reasons"]]

    def audit(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a.item for a in self.effects.audit if kind is None or a.item["kind"] == kind]

    def writes(self, when: str, table: str) -> list[TableWrite]:
        return [w for w in getattr(self.effects, f"{when}_writes") if w.table == table]

    def count(self, metric: str, *labels: str) -> float:
        return self.counts.get((metric, labels), 0)


def same_plan(a: GatePlan, b: GatePlan) -> bool:
    return dataclasses.replace(a, evaluation_s=0.0) == dataclasses.replace(b, evaluation_s=0.0)


def run(records: Iterable[Rec], view: DictView | None = None, cfg: GateConfig = CFG, **batch: Any) -> Planned:
    view = view if view is not None else DictView()
    records = list(records)
    before = view.snapshot()
    gate_batch = GateBatch(records, batch.pop("now", NOW), batch.pop("monotonic", MONO), **batch)
    plan = plan_batch(gate_batch, view, cfg)
    assert view.snapshot() == before, "the plan changed its view"
    assert same_plan(plan, plan_batch(gate_batch, view, cfg)), "the same batch planned twice differs"
    planned = Planned(plan)
    for o in plan.effects.outputs:  # each valid, on the partition of a record with its key
        MODELS[o.topic].model_validate(orjson.loads(o.value))
        assert any((r.partition, r.key or None) == (o.partition, o.key) for r in records), o
    for a in plan.effects.audit:  # each on the partition of a record of its tenant
        assert set(a.item) == {"event_id", "kind", "tenant", "ts", "policy_version", "record"}
        assert a.item["policy_version"] == PV
        assert any((r.partition, r.key) == (a.partition, a.item["tenant"].encode()) for r in records), a
        if a.item["kind"] == "decision":
            record, decision = a.item["record"], a.item["record"]["decision"]
            Decision.model_validate(decision)
            source = record["source"]
            assert a.partition == source["partition"] and source["topic"] == TOPIC
            assert any((r.partition, r.offset) == (source["partition"], source["offset"]) for r in records)
            # the explanation's verb is the decision's, and its changes chain up to it
            explanation = record["explanation"]
            assert explanation["verb"] == decision["verb"]
            befores = [c["before"] for c in explanation["verb_changes"]]
            afters = [c["after"] for c in explanation["verb_changes"]]
            assert befores[1:] == afters[:-1]
        elif a.item["kind"] == "alert":
            Alert.model_validate(a.item["record"]["alert"])
    return planned


def spending(micros: int, **kw: Any) -> DictView:
    return DictView(spend={("day", "acme"): (micros, 0)}, **kw)


# --- trust ------------------------------------------------------------------------------


@pytest.mark.parametrize(("signals", "tier", "verb", "codes"), [
    (PASS, "pass", "execute", []),
    (MONITOR, "monitor", "execute", ["tier_monitor"]),
    (MONITOR_LOW, "monitor", "review", ["tier_monitor", "trust_floor_violation"]),
    (REVIEW, "review", "review", ["tier_review", "trust_floor_violation"]),
    (BLOCK, "block", "abort", ["tier_block", "trust_floor_violation"]),
    (WIDE, "pass", "defer", ["entropy_flag"]),
])
def test_each_trust_tier_gets_its_verb_and_reasons(signals: tuple[float, float, float], tier: str, verb: str,
                                                   codes: list[str]) -> None:
    p = run(recs(body(signals=signals)))
    d = p.decision
    assert (d["trust"]["tier"], d["trust"]["decision"], d["verb"]) == (tier, verb, verb)
    assert p.codes() == codes
    assert d["trust"]["floor_violation"] is ("trust_floor_violation" in codes)
    assert d["trust"]["entropy_flag"] is ("entropy_flag" in codes)
    assert (d["event_id"], d["request_id"], d["tenant"], d["workflow"]) == (decision_id("acme", "r-1"), "r-1", "acme",
                                                                            "default")
    assert (d["policy_version"], d["ts"], d["budget"]["status"], d["route"], d["overlay"]) == (PV, NOW_TS, "ok", None,
                                                                                                None)
    floor_alerts = [a for a in p["alerts"] if a["kind"] == "trust_floor_violation"]
    assert len(floor_alerts) == d["trust"]["floor_violation"]
    for alert in floor_alerts:
        assert (alert["source_event_id"], alert["details"]["decision_id"], alert["details"]["verb"]) == (
            "r-1", d["event_id"], verb)
    assert p.count("DECISIONS", verb) == 1 and p.count("TIERS", tier) == 1
    assert p.count("FLOOR_VIOLATIONS") == len(floor_alerts)


def test_the_contract_example_scores_as_specified() -> None:
    trust = run(recs(body(signals=PASS))).decision["trust"]
    assert (trust["score"], trust["tier"], trust["decision"]) == (0.7681, "pass", "execute")
    assert trust["calibrated_score"] is None and trust["decided_on"] == "raw"


def test_a_request_ts_is_kept_and_the_record_time_stands_in_for_a_missing_one() -> None:
    p = run([rec(body("r-1", ts="2026-01-01T09:59:00Z"), offset=0), rec(body("r-2"), offset=1, ts=NOW - 0.25)])
    assert [d["ts"] for d in p.decisions] == ["2026-01-01T09:59:00Z", "2026-01-01T09:59:59.750Z"]


def test_explain_puts_the_explanation_on_the_decision_and_the_audit_always_has_it() -> None:
    p = run(recs(body("r-1", signals=BLOCK, explain=True), body("r-2", signals=BLOCK)))
    with_it, without = p.decisions
    assert with_it["explanation"]["verb"] == "abort" and "explanation" not in without
    assert all(item["record"]["explanation"]["tier"] == "block" for item in p.audit("decision"))


def test_a_calibrated_tenant_reports_its_calibrated_score_and_decides_on_it_when_configured() -> None:
    import numpy as np

    adapter = CalibrationAdapter()
    assert adapter.fit(np.linspace(0.0, 1.0, 200), np.linspace(0.0, 1.0, 200) > 0.95).fitted
    view = DictView(calibrations={"acme": adapter})
    raw = run(recs(body(signals=PASS)), view).decision
    assert raw["verb"] == "execute" and raw["trust"]["calibrated_score"] == 0.0
    calibrated_cfg = dataclasses.replace(CFG, trust=dataclasses.replace(CFG.trust, decide_on="calibrated"))
    p = run(recs(body(signals=PASS)), view, calibrated_cfg)
    trust = p.decision["trust"]
    assert (trust["decided_on"], trust["tier"], p.decision["verb"]) == ("calibrated", "block", "abort")
    assert trust["score"] == 0.7681  # the raw score is still reported
    assert "calibrated trust score" in p.decision["reasons"][0]["message"]


# --- missing epistemic_risk: text-only requests -------------------------------------------------


TEXT_ONLY = (1.0, None, 0.0)  # at worst-case risk this is a pass (execute) that the missing risk holds back


def test_with_no_scorers_a_text_only_request_is_decided_at_once_at_worst_case_risk() -> None:
    p = run(recs(body(signals=TEXT_ONLY, text="generated text")), scorers_absent=True)
    d = p.decision
    assert VERB_RANK[d["verb"]] >= VERB_RANK["defer"] and d["trust"]["decision"] == d["verb"]
    assert "text_scoring_unavailable" in p.codes()
    assert p["trajectory_requests"] == [] and p.writes("early", "awaiting-text") == []
    (audited,) = p.audit("decision")
    assert audited["record"]["request"]["trajectory"] == {"status": "unavailable"}


@pytest.mark.parametrize("signals", [TEXT_ONLY, (0.9, None, 0.1)])
def test_worst_case_risk_holds_back_at_least_to_defer(signals: tuple[float, None, float]) -> None:
    d = run(recs(body(signals=signals, text="t")), scorers_absent=True).decision
    assert VERB_RANK[d["verb"]] >= VERB_RANK["defer"]


def test_with_scorers_a_text_only_request_waits_for_its_score() -> None:
    request = body(signals=TEXT_ONLY, text="generated text")
    p = run([rec(request, partition=3, offset=7)])
    assert p.decisions == [] and p.audit() == [] and p.plan.remembered == ()
    (waiting,) = p.effects.early_writes
    assert (waiting.table, waiting.key, waiting.partition) == ("awaiting-text", awaiting_key("acme", "r-1"), 3)
    assert waiting.value == {"raw": request, "since": NOW, "partition": 3}
    (sent,) = p.effects.outputs
    assert (sent.topic, sent.partition, sent.key) == ("trajectory_requests", 3, b"acme")
    forwarded = orjson.loads(sent.value)
    assert (forwarded["tenant"], forwarded["text"], forwarded["request_id"]) == ("acme", "generated text", "r-1")
    assert p.count("TEXTS_FORWARDED") == 1


def test_only_the_text_only_requests_of_a_batch_wait() -> None:
    p = run(recs(body("r-1", signals=TEXT_ONLY, text="t"), body("r-2"), body("r-3", text="has a risk")))
    assert [d["request_id"] for d in p.decisions] == ["r-2", "r-3"]
    assert [f["request_id"] for f in p["trajectory_requests"]] == ["r-1"]


def test_a_request_too_large_to_come_back_is_decided_now() -> None:
    record = rec(body(signals=TEXT_ONLY, text="t" * 100))
    cfg = dataclasses.replace(CFG, max_message_bytes=len(record.value) + RETURN_MARGIN - 1)
    p = run([record], cfg=cfg)
    assert p["trajectory_requests"] == [] and p.writes("early", "awaiting-text") == []
    assert "risk_unavailable" in p.codes() and VERB_RANK[p.decision["verb"]] >= VERB_RANK["defer"]
    fits = run([record], cfg=dataclasses.replace(cfg, max_message_bytes=len(record.value) + RETURN_MARGIN))
    assert fits.decisions == [] and len(fits["trajectory_requests"]) == 1


SCORED = {"status": "scored", "result_id": "tr-1", "model": "gpt2", "mean_entropy": 1.0, "perplexity": 3.0,
          "passed_quality_check": True}


def test_a_trajectory_block_on_a_request_not_waiting_is_ignored() -> None:
    p = run(recs(body(signals=PASS, trajectory=SCORED)))
    assert p.codes() == [] and p.decision["verb"] == "execute"
    (audited,) = p.audit("decision")
    assert "trajectory" not in audited["record"]["request"]
    assert p.writes("late", "awaiting-text") == []


def test_a_trajectory_block_cannot_skip_the_scoring_of_a_text_only_request() -> None:
    p = run(recs(body(signals=TEXT_ONLY, text="t", trajectory={"status": "timeout"})))
    assert p.decisions == [] and len(p["trajectory_requests"]) == 1  # sent to be scored like any other


def test_the_scored_copy_of_a_waiting_request_is_decided_with_its_risk_and_stops_waiting() -> None:
    view = DictView(awaiting={awaiting_key("acme", "r-1"): {"raw": {}, "since": NOW - 1, "partition": 0}})
    p = run(recs(body(signals=(0.9, 0.2, 0.1), text="t", trajectory=SCORED)), view)
    assert "risk_from_text" in p.codes()
    (forget,) = p.writes("late", "awaiting-text")
    assert (forget.key, forget.delete, forget.partition) == (awaiting_key("acme", "r-1"), True, 0)


def test_a_timed_out_waiting_request_is_judged_at_worst_case_risk() -> None:
    view = DictView(awaiting={awaiting_key("acme", "r-1"): {"raw": {}, "since": NOW - 60, "partition": 0}})
    p = run(recs(body(signals=TEXT_ONLY, text="t", trajectory={"status": "timeout"})), view)
    assert "text_risk_timeout" in p.codes() and VERB_RANK[p.decision["verb"]] >= VERB_RANK["defer"]


# --- break-glass --------------------------------------------------------------------------------

OVERRIDE = {"operator_id": "ops-1", "reason": "incident 42"}


def test_a_break_glass_override_turns_an_abort_into_execute_and_is_audited() -> None:
    p = run(recs(body(signals=BLOCK, override=OVERRIDE)))
    d = p.decision
    assert d["verb"] == "execute" and d["trust"]["decision"] == "abort"
    assert p.codes() == ["tier_block", "trust_floor_violation", "break_glass"]
    (override,) = p.audit("override")
    assert override["event_id"] == "ov-" + d["event_id"][2:]
    assert override["record"]["applied"] is True and override["record"]["decision_id"] == d["event_id"]
    assert (override["record"]["operator_id"], override["record"]["original_decision"]) == ("ops-1", "abort")
    assert [a["kind"] for a in p["alerts"]] == ["trust_floor_violation"]  # the floor is still reported


def test_a_break_glass_override_with_nothing_to_override_is_refused_and_audited() -> None:
    p = run(recs(body(signals=PASS, override=OVERRIDE)))
    assert p.decision["verb"] == "execute" and p.codes() == ["break_glass_refused"]
    (override,) = p.audit("override")
    assert override["record"]["applied"] is False and override["record"]["refused"]


def test_an_operator_blank_to_the_gate_is_refused_and_audited() -> None:
    """U+001F passes the schema's "not blank" but is whitespace to the override's own check."""
    p = run(recs(body(signals=BLOCK, override={"operator_id": "\x1f", "reason": "incident"})))
    assert p.decision["verb"] == "abort" and p.codes()[-1] == "break_glass_refused"
    (override,) = p.audit("override")
    assert override["event_id"] == "ov-" + p.decision["event_id"][2:]
    assert (override["record"]["applied"], override["record"]["operator_id"]) == (False, "\x1f")


def test_a_blank_operator_never_overrides_anything() -> None:
    """The schema refuses a blank `operator_id`, so the request is a dead letter, not an override."""
    p = run(recs(body(signals=BLOCK, override={"operator_id": " ", "reason": "incident"})))
    assert p.decisions == [] and p.audit() == []
    (dead,) = p["dead_letters"]
    assert dead["error"]["code"] == "invalid_value" and "operator_id" in dead["error"]["message"]


def test_break_glass_requests_never_come_from_the_insight_cache() -> None:
    p = run(recs(body("r-1", signals=BLOCK, override=OVERRIDE), body("r-2", signals=BLOCK, override=OVERRIDE)))
    assert [d["verb"] for d in p.decisions] == ["execute", "execute"]
    assert all("insight_cache" not in p.codes(d) for d in p.decisions)
    assert len(p.audit("override")) == 2 and p.plan.cache == ()


# --- budget -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spent", "status", "verb", "code", "alert"), [
    (0, "ok", "execute", None, None),
    (86 * USD, "review", "review", "budget_review", "budget_warning"),
    (96 * USD, "braked", "abort", "emergency_brake", "emergency_brake"),
    (101 * USD, "blocked", "defer", "budget_exceeded", "budget_blocked"),
])
def test_the_budget_status_from_spend_so_far(spent: int, status: str, verb: str, code: str | None,
                                             alert: str | None) -> None:
    p = run(recs(body(signals=PASS)), spending(spent))
    d = p.decision
    assert (d["budget"]["status"], d["verb"]) == (status, verb)
    assert (d["budget"]["scope"], d["budget"]["period"], d["budget"]["period_start"]) == ("acme", "day", DAY)
    assert p.codes() == ([code] if code else [])
    assert [a["kind"] for a in p["alerts"]] == ([alert] if alert else [])
    assert p.count("BUDGET_DECISIONS", status) == 1
    (mark,) = p.writes("late", "budget-marks")
    assert (mark.key, mark.partition) == (MARK, 0)
    assert p.plan.marks == ((0, MARK, Mark(mark.value["level"], mark.value["blocked_since"])),)
    if status == "blocked":
        assert (d["budget"]["retry_after_s"], mark.value["blocked_since"]) == (30.0, NOW)


def test_a_budget_transition_is_alerted_and_audited_as_a_state_change() -> None:
    p = run(recs(body(signals=PASS)), spending(96 * USD))
    (alert,) = p["alerts"]
    assert (alert["kind"], alert["severity"], alert["tenant"], alert["source_event_id"]) == (
        "emergency_brake", "critical", "acme", "r-1")
    assert [i["kind"] for i in p.audit()] == ["decision", "state_change", "alert"]
    change, audited = p.audit("state_change")[0], p.audit("alert")[0]
    assert change["event_id"] == "sc-" + alert["event_id"][2:] and audited["event_id"] == "au-" + alert["event_id"][2:]
    assert change["record"]["budget"]["from"] == "ok" and change["record"]["budget"]["to"] == "braked"
    assert audited["record"]["alert"] == alert
    assert p.count("ALERTS", "emergency_brake") == 1


@pytest.mark.parametrize(("spent", "level", "kinds"), [
    (86 * USD, 0, ["budget_warning"]),
    (86 * USD, 1, []),  # warned before this period
    (96 * USD, 1, ["emergency_brake"]),  # a higher level is new
    (96 * USD, 2, []),
    (86 * USD, 2, []),  # the brake holds and is not re-raised
])
def test_a_transition_alert_is_raised_once_per_level_and_period(spent: int, level: int, kinds: list[str]) -> None:
    view = spending(spent, marks={(0, MARK): Mark(level)})
    assert [a["kind"] for a in run(recs(body(signals=PASS)), view)["alerts"]] == kinds


def test_a_batch_raises_a_transition_alert_once() -> None:
    p = run(recs(*(body(f"r-{i}", signals=PASS, estimate={"cost_usd": 0.1 * i}) for i in range(4))),
            spending(96 * USD))
    assert [a["kind"] for a in p["alerts"]] == ["emergency_brake"] and len(p.audit("state_change")) == 1
    assert p.count("BUDGET_DECISIONS", "braked") == 4


def test_a_lagging_budget_agent_holds_executes_for_review_and_counts_for_the_breaker() -> None:
    view = DictView(lags={0: LAG_LIMIT + 1, 1: LAG_LIMIT})
    p = run([rec(body("r-1"), partition=0), rec(body("r-2"), partition=0, offset=1),
             rec(body("r-3", tenant="globex"), partition=1)], view)
    lagging, also, fresh = p.decisions
    assert lagging["verb"] == also["verb"] == "review" and fresh["verb"] == "execute"
    assert "budget_lagging" in p.codes(lagging) and "budget_lagging" not in p.codes(fresh)
    assert p.plan.lagging == 2


def test_an_unknown_lag_is_not_lagging() -> None:
    p = run(recs(body()), DictView(lags={0: None}))
    assert p.decision["verb"] == "execute" and p.plan.lagging == 0


@pytest.mark.parametrize(("estimate", "verb", "held"), [
    ({"tokens": 5000}, "review", ["downgrade_tokens_over_limit"]),
    ({"cost_usd": 2.0}, "review", ["downgrade_cost_over_limit"]),
    ({"tokens": 100}, "execute", []),
])
def test_a_downgraded_tenant_runs_in_economy_mode(estimate: dict[str, Any], verb: str, held: list[str]) -> None:
    p = run(recs(body(signals=PASS, estimate=estimate)), DictView(down={"acme"}))
    d = p.decision
    assert (d["verb"], d["budget"]["status"], d["budget"]["mode"], d["budget"]["downgraded"]) == (
        verb, "downgraded", "economy", True)
    assert p.codes() == ["tripwire_downgraded", *held]


def test_a_downgraded_tenant_under_the_modes_trust_floor_goes_to_review() -> None:
    p = run(recs(body(signals=MONITOR)), DictView(down={"acme"}))  # 0.6666: above 0.60, under economy's 0.75
    assert p.decision["verb"] == "review"
    assert p.codes() == ["tier_monitor", "tripwire_downgraded", "downgrade_trust_floor"]


def test_a_tenant_without_a_budget_has_none() -> None:
    cfg = dataclasses.replace(CFG, energy=dataclasses.replace(CFG.energy, budgets=()))
    p = run(recs(body()), cfg=cfg)
    assert p.decision["budget"] is None and p.writes("late", "budget-marks") == [] and p.plan.marks == ()


# --- routing ------------------------------------------------------------------------------------


def test_a_request_with_routing_gets_a_route_and_its_router_learns_before_anything_is_sent() -> None:
    p = run([rec(body(routing=ROUTING), partition=2, offset=5)])
    d = p.decision
    assert d["route"]["provider_id"] in ("akash", "vast") and d["verb"] == "execute"
    (state,) = p.writes("early", "router-state")
    assert (state.key, state.partition) == ("acme", 2)
    assert router.RouterState.from_dict(state.value["state"], CFG.routing).stats.decisions == 1
    (remembered,) = p.plan.remembered
    assert remembered.pending is not None and remembered.pending["provider_id"] == d["route"]["provider_id"]
    assert p.audit("decision")[0]["record"]["route_pending"] == remembered.pending


def test_routes_depend_on_the_request_not_on_the_batch() -> None:
    alone = run(recs(body("r-2", routing=ROUTING))).decision["route"]
    together = run(recs(body("r-1", routing=ROUTING), body("r-2", routing=ROUTING))).decisions[1]["route"]
    assert alone["provider_id"] == together["provider_id"]


def test_no_feasible_provider_defers_with_an_alert() -> None:
    p = run(recs(body(routing=INFEASIBLE)))
    d = p.decision
    assert d["verb"] == "defer" and d["route"]["provider_id"] is None
    assert p.codes() == ["no_feasible_provider"]
    assert [a["kind"] for a in p["alerts"]] == ["no_feasible_provider"]
    assert p.plan.remembered[0].pending is None and "route_pending" not in p.audit("decision")[0]["record"]


def test_a_scenario_gets_its_overlay() -> None:
    scenario = {"category": "financial_operations", "complexity": 0.8, "description": "refund"}
    assert run(recs(body(scenario=scenario))).decision["overlay"]["name"] == "rollback_first"


# --- circuit breaker and the insight cache ------------------------------------------------------


def test_an_open_circuit_sends_every_decision_to_review_at_least() -> None:
    p = run(recs(body("r-1", signals=PASS), body("r-2", signals=BLOCK), body("r-3", signals=WIDE)), circuit_open=True)
    assert [d["verb"] for d in p.decisions] == ["review", "abort", "defer"]
    assert all(p.codes(d)[-1] == "circuit_open" for d in p.decisions)
    assert p.decisions[0]["trust"]["decision"] == "execute"


def test_identical_requests_reuse_the_earlier_decision_while_the_circuit_is_closed() -> None:
    p = run(recs(body("r-1"), body("r-2")))
    first, second = p.decisions
    assert p.codes(first) == [] and p.codes(second) == ["insight_cache"]
    assert second["event_id"] == decision_id("acme", "r-2") and second["verb"] == first["verb"]
    assert (p.count("INSIGHT_CACHE", "hit"), p.count("INSIGHT_CACHE", "miss")) == (1, 1)
    (entry,) = p.plan.cache
    assert entry[1] == MONO + CFG.energy.recovery.insight_cache_ttl_s and entry[2]["request_id"] == "r-1"


def test_an_entry_kept_from_an_earlier_batch_is_reused() -> None:
    (key, expiry, decision), = run(recs(body("r-1"))).plan.cache
    view = DictView(cache={key: (expiry, decision)})
    p = run(recs(body("r-2")), view, monotonic=expiry - 1)
    assert p.codes() == ["insight_cache"] and p.count("INSIGHT_CACHE", "hit") == 1
    expired = run(recs(body("r-2")), view, monotonic=expiry)
    assert expired.codes() == [] and expired.count("INSIGHT_CACHE", "miss") == 1


def test_a_calibration_fitted_since_is_not_hidden_by_the_insight_cache() -> None:
    import numpy as np

    (key, expiry, decision), = run(recs(body("r-1", signals=PASS))).plan.cache  # decided before any calibration
    adapter = CalibrationAdapter()
    assert adapter.fit(np.linspace(0.0, 1.0, 200), np.linspace(0.0, 1.0, 200) > 0.95).fitted
    calibrated_cfg = dataclasses.replace(CFG, trust=dataclasses.replace(CFG.trust, decide_on="calibrated"))
    view = DictView(cache={key: (expiry, decision)}, calibrations={"acme": adapter})
    p = run(recs(body("r-2", signals=PASS)), view, calibrated_cfg, monotonic=expiry - 1)
    assert p.codes() != ["insight_cache"] and p.count("INSIGHT_CACHE", "miss") == 1
    assert p.decision["trust"]["decided_on"] == "calibrated" and p.decision["verb"] == "abort"
    (audited,) = p.audit("decision")  # the audit's explanation and the decision agree
    assert audited["record"]["explanation"]["verb"] == p.decision["verb"]


def test_an_open_circuit_does_not_use_the_insight_cache() -> None:
    (key, expiry, decision), = run(recs(body("r-1"))).plan.cache
    p = run(recs(body("r-2"), body("r-3")), DictView(cache={key: (expiry, decision)}), circuit_open=True)
    assert all(p.codes(d) == ["circuit_open"] for d in p.decisions)
    assert p.plan.cache == () and p.count("INSIGHT_CACHE", "hit") == p.count("INSIGHT_CACHE", "miss") == 0


# --- the most restrictive of the parts ----------------------------------------------------------


@pytest.mark.parametrize(("request_extra", "view_kw", "batch_kw", "verb", "codes"), [
    pytest.param({}, {"spend": 101}, {}, "defer", {"budget_exceeded"}, id="execute+blocked"),
    pytest.param({}, {"spend": 96}, {}, "abort", {"emergency_brake"}, id="execute+braked"),
    pytest.param({"signals": BLOCK}, {"spend": 86}, {}, "abort", {"tier_block", "budget_review"},
                 id="abort+budget-review"),
    pytest.param({"signals": WIDE}, {"spend": 86}, {}, "defer", {"entropy_flag", "budget_review"},
                 id="entropy-defer+budget-review"),
    pytest.param({"signals": WIDE}, {"spend": 96}, {}, "abort", {"entropy_flag", "emergency_brake"},
                 id="entropy-defer+braked"),
    pytest.param({"signals": BLOCK, "override": OVERRIDE}, {}, {}, "execute", {"break_glass"},
                 id="break-glass+ok"),
    pytest.param({"signals": BLOCK, "override": OVERRIDE}, {"spend": 101}, {}, "defer",
                 {"break_glass", "budget_exceeded"}, id="break-glass+blocked"),
    pytest.param({"signals": BLOCK, "override": OVERRIDE}, {"spend": 96}, {}, "abort",
                 {"break_glass", "emergency_brake"}, id="break-glass+braked"),
    pytest.param({"signals": BLOCK, "override": OVERRIDE}, {}, {"circuit_open": True}, "review",
                 {"break_glass", "circuit_open"}, id="break-glass+circuit-open"),
    pytest.param({"signals": REVIEW, "routing": INFEASIBLE}, {}, {}, "defer",
                 {"tier_review", "no_feasible_provider"}, id="route-infeasible+trust-review"),
    pytest.param({"signals": REVIEW, "routing": ROUTING}, {}, {}, "review", {"tier_review"},
                 id="routed+trust-review"),
    pytest.param({"routing": INFEASIBLE}, {"spend": 96}, {}, "abort", {"no_feasible_provider", "emergency_brake"},
                 id="route-infeasible+braked"),
    pytest.param({}, {"spend": 101}, {"circuit_open": True}, "defer", {"budget_exceeded", "circuit_open"},
                 id="blocked+circuit-open"),
    pytest.param({"signals": REVIEW}, {"down": True}, {}, "review", {"tier_review", "tripwire_downgraded"},
                 id="trust-review+downgraded"),
    pytest.param({"signals": TEXT_ONLY, "text": "t"}, {"spend": 86}, {"scorers_absent": True}, "defer",
                 {"text_scoring_unavailable", "budget_review"}, id="missing-risk+budget-review"),
    pytest.param({"signals": TEXT_ONLY, "text": "t"}, {"spend": 96}, {"scorers_absent": True}, "abort",
                 {"text_scoring_unavailable", "emergency_brake"}, id="missing-risk+braked"),
    pytest.param({}, {"lag": LAG_LIMIT + 1, "spend": 86}, {}, "review", {"budget_review", "budget_lagging"},
                 id="lagging+budget-review"),
])
def test_the_most_restrictive_part_decides(request_extra: dict[str, Any], view_kw: dict[str, Any],
                                           batch_kw: dict[str, Any], verb: str, codes: set[str]) -> None:
    view = spending(view_kw.get("spend", 0) * USD, down={"acme"} if view_kw.get("down") else set(),
                    lags={0: view_kw.get("lag", 0)})
    p = run(recs(body(**request_extra)), view, **batch_kw)
    assert p.decision["verb"] == verb
    assert codes <= set(p.codes())


def test_alerts_come_floor_first_then_route_then_budget() -> None:
    p = run(recs(body(signals=REVIEW, routing=INFEASIBLE)), spending(96 * USD))
    assert [a["kind"] for a in p["alerts"]] == ["trust_floor_violation", "no_feasible_provider", "emergency_brake"]
    assert [i["kind"] for i in p.audit()] == ["decision", "state_change", "alert", "alert", "alert"]
    assert [i["record"]["alert"] for i in p.audit("alert")] == p["alerts"]
    assert p.audit("state_change")[0]["event_id"] == "sc-" + p["alerts"][-1]["event_id"][2:]  # the budget's


# --- dedupe -------------------------------------------------------------------------------------


def test_a_request_decided_before_is_dropped() -> None:
    view = DictView(seen_ids={0: {"r-1"}})
    p = run(recs(body("r-1", routing=ROUTING), body("r-2")), view)
    assert [d["request_id"] for d in p.decisions] == ["r-2"]
    assert p.count("DUPLICATES", TOPIC) == 1 and p.count("EVENTS", TOPIC) == 2
    assert [r.request_id for r in p.plan.remembered] == ["r-2"]


def test_dedupe_is_per_partition() -> None:
    p = run([rec(body("r-1"), partition=1)], DictView(seen_ids={0: {"r-1"}}))
    assert len(p.decisions) == 1


def test_the_same_request_twice_in_a_batch_is_decided_once() -> None:
    p = run(recs(body("r-1"), body("r-1", signals=BLOCK)))
    assert p.decision["verb"] == "execute"  # the first copy
    assert p.count("DUPLICATES", TOPIC) == 1 and len(p.audit("decision")) == 1 and len(p.plan.remembered) == 1


@pytest.mark.parametrize("scored_first", [False, True])
def test_the_scored_copy_wins_over_a_retry_of_the_original(scored_first: bool) -> None:
    view = DictView(awaiting={awaiting_key("acme", "r-1"): {"raw": {}, "since": NOW - 1, "partition": 0}})
    original = body(signals=TEXT_ONLY, text="t")
    scored = body(signals=(1.0, 0.2, 0.0), text="t", trajectory=SCORED)
    p = run(recs(*([scored, original] if scored_first else [original, scored])), view)
    assert "risk_from_text" in p.codes()
    assert p["trajectory_requests"] == [] and p.writes("early", "awaiting-text") == []
    assert p.audit("decision")[0]["record"]["request"]["trajectory"] == SCORED
    assert [w.key for w in p.writes("late", "awaiting-text")] == [awaiting_key("acme", "r-1")]
    assert p.count("DUPLICATES", TOPIC) == (1 if scored_first else 0)


def test_a_scored_copy_of_a_request_decided_before_only_stops_it_waiting() -> None:
    view = DictView(seen_ids={0: {"r-1"}},
                    awaiting={awaiting_key("acme", "r-1"): {"raw": {}, "since": NOW - 1, "partition": 0}})
    p = run(recs(body(signals=(1.0, 0.2, 0.0), text="t", trajectory=SCORED)), view)
    assert p.decisions == [] and p.count("DUPLICATES", TOPIC) == 1
    assert [(w.key, w.delete) for w in p.writes("late", "awaiting-text")] == [(awaiting_key("acme", "r-1"), True)]


# --- dead letters -------------------------------------------------------------------------------


def _dead_letter_for(record: Rec, code: str) -> dict[str, Any]:
    p = run([record, rec(body("ok"), offset=record.offset + 1)])
    assert [d["request_id"] for d in p.decisions] == ["ok"]  # the rest of the batch goes on
    (dead,) = p["dead_letters"]
    (out,) = [o for o in p.effects.outputs if o.topic == "dead_letters"]
    assert (out.partition, out.key) == (record.partition, record.key or None)
    value = record.value or b""
    assert dead["event_id"].startswith("dl-")
    assert (dead["source_topic"], dead["partition"], dead["offset"]) == (TOPIC, record.partition, record.offset)
    assert base64.b64decode(dead["value_base64"]) == value
    assert dead["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert dead["error"]["code"] == code and dead["error"]["message"]
    assert dead["ts"] == NOW_TS
    assert p.count("DEAD_LETTERS", TOPIC, code) == 1
    assert p.plan.failed == 0 and p.audit("decision")[0]["record"]["request"]["event_id"] == "ok"
    return dead


def test_invalid_json_is_a_dead_letter() -> None:
    assert _dead_letter_for(rec(b"{not json", partition=0, offset=3), "not_json")["key"] == "acme"


def test_a_record_without_its_tenant_key_is_a_dead_letter() -> None:
    assert _dead_letter_for(rec(body(), key=None, offset=3), "empty_key")["key"] is None


def test_a_record_keyed_by_another_tenant_is_a_dead_letter() -> None:
    assert _dead_letter_for(rec(body(), key=b"globex", offset=3), "key_mismatch")["key"] == "globex"


def test_an_integer_the_audit_cannot_hash_is_a_dead_letter() -> None:
    dead = _dead_letter_for(rec(body(extra={"n": 2**53}), offset=3), "out_of_range")
    assert "2^53" in dead["error"]["message"]
    run(recs(body(extra={"n": 2**53 - 1})))  # the largest one it can is fine


def test_the_same_bad_record_gets_the_same_dead_letter_id() -> None:
    first = run([rec(b"nope", offset=9)])["dead_letters"][0]["event_id"]
    assert run([rec(b"nope", offset=9)], now=NOW + 5)["dead_letters"][0]["event_id"] == first
    assert run([rec(b"nope", offset=10)])["dead_letters"][0]["event_id"] != first


def test_a_failure_while_processing_a_record_is_a_processing_error_for_the_breaker() -> None:
    def fault(key: bytes | None) -> None:
        if key == b"globex":
            raise RuntimeError("injected")

    p = run([rec(body("r-1", tenant="globex")), rec(body("r-2"), offset=1)], fault=fault)
    (dead,) = p["dead_letters"]
    assert (dead["error"]["code"], dead["error"]["message"]) == ("processing_error", "RuntimeError: injected")
    assert p.plan.failed == 1 and p.count("ERRORS", "decode") == 1
    assert [d["request_id"] for d in p.decisions] == ["r-2"]


# --- audit, memory, statistics ------------------------------------------------------------------


def test_one_decision_record_per_decision_on_its_records_partition() -> None:
    records = [rec(body("r-1"), partition=0, offset=4), rec(body("r-2", tenant="globex"), partition=2, offset=8),
               rec(body("r-3", tenant="initech", signals=BLOCK), partition=1, offset=1)]
    p = run(records)
    decisions = p.audit("decision")
    assert len(decisions) == 3
    for record, item, audit, d in zip(records, decisions, [a for a in p.effects.audit if a.item["kind"] == "decision"],
                                      p.decisions):
        assert item["event_id"] == "au-" + d["event_id"][2:]
        assert (item["tenant"], item["ts"]) == (d["tenant"], d["ts"])
        assert item["record"]["request"] == orjson.loads(record.value)
        assert item["record"]["decision"] == d
        assert item["record"]["source"] == {"topic": TOPIC, "partition": record.partition, "offset": record.offset}
        assert audit.partition == record.partition
    for o in p.effects.outputs:
        source = next(r for r in records if r.key == o.key)
        assert o.partition == source.partition
    assert {a.partition for a in p.effects.audit if a.item["kind"] == "alert"} == {1}  # the floor alert of r-3


def test_what_a_decision_remembers() -> None:
    p = run([rec(body("r-1", signals=MONITOR), partition=1, offset=2, ts=NOW - 3)])
    (r,) = p.plan.remembered
    d = p.decision
    assert (r.partition, r.request_id, r.decision_id, r.tenant, r.pending, r.timestamp) == (
        1, "r-1", d["event_id"], "acme", None, NOW - 3)
    assert r.raw_score == d["trust"]["raw_score"]
    assert p.plan.failed == 0 and p.plan.lagging == 0


def test_window_statistics_are_folded_into_the_views() -> None:
    window = NOW - NOW % 60
    old = {"requests": 2, "score_sum": 1.0, "score_mean": 0.5, "tiers": {"review": 2}, "verbs": {"review": 2},
           "floor_violations": 2, "entropy_flags": 0}
    view = DictView(stats={("acme", window): old})
    p = run(recs(body("r-1", signals=PASS), body("r-2", signals=BLOCK), body("r-3", tenant="globex")), view)
    stats = {w.key: w for w in p.writes("late", "trust-stats")}
    acme = stats["acme"].value
    assert (acme["requests"], acme["tiers"], acme["verbs"]) == (
        4, {"review": 2, "pass": 1, "block": 1}, {"review": 2, "execute": 1, "abort": 1})
    assert acme["floor_violations"] == 3 and stats["acme"].at == NOW
    assert stats["globex"].value["requests"] == 1


def test_the_same_batch_planned_twice_gives_identical_effects() -> None:
    records = [rec(body("r-1", routing=ROUTING, signals=REVIEW, override=OVERRIDE), offset=0),
               rec(body("r-2", estimate={"cost_usd": 3.0}), offset=1), rec(b"bad", offset=2),
               rec(body("r-4", tenant="globex", signals=TEXT_ONLY, text="t"), partition=1)]
    view = spending(95 * USD)
    first = plan_batch(GateBatch(records, NOW, MONO), view, CFG)
    second = plan_batch(GateBatch(records, NOW, MONO), view, CFG)
    assert first.effects == second.effects and same_plan(first, second)
    assert first.effects.outputs and first.effects.audit and first.effects.early_writes


def test_the_plan_never_changes_its_view() -> None:
    window = NOW - NOW % 60
    view = DictView(
        seen_ids={0: {"r-0"}},
        awaiting={awaiting_key("acme", "r-5"): {"raw": {"event_id": "r-5"}, "since": NOW - 1, "partition": 0}},
        spend={("day", "acme"): (101 * USD, 0)}, down={"globex"}, lags={1: LAG_LIMIT + 5},
        marks={(0, MARK): Mark(1)},
        routers={"globex": {"state": router.RouterState.fresh(CFG.routing).to_dict(), "applied": ["d-0"],
                            "imports": ["i-1"]}},
        stats={("acme", window): {"requests": 1, "score_sum": 0.5, "score_mean": 0.5, "tiers": {"review": 1},
                                  "verbs": {"review": 1}, "floor_violations": 1, "entropy_flags": 0}},
    )
    first = run(recs(body("r-1"), body("r-1b")))
    view.cache = {key: (expiry, decision) for key, expiry, decision in first.plan.cache}
    view.unaudited_decisions = kept(run([rec(body("r-9", tenant="globex", routing=ROUTING), partition=1)]))
    records = [rec(body("r-0"), offset=0), rec(body("r-1"), offset=1),
               rec(body("r-5", signals=(1.0, 0.3, 0.0), text="t", trajectory=SCORED), offset=2),
               rec(body("r-6", routing=ROUTING, explain=True), offset=3),
               rec(body("r-9", tenant="globex", routing=ROUTING), partition=1, offset=0),
               rec(body("r-10", tenant="globex", routing=ROUTING, estimate={"tokens": 5000}), partition=1, offset=1)]
    before = view.snapshot()
    p = run(records, view)  # `run` checks it too, on every plan of this module
    assert view.snapshot() == before
    assert len(p.decisions) == 5


def test_every_count_names_a_metric_of_the_shell() -> None:
    from resontinex.app import metrics

    view = spending(96 * USD, seen_ids={0: {"dup"}}, lags={1: LAG_LIMIT + 1})
    records = [rec(body("r-1", routing=ROUTING), offset=0), rec(body("r-2"), offset=1), rec(body("dup"), offset=2),
               rec(b"bad", offset=3), rec(body("r-3", signals=TEXT_ONLY, text="t"), offset=4),
               rec(body("r-4", signals=BLOCK, tenant="globex"), partition=1)]
    p = run(records, view, fault=lambda key: None)
    again = run(recs(body("r-1", routing=ROUTING)), DictView(unaudited_decisions=kept(p)))
    effects = p.effects + again.effects + circuit_effects("open", 40, 30, BreakerConfig(), "w", NOW_TS, [0], 1, PV)
    names = {c.metric for c in effects.counts} | {o.metric for o in effects.observations}
    assert {"EVENTS", "DECISIONS", "DUPLICATES", "DEAD_LETTERS", "ALERTS", "BUDGET_DECISIONS", "INSIGHT_CACHE",
            "TEXTS_FORWARDED", "DECISIONS_RESUMED", "TIERS", "SCORES"} <= names
    for c in effects.counts:
        metric = getattr(metrics, c.metric)
        assert len(c.labels) == len(metric._labelnames), c  # prometheus_client keeps the label names here
        assert c.amount > 0
    for o in effects.observations:
        assert callable(getattr(metrics, o.metric).observe_many)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Rec], DictView, dict[str, Any]]:
    unit = st.floats(0.0, 1.0, allow_nan=False)
    records = []
    for i in range(draw(st.integers(1, 6))):
        tenant = draw(st.sampled_from(["acme", "globex"]))
        risk = draw(st.none() | unit)
        extra: dict[str, Any] = {}
        if risk is None:
            extra["text"] = "t"
        if draw(st.booleans()):
            extra["estimate"] = {"cost_usd": draw(st.floats(0.0, 20.0)), "tokens": draw(st.integers(0, 20_000))}
        if draw(st.booleans()):
            extra["routing"] = draw(st.sampled_from([ROUTING, INFEASIBLE]))
        if draw(st.integers(0, 4)) == 0:
            extra["override"] = OVERRIDE
        request_id = draw(st.sampled_from([f"r-{i}", "r-0"]))  # now and then a repeated id
        records.append(rec(body(request_id, (draw(unit), risk, draw(unit)), tenant, **extra),
                           partition=0 if tenant == "acme" else 1, offset=i))
    view = DictView(spend={("day", t): (draw(st.integers(0, 110)) * USD, 0) for t in ("acme", "globex")},
                    down={"globex"} if draw(st.booleans()) else set())
    return records, view, {"circuit_open": draw(st.booleans()), "scorers_absent": draw(st.booleans())}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_any_batch_is_planned_deterministically_and_consistently(case: tuple[list[Rec], DictView, dict]) -> None:
    records, view, batch_kw = case
    p = run(records, view, **batch_kw)  # same plan twice, the view unchanged, every output valid
    requests = {(r.partition, orjson.loads(r.value)["event_id"]) for r in records}
    forwarded = {(f["tenant"], f["request_id"]) for f in p["trajectory_requests"]}
    assert len(p.decisions) + len(forwarded) == len(requests)
    assert len({d["event_id"] for d in p.decisions}) == len(p.decisions)
    for d in p.decisions:
        floor = max(VERB_RANK[d["trust"]["decision"]] if "break_glass" not in p.codes(d) else 0,
                    VERB_RANK["review"] if batch_kw["circuit_open"] else 0,
                    VERB_RANK["defer"] if d["route"] and d["route"]["provider_id"] is None else 0,
                    VERB_RANK[STATUS_VERB[d["budget"]["status"]]] if d["budget"]["status"] != "downgraded" else 0)
        assert VERB_RANK[d["verb"]] >= floor
        assert d["reasons"] or d["verb"] == "execute"  # CONTRACT §3.2: no reasons only for a clean execute
    assert len(p.audit("decision")) == len(p.decisions) == len(p.plan.remembered)


# --- a crash between a batch's outputs and its audit --------------------------------------------


def kept(p: Planned) -> dict[str, dict[str, Any]]:
    """The plan's `unaudited-decisions` by decision id, as a restarted worker reads them back."""
    values = [orjson.loads(o.value) for o in p.effects.ahead if o.topic == "unaudited_decisions"]
    return {v["decision"]["event_id"]: v for v in values}


def sent(p: Planned) -> list[tuple[str, bytes]]:
    return [(o.topic, o.value) for o in p.effects.outputs if o.topic in ("decisions", "alerts")]


def test_each_decision_goes_ahead_of_the_outputs_on_its_partition() -> None:
    p = run([rec(body("r-1", routing=ROUTING), partition=2, offset=5), rec(body("r-2"), partition=2, offset=6)])
    ahead = p.effects.ahead
    assert [(o.topic, o.partition, o.key) for o in ahead] == [("unaudited_decisions", 2, b"acme")] * 2
    assert [v["decision"] for v in kept(p).values()] == p.decisions
    assert [v["pending"] is not None for v in kept(p).values()] == [True, False]


def test_a_redelivered_request_gets_the_decision_it_was_sent_though_spend_and_router_moved_on() -> None:
    request = recs(body("r-1", routing=ROUTING, estimate={"cost_usd": 1.0}))
    first = run(request, spending(10 * USD))
    provider = first.decision["route"]["provider_id"]
    (state,) = first.writes("early", "router-state")
    learnt = router.RouterState.from_dict(state.value["state"], CFG.routing)
    other = ({"akash", "vast"} - {provider}).pop()
    learnt = dataclasses.replace(learnt, policy=learnt.policy.update("llm:a100:us", other, 100.0))
    view = spending(97 * USD)  # spent since, and over the brake now; the router learnt the other is far better
    view.routers["acme"] = {**state.value, "state": learnt.to_dict()}
    anew = run(request, view).decision
    assert (anew["route"]["provider_id"], anew["budget"]["status"]) == (other, "braked")  # what deciding again says
    view.unaudited_decisions = kept(first)
    again = run(request, view)
    assert sent(again) == sent(first)
    assert again.audit() == first.audit()
    assert again.writes("early", "router-state") == []
    assert again.effects.ahead == first.effects.ahead  # written again: a crash before this audit finds it too
    assert again.count("DECISIONS_RESUMED") == 1 and again.count("DECISIONS", "execute") == 0
    assert again.plan.remembered == first.plan.remembered


def test_a_resumed_decision_keeps_its_budget_mark_so_a_transition_is_not_alerted_twice() -> None:
    first = run(recs(body("r-1", signals=PASS)), spending(96 * USD))
    assert [a["kind"] for a in first["alerts"]] == ["emergency_brake"]
    view = spending(96 * USD, unaudited_decisions=kept(first))  # the mark was never written: the crash came first
    again = run(recs(body("r-1", signals=PASS), body("r-2", signals=PASS)), view)
    assert [a["kind"] for a in again["alerts"]] == ["emergency_brake"]  # r-1's, sent again; none for r-2
    assert [(w.key, w.value) for w in again.writes("late", "budget-marks")] == [
        (w.key, w.value) for w in first.writes("late", "budget-marks")]


def test_an_unaudited_value_of_another_shape_is_decided_anew_not_fatal() -> None:
    first = run(recs(body("r-1")))
    (did,) = kept(first)
    for junk in ({"decision": first.decision}, {**kept(first)[did], "mark": 7}, {**kept(first)[did], "alerts": None}):
        again = run(recs(body("r-1")), DictView(unaudited_decisions={did: junk}))
        assert sent(again) == sent(first) and again.count("DECISIONS_RESUMED") == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.integers(0, 110))
def test_any_batch_redelivered_after_its_outputs_sends_and_audits_the_same(
        case: tuple[list[Rec], DictView, dict], spent_since: int) -> None:
    records, view, batch_kw = case
    first = run(records, view, **batch_kw)
    again_view = dataclasses.replace(view, spend={k: (spent_since * USD, 0) for k in view.spend},
                                     unaudited_decisions=kept(first))
    for w in first.writes("early", "router-state"):
        again_view.routers[w.key] = w.value
    again = run(records, again_view, **batch_kw)
    assert sent(again) == sent(first)
    assert [a for a in again.effects.audit] == [a for a in first.effects.audit]
    assert again.writes("late", "budget-marks") == first.writes("late", "budget-marks")
    assert again.count("DECISIONS_RESUMED") == len(first.decisions)


# --- the gate's own alerts ----------------------------------------------------------------------


@pytest.mark.parametrize(("transition", "severity"), [("open", "critical"), ("closed", "info")])
def test_the_breakers_alert_is_sent_once_and_audited_on_every_partition(transition: str, severity: str) -> None:
    e = circuit_effects(transition, 40, 30, BreakerConfig(), "w:6066", NOW_TS, [0, 2, 3], 1, PV)
    (out,) = e.outputs
    assert (out.topic, out.partition, out.key) == ("alerts", 1, b"_system")
    alert = Alert.model_validate(orjson.loads(out.value))
    assert (alert.kind, alert.severity, alert.tenant, alert.details["error_rate"]) == (
        f"circuit_{transition}", severity, "_system", 0.75)
    assert [a.partition for a in e.audit] == [0, 2, 3]
    assert all(a.item == e.audit[0].item for a in e.audit)
    item = e.audit[0].item
    assert (item["kind"], item["event_id"], item["record"]["alert"]) == (
        "alert", "au-" + alert.event_id[2:], orjson.loads(out.value))
    assert e.counts == (Count("ALERTS", (f"circuit_{transition}",)),)
    assert not e.early_writes and not e.late_writes


def test_rejected_overlay_files_become_system_alerts_sent_and_audited_on_one_partition(tmp_path) -> None:
    (tmp_path / "overlays").mkdir()
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / "overlays" / name).write_bytes(b"")
    rejections = load_overlays(overlay_dirs(tmp_path)).rejections
    e = rejection_effects(rejections, 2, 1.0, NOW_TS, PV)
    assert [(o.topic, o.partition, o.key) for o in e.outputs] == [("alerts", 2, b"_system")] * 2
    alerts = [Alert.model_validate(orjson.loads(o.value)) for o in e.outputs]
    assert {a.kind for a in alerts} == {"overlay_rejected"} and len({a.event_id for a in alerts}) == 2
    assert [(a.partition, a.item["kind"], a.item["record"]["alert"]["event_id"]) for a in e.audit] == [
        (2, "alert", a.event_id) for a in alerts]
    assert e.counts == (Count("ALERTS", ("overlay_rejected",), 2),)
    assert rejection_effects([], 2, 1.0, NOW_TS, PV) == Effects() and not rejection_effects([], 2, 1.0, NOW_TS, PV)
