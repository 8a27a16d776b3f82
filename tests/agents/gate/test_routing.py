"""The gate's router helpers: stored state, imports' auditability, overlay choice."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from agents import router
from agents.gate._import import auditable
from agents.gate._routing import RouteJudge, load_router_state, overlay_for, rejection_alerts
from agents.overlays import load_overlays, overlay_dirs
from schemas import DecisionRequest, decode_json

CFG = router.RoutingConfig()


def test_a_tenant_that_never_routed_gets_a_fresh_state() -> None:
    state, applied = load_router_state({}, "acme", CFG)
    assert state.policy.name == "epsilon_greedy" and applied == []


def test_a_stored_state_round_trips() -> None:
    state, _ = load_router_state({}, "acme", CFG)
    table = {"acme": {"state": state.to_dict(), "applied": ["d-1"], "imports": []}}
    again, applied = load_router_state(table, "acme", CFG)
    assert again.to_dict() == state.to_dict() and applied == ["d-1"]


def test_an_unreadable_stored_state_is_replaced_not_fatal() -> None:
    state, _ = load_router_state({}, "acme", CFG)
    broken = state.to_dict()
    broken["stats"]["cost_usd"] = None  # what an overflow to infinity serialises to
    fresh, applied = load_router_state({"acme": {"state": broken, "applied": ["d-1"]}}, "acme", CFG)
    assert fresh.stats.outcomes == 0 and applied == ["d-1"]


def test_an_import_with_an_integer_the_audit_cannot_hash_is_refused() -> None:
    auditable({"n": 2**53 - 1})
    with pytest.raises(router.TableError) as info:
        auditable({"state": {"n": 2**60}})
    assert info.value.path == "q_table"


def test_a_scenario_gets_its_overlay_and_none_without_one() -> None:
    overlays = load_overlays(overlay_dirs()).overlays
    raw = {"event_id": "r", "tenant": "acme", "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1,
                                                         "confidence_band": 0.1},
           "scenario": {"category": "financial_operations", "complexity": 0.8, "description": "refund"}}
    _, request = decode_json(DecisionRequest, orjson.dumps(raw))
    assert overlay_for(request, overlays)["name"] == "rollback_first"
    _, bare = decode_json(DecisionRequest, orjson.dumps({k: v for k, v in raw.items() if k != "scenario"}))
    assert overlay_for(bare, overlays) is None


def test_rejected_overlay_files_become_system_alerts(tmp_path) -> None:
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / "empty.yaml").write_bytes(b"")
    rejections = load_overlays(overlay_dirs(tmp_path)).rejections
    alerts = rejection_alerts(rejections, 1.0, "2026-01-01T00:00:00.000Z")
    assert [(a["tenant"], a["kind"], a["details"]["reason_code"]) for a in alerts] == [
        ("_system", "overlay_rejected", "empty")]
    assert rejection_alerts(rejections, 2.0, "x")[0]["event_id"] != alerts[0]["event_id"]  # one per start


class _Event:
    """A stand-in for the Faust event the judge writes tables under."""


PROVIDERS = [{"provider_id": pid, "price_usd_per_hour": 2.0, "latency_ms": 100, "reputation": 90,
              "capacity_available": 10, "gpu_types": ["a100"], "regions": ["us"]} for pid in ("akash", "vast")]


def _routed_request(event_id: str) -> DecisionRequest:
    raw = {"event_id": event_id, "tenant": "acme",
           "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1},
           "routing": {"context": {"workload_type": "llm", "gpu_type": "a100", "region": "us", "gpu_hours": 1.0},
                       "providers": PROVIDERS}}
    return decode_json(DecisionRequest, orjson.dumps(raw))[1]


GREEDY = router.RoutingConfig(epsilon=0.0, epsilon_min=0.0)


def _judge(table: dict, routes: dict) -> RouteJudge:
    return RouteJudge(GREEDY, table, routes, now=1000.0)


def _teach(table: dict, provider: str, reward: float) -> None:
    state, applied = load_router_state(table, "acme", GREEDY)
    taught = replace(state, policy=state.policy.update("llm:a100:us", provider, reward))
    table["acme"] = {"state": taught.to_dict(), "applied": applied, "imports": []}


def test_a_redelivered_request_keeps_its_route_after_the_router_learnt() -> None:
    table: dict = {}
    routes: dict = {}
    _teach(table, "akash", 10.0)
    first = _judge(table, routes)("acme", _routed_request("r-1"), "d-1", _Event(), "ts")
    assert first.route["provider_id"] == "akash" and routes["r-1"]["pending"]["provider_id"] == "akash"
    _teach(table, "vast", 100.0)  # the router has since learnt that vast is far better
    fresh = _judge(table, {})("acme", _routed_request("r-1"), "d-1", _Event(), "ts")
    assert fresh.route["provider_id"] == "vast"  # what a new draw would do now
    judge = _judge(table, routes)
    again = judge("acme", _routed_request("r-1"), "d-1", _Event(), "ts")
    assert again == first
    assert judge.routed == 0  # the router state is not touched: the decision was counted the first time
