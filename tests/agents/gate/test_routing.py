"""The gate's router helpers: stored state, imports' auditability, overlay choice."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from resontinex.agents import router
from resontinex.agents.gate import auditable_table as auditable
from resontinex.agents.gate._routing import RouteJudge, load_router_state, overlay_for, rejection_alerts
from resontinex.agents.overlays import load_overlays, overlay_dirs
from resontinex.schemas import DecisionRequest, decode_json

from .views import DictView

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


PROVIDERS = [{"provider_id": pid, "price_usd_per_hour": 2.0, "latency_ms": 100, "reputation": 90,
              "capacity_available": 10, "gpu_types": ["a100"], "regions": ["us"]} for pid in ("akash", "vast")]


def _routed_request(event_id: str, tenant: str = "acme", **routing: object) -> DecisionRequest:
    raw = {"event_id": event_id, "tenant": tenant,
           "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1},
           "routing": {"context": {"workload_type": "llm", "gpu_type": "a100", "region": "us", "gpu_hours": 1.0},
                       "providers": PROVIDERS, **routing}}
    return decode_json(DecisionRequest, orjson.dumps(raw))[1]


GREEDY = router.RoutingConfig(epsilon=0.0, epsilon_min=0.0)


def _judge(view: DictView) -> RouteJudge:
    return RouteJudge(GREEDY, view, now=1000.0)


def _teach(view: DictView, provider: str, reward: float) -> None:
    state, applied = load_router_state(view.routers, "acme", GREEDY)
    taught = replace(state, policy=state.policy.update("llm:a100:us", provider, reward))
    view.routers["acme"] = {"state": taught.to_dict(), "applied": applied, "imports": ["imp-1"]}


def test_the_new_router_state_is_handed_back_with_its_imports_and_partition() -> None:
    view = DictView()
    _teach(view, "akash", 10.0)
    before = orjson.dumps(view.routers)
    judge = _judge(view)
    judge("acme", _routed_request("r-1"), "d-1", 2, "ts")
    judge("acme", _routed_request("r-2"), "d-2", 3, "ts")
    (value, partition), = judge.values().values()
    assert partition == 3  # the partition of the tenant's last request
    assert value["imports"] == ["imp-1"] and value["applied"] == []
    state, _ = load_router_state({"acme": value}, "acme", GREEDY)
    assert state.stats.decisions == 2  # both decisions counted on one state
    assert orjson.dumps(view.routers) == before  # the view is only read


def test_a_request_without_routing_is_not_routed() -> None:
    raw = {"event_id": "r-1", "tenant": "acme",
           "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
    judge = _judge(DictView())
    assert judge("acme", decode_json(DecisionRequest, orjson.dumps(raw))[1], "d-1", 0, "ts") is None
    assert judge.states == {}


def test_no_feasible_provider_defers_with_an_alert() -> None:
    judge = _judge(DictView())
    routed = judge("acme", _routed_request("r-1", constraints={"max_price": 1.0}), "d-1", 0,
                   "2026-01-01T00:00:00.000Z")
    assert routed.verb == "defer" and routed.route["provider_id"] is None and routed.pending is None
    assert [r["code"] for r in routed.reasons] == ["no_feasible_provider"]
    assert (routed.alert["kind"], routed.alert["tenant"], routed.alert["source_event_id"]) == (
        "no_feasible_provider", "acme", "r-1")


def test_an_unreadable_stored_state_is_counted_and_replaced() -> None:
    state, _ = load_router_state({}, "acme", CFG)
    broken = state.to_dict()
    broken["stats"]["cost_usd"] = None
    judge = _judge(DictView(routers={"acme": {"state": broken, "applied": ["d-0"], "imports": []}}))
    assert judge("acme", _routed_request("r-1"), "d-1", 0, "ts").verb == "execute"
    assert judge.unreadable == 1
    (value, _), = judge.values().values()
    assert value["applied"] == ["d-0"]
