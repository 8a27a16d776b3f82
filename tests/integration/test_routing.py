"""Routing on the real broker: requests with `routing` get a provider and a propensity,
outcomes teach the router once each (through a SIGKILL between decision and outcome),
late outcomes are dead letters, scenarios get overlays, a bad overlay file is reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from resontinex.agents import router
from resontinex.agents.router import PendingDecision, RouterState, RoutingConfig

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

TTL_S = 120  # outlives the restart (the killed member holds its partitions ~20 s)
LATE_TTL_S = 3
PROVIDERS = [
    {"provider_id": "akash", "price_usd_per_hour": 2.5, "latency_ms": 120, "reputation": 92, "capacity_available": 10,
     "gpu_types": ["a100"], "regions": ["us-west"]},
    {"provider_id": "vast", "price_usd_per_hour": 1.9, "latency_ms": 180, "reputation": 85, "capacity_available": 10,
     "gpu_types": ["a100"], "regions": ["us-west"]},
    {"provider_id": "pricey", "price_usd_per_hour": 9.0, "latency_ms": 90, "reputation": 99, "capacity_available": 10,
     "gpu_types": ["a100"], "regions": ["us-west"]},
]
CONTEXT = {"workload_type": "llm_inference", "gpu_type": "a100", "region": "us-west", "gpu_hours": 2.0}


def _config_dir(tmp_path: Path, ttl_s: float = TTL_S, bad_overlay: bool = False) -> Path:
    d = tmp_path / "config"
    (d / "overlays").mkdir(parents=True)
    (d / "routing.yaml").write_text(f"policy: epsilon_greedy\npending_ttl_s: {ttl_s}\n")
    if bad_overlay:
        (d / "overlays" / "broken.yaml").write_bytes(b"\xff\xfe not utf-8")
    return d


def _request(event_id: str, tenant: str = "acme", max_price: float = 5.0, **extra) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant,
            "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1},
            "routing": {"context": CONTEXT, "providers": PROVIDERS,
                        "constraints": {"max_price": max_price, "max_latency_ms": 500, "min_reputation": 80}},
            **extra}
    return tenant.encode(), orjson.dumps(body)


def _outcome(event_id: str, decision: dict, success: bool) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": decision["tenant"], "decision_id": decision["event_id"],
            "success": success, "actual_cost_usd": 1.45, "actual_latency_ms": 145.0, "actual_reputation": 89.0}
    return decision["tenant"].encode(), orjson.dumps(body)


def _cli(broker, *argv: str, env: dict | None = None) -> None:
    done = subprocess.run([sys.executable, "-m", "resontinex.app.cli", *argv, "--bootstrap", broker.bootstrap], cwd=REPO,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _status(worker, tenant: str) -> dict | None:
    code, body = worker.get("/router/status")
    return json.loads(body)["tenants"].get(tenant) if code == 200 else None


def _wait_outcomes(worker, tenant: str, n: int, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        st = _status(worker, tenant)
        if st is not None and st["executor"]["total_outcomes"] >= n:
            return st
        assert time.monotonic() < deadline, f"router saw {st and st['executor']['total_outcomes']} outcomes, not {n}"
        time.sleep(0.3)


def _expected_q(decisions: list[dict], successes: list[bool]) -> dict:
    """The Q-table the pure router reaches from the same outcomes, in the same order."""
    state = RouterState.fresh(RoutingConfig(pending_ttl_s=TTL_S))
    key = router.state_key(router.WorkloadContext(**CONTEXT))
    for d, ok in zip(decisions, successes):
        r = d["route"]
        pending = PendingDecision(d["event_id"], key, r["provider_id"], r["policy"], r["propensity"], r["q_value"],
                                  (0.0,) * router.DIMENSION, 0.0)
        state, _ = router.feedback(state, pending, success=ok, cost_usd=1.45, latency_ms=145.0, reputation=89.0)
    return state.policy.values()


def test_routed_decisions_learn_once_from_outcomes_through_a_sigkill(broker, tmp_path):
    config = {"RESONTINEX_CONFIG_DIR": str(_config_dir(tmp_path))}
    worker = start_worker(broker.bootstrap, tmp_path / "a", env=config)
    try:
        worker.wait_ready()
        requests = [_request(f"r-{i}", scenario={"category": "financial_operations", "complexity": 0.8,
                                                  "description": "refund with rollback"}) for i in range(40)]
        requests.append(_request("r-none", max_price=1.0))  # no provider is cheap enough
        run(produce(broker.bootstrap, "decision-requests", requests))
        decisions = {d["request_id"]: d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=41))}
        routed = [decisions[f"r-{i}"] for i in range(40)]
        for d in routed:
            route = d["route"]
            assert route["provider_id"] in {"akash", "vast"} and route["policy"] == "epsilon_greedy"
            assert 0 < route["propensity"] <= 1 and route["mode"] in {"explore", "exploit"}
            assert d["overlay"]["name"] == "rollback_first" and d["verb"] == "execute"
        none = decisions["r-none"]
        assert none["verb"] == "defer" and none["route"]["provider_id"] is None
        assert "price_exceeded" in none["route"]["violations"]
        alerts = [a for *_, a in run(read_all(broker.bootstrap, "alerts", settle_s=0.5))]
        assert [a["kind"] for a in alerts] == ["no_feasible_provider"]
        worker.kill()  # between the decisions and their outcomes
    finally:
        worker.stop()

    worker = start_worker(broker.bootstrap, tmp_path / "b", env=config, web_port=worker.web_port)
    try:
        worker.wait_ready()
        successes = [i % 4 != 0 for i in range(40)]
        outcomes = [_outcome(f"o-{i}", d, ok) for i, (d, ok) in enumerate(zip(routed, successes))]
        run(produce(broker.bootstrap, "outcomes", outcomes))
        run(produce(broker.bootstrap, "outcomes", outcomes[:10]))  # redelivered: same event ids
        run(produce(broker.bootstrap, "outcomes", [_outcome(f"again-{i}", d, True) for i, d in enumerate(routed[:5])]))
        st = _wait_outcomes(worker, "acme", 40)
        time.sleep(2.0)  # the repeats have been handled too
        st = _status(worker, "acme")
        assert st["executor"]["total_outcomes"] == 40
        key = router.state_key(router.WorkloadContext(**CONTEXT))
        assert st["strategist"]["q_values"][key] == pytest.approx(_expected_q(routed, successes)[key])
        _, metrics = worker.get("/metrics")
        assert b'resontinex_router_count{tenant="acme",what="outcomes"} 40.0' in metrics

        # export acme's table and import it for another tenant: it routes from acme's values
        table = tmp_path / "acme-table.json"
        _cli(broker, "router", "export", "--tenant", "acme", "--out", str(table))
        _cli(broker, "router", "import", "--tenant", "hooli", "--file", str(table), "--operator", "ops-2",
             "--reason", "warm start from acme", env=config)
        deadline = time.monotonic() + 30
        while (_status(worker, "hooli") or {}).get("strategist", {}).get("q_values") != st["strategist"]["q_values"]:
            assert time.monotonic() < deadline, "the imported table did not arrive"
            time.sleep(0.3)
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=0.5))]
        imports = [r for r in audit if r["kind"] == "state_change" and "router_import" in r["record"]]
        assert len(imports) == 1 and imports[0]["record"]["router_import"]["operator_id"] == "ops-2"
    finally:
        worker.stop()


def test_a_late_outcome_is_a_dead_letter_and_a_bad_overlay_is_reported(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path, env={"RESONTINEX_CONFIG_DIR": str(_config_dir(tmp_path, LATE_TTL_S, True))})
    try:
        worker.wait_ready()
        # globex is on `_system`'s partition: its batch reports the skipped overlay file
        run(produce(broker.bootstrap, "decision-requests", [_request("late-1", tenant="globex")]))
        decision = run(read_all(broker.bootstrap, "decisions", expect=1))[0][3]
        alerts = run(read_all(broker.bootstrap, "alerts", expect=1))
        rejected = [a for *_, a in alerts if a["kind"] == "overlay_rejected"]
        assert rejected and rejected[0]["tenant"] == "_system" and rejected[0]["details"]["reason_code"] == "not_utf8"
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=0.5))]
        assert any(r["kind"] == "alert" and r["record"]["alert"]["kind"] == "overlay_rejected" for r in audit)
        time.sleep(LATE_TTL_S + 1)
        run(produce(broker.bootstrap, "outcomes", [_outcome("o-late", decision, True)] * 2))  # and its retry
        dead = run(read_all(broker.bootstrap, "dead-letters", expect=2))
        assert [d["error"]["code"] for *_, d in dead] == ["expired_decision"] * 2
        executor = _status(worker, "globex")["executor"]
        assert (executor["total_outcomes"], executor["expired"], executor["pending_feedback"]) == (0, 1, 0)
    finally:
        worker.stop()


def test_a_request_redelivered_after_a_crash_gets_the_decision_it_got_before(broker, tmp_path):
    """The worker kills itself once a batch's decisions are out and before their audit
    records are. Before it restarts, the tenant spends (its budget figures move) and its
    router's draws change (pure exploration under another seed). The restarted worker
    answers the redelivered requests with the decisions they got before, byte for byte:
    each request id has one decision on the topic, and the audit holds that one."""
    def config(name: str, seed: int) -> dict[str, str]:
        d = tmp_path / name
        (d / "overlays").mkdir(parents=True)
        (d / "routing.yaml").write_text(f"policy: epsilon_greedy\nepsilon: 1.0\nepsilon_min: 1.0\nseed: {seed}\n")
        return {"RESONTINEX_CONFIG_DIR": str(d)}

    requests = [_request(f"c-{i}", tenant="initech") for i in range(30)]
    worker = start_worker(broker.bootstrap, tmp_path / "a",
                          env={**config("one", 1), "RESONTINEX_CRASH_AT": "gate.outputs_sent"})
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", requests))
        assert worker.proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        worker.stop()
    before = [d for *_, d in run(read_all(broker.bootstrap, "decisions", settle_s=1.0)) if d["tenant"] == "initech"]
    assert before and not [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=0.5))
                           if r["tenant"] == "initech"]
    spend = {"event_id": "k-1", "tenant": "initech", "workflow": "default", "provider": "p", "model": "m",
             "input_tokens": 500, "output_tokens": 500, "cost_usd": 60.0, "latency_ms": 100.0}
    run(produce(broker.bootstrap, "costs", [(b"initech", orjson.dumps(spend))]))

    worker = start_worker(broker.bootstrap, tmp_path / "b", env=config("two", 2), web_port=worker.web_port)
    try:
        worker.wait_ready()
        decisions = [d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=len(before) + 30))
                     if d["tenant"] == "initech"]
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=1.0)) if r["tenant"] == "initech"]
        _, metrics = worker.get("/metrics")
    finally:
        worker.stop()
    versions: dict[str, set[bytes]] = {}
    for d in decisions:
        versions.setdefault(d["request_id"], set()).add(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
    assert len(versions) == 30 and all(len(v) == 1 for v in versions.values()), versions
    audited = {r["record"]["request"]["event_id"]: orjson.dumps(r["record"]["decision"], option=orjson.OPT_SORT_KEYS)
               for r in audit if r["kind"] == "decision"}
    assert audited == {rid: v.pop() for rid, v in versions.items()}
    assert all("route_pending" in r["record"] for r in audit if r["kind"] == "decision")
    assert f"resontinex_decisions_resumed_total {float(len(before))}".encode() in metrics
