"""The coordination agent end to end: a real core worker, the real `anthropic` SDK inside it
talking to the local Messages-API stand-in on loopback, requests and results on the
embedded broker.

One worker life covers the strategies, γ/ω on fixed judge scores, the costs on `costs`, a
braked tenant, a dead letter, a repeated request and the baseline cache; then the worker
is SIGKILLed mid-run and a new one answers the request once, its costs counted once; then
a 429 storm opens the model's breaker (alerted, audited) and a request is refused at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from resontinex.app.standin import ThreadedStandIn
from resontinex.schemas import Alert, Cost, CoordinationResult

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

KEY = "sk-ant-integration-secret-4242"
MODEL = "claude-haiku-4-5"
COORDINATION = """
rate_limit: {requests_per_minute: 6000, burst: 50}
retries: {max_attempts: 3, base_s: 0.05, max_s: 2.0}
breaker: {failures: 3, open_s: 600, successes: 2}
timeout_s: 10
"""
ENERGY = """
budgets:
  - {tenant: broke, period: day, usd: 1.0}
  - {tenant: "*", period: day, usd: 1000.0}
"""


@pytest.fixture
def standin() -> Iterator[ThreadedStandIn]:
    with ThreadedStandIn() as server:  # the worker is another process
        yield server


def _request(event_id: str, tenant: str, task: str, agents: int, strategy: str, **extra: Any) -> tuple[bytes, bytes]:
    return tenant.encode(), orjson.dumps({"event_id": event_id, "tenant": tenant, "task": task,
                                          "num_agents": agents, "strategy": strategy, **extra})


def _results(bootstrap: str, expect: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for *_, r in run(read_all(bootstrap, "coordination-results", expect=expect, settle_s=1.0, timeout_s=90)):
        out.setdefault(r["request_event_id"], []).append(r)
    return out


def _wait(check, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _json(worker, path: str) -> Any:
    status, body = worker.get(path)
    assert status == 200, body
    return json.loads(body)


def test_teams_answered_on_kafka_costs_governed_crash_safe_and_breaker(broker, standin, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "coordination.yaml").write_text(COORDINATION)
    (config / "energy_governance.yaml").write_text(ENERGY)
    env = {"RESONTINEX_CONFIG_DIR": str(config), "ANTHROPIC_BASE_URL": standin.url, "ANTHROPIC_API_KEY": KEY}
    b = broker.bootstrap
    # sequential, 2 agents: the team's answer is agent 2's; the baselines are two takes alone
    standin.control("config", {"judge_rules": [{"match": "alone take 1", "score": 0.6},
                                               {"match": "alone take 2", "score": 0.8},
                                               {"match": "agent 2 of 2", "score": 0.84}]})
    worker = start_worker(b, tmp_path / "w1", env=env)
    try:
        worker.wait_ready(timeout_s=90)
        run(produce(b, "costs", [(b"broke", orjson.dumps({
            "event_id": "spend-1", "tenant": "broke", "workflow": "default", "provider": "p", "model": "m",
            "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.99, "latency_ms": 1.0}))]))
        _wait(lambda: any(r["scope"] == "broke" and r["status"] in ("braked", "blocked")
                          for r in _json(worker, "/budget/status")["budgets"]), "the broke tenant's spend")
        run(produce(b, "coordination-requests", [
            _request("seq", "acme", "Name two primes.", 2, "sequential"),
            _request("par", "acme", "Explain recursion.", 3, "parallel"),
            _request("deb", "globex", "Is zero even?", 2, "debate", rounds=1),
            _request("broke-1", "broke", "Name a colour.", 2, "parallel", model="claude-sonnet-4-5"),
            (b"acme", b'{"event_id": "bad", "tenant": "acme", "task": "x", "num_agents": 1, "strategy": "parallel"}'),
            _request("seq", "acme", "Name two primes.", 2, "sequential"),  # a producer retry: dropped
        ]))
        results = _results(b, expect=4)
        assert sorted(results) == ["broke-1", "deb", "par", "seq"] and all(len(v) == 1 for v in results.values())
        for [r] in results.values():
            CoordinationResult.model_validate(r)
        seq, par, deb, broke = (results[k][0] for k in ("seq", "par", "deb", "broke-1"))
        assert (seq["gamma"], round(seq["omega"], 9), seq["effective"], seq["emergence"]) == (1.2, 0.04, True, True)
        assert sorted(seq["baseline_qualities"]) == [0.6, 0.8] and seq["coordinated_quality"] == 0.84
        for r, agents, calls in ((seq, 2, 2 + 1 + 2 + 2), (par, 3, 3 + 1 + 1 + 3 + 3), (deb, 2, 2 + 2 + 1 + 1 + 2 + 2)):
            assert r["status"] == "ok" and r["errors"] == [] and len(r["responses"]) == agents, r
            assert r["calls"] == calls and not r["baseline_cached"] and 0.0 <= r["consensus_rate"] <= 1.0
        assert broke["status"] == "failed" and broke["errors"][0]["code"] in ("budget_braked", "budget_blocked")
        assert broke["cost_usd"] == 0 and broke["calls"] == 0
        assert not [e for e in standin.control("log") if e["model"] == "claude-sonnet-4-5"]  # no call for it
        costs = [c for *_, c in run(read_all(b, "costs", expect=1 + 7 + 11 + 10))]
        for c in costs:
            Cost.model_validate(c)
        for r in (seq, par, deb):
            mine = [c for c in costs if c["provider"] == "anthropic" and c["tenant"] == r["tenant"]
                    and c["event_id"] in _cost_ids(r)]
            assert len(mine) == r["calls"] and sum(c["cost_usd"] for c in mine) == pytest.approx(r["cost_usd"])
        dead = [d for *_, d in run(read_all(b, "dead-letters", expect=1))]
        assert [d["error"]["code"] for d in dead] == ["out_of_range"]

        # the same task again: the baselines come from the cache
        before = len(standin.control("log"))
        run(produce(b, "coordination-requests", [_request("seq-again", "acme", "Name two primes.", 2, "sequential")]))
        again = _wait(lambda: _results(b, expect=5).get("seq-again"), "the repeated task's result")[0]
        assert again["baseline_cached"] and again["calls"] == 3 and len(standin.control("log")) - before == 3
        status = _json(worker, "/coordination/status")
        assert status["tenants"]["acme"]["runs"] == 3 and status["breakers"] == {MODEL: "closed"}
        assert status["embedding_model"] == "all-MiniLM-L6-v2"
        _, metrics = worker.get("/metrics")
        assert b'resontinex_coordination_baseline_cache_total{result="hit"} 1.0' in metrics
        assert b'resontinex_coordination_calls_total{model="claude-haiku-4-5",outcome="ok"}' in metrics

        # SIGKILL mid-run: the next worker runs the request again, once; its costs count once
        standin.control("config", {"latency_ms": 1500})
        made = len(standin.control("log"))
        run(produce(b, "coordination-requests", [_request("killed", "initech", "Sort three numbers.", 2, "parallel")]))
        _wait(lambda: len(standin.control("log")) > made, "a call of the run to be killed")
        worker.kill()
    finally:
        worker.stop()
    standin.control("reset", {"latency_ms": 0})
    worker = start_worker(b, tmp_path / "w2", env=env)
    try:
        worker.wait_ready(timeout_s=90)
        killed = _wait(lambda: _results(b, expect=6).get("killed"), "the killed run's result", timeout_s=120)
        assert len(killed) == 1 and killed[0]["status"] == "ok"
        row = _wait(lambda: next((r for r in _json(worker, "/budget/status")["budgets"]
                                  if r["scope"] == "initech" and r["spent_usd"] > 0), None), "initech's spend")
        time.sleep(2.0)  # anything counted twice would have landed by now
        row = next(r for r in _json(worker, "/budget/status")["budgets"] if r["scope"] == "initech")
        assert row["spent_usd"] == pytest.approx(killed[0]["cost_usd"], abs=1e-6)

        # a 429 storm: the breaker opens (alerted and audited), the next request is refused at once
        standin.control("config", {"faults": [{"status": 429, "count": -1, "retry_after": 0}]})
        run(produce(b, "coordination-requests", [_request("storm", "acme", "Name a prime.", 2, "parallel")]))
        storm = _wait(lambda: _results(b, expect=7).get("storm"), "the storm's result")[0]
        # its two opening calls failed together: one on its last 429, or both, or one on the breaker it opened
        assert storm["status"] == "failed" and storm["errors"][0]["code"] in ("rate_limited", "circuit_open")
        alerts = [a for *_, a in run(read_all(b, "alerts", expect=1))]
        opened = [a for a in alerts if a["kind"] == "circuit_open"]
        assert len(opened) == 1 and opened[0]["tenant"] == "_system" and opened[0]["details"]["model"] == MODEL
        Alert.model_validate(opened[0])
        made = len(standin.control("log"))
        run(produce(b, "coordination-requests", [_request("refused", "acme", "Name a prime.", 2, "parallel")]))
        refused = _wait(lambda: _results(b, expect=8).get("refused"), "the refused request's result")[0]
        assert refused["status"] == "failed" and refused["errors"][0]["code"] == "circuit_open"
        assert len(standin.control("log")) == made  # no call went out
        audit = [a for *_, a in run(read_all(b, "audit", expect=1))]
        assert any(a["kind"] == "alert" and a["record"]["alert"]["event_id"] == opened[0]["event_id"] for a in audit)
        assert _json(worker, "/coordination/status")["breakers"] == {MODEL: "open"}
    finally:
        worker.stop()
    for log in tmp_path.glob("w*/worker-*.log"):
        assert KEY not in log.read_text(errors="replace")  # the key is never logged


def _cost_ids(result: dict) -> set[str]:
    from resontinex.agents.events import derived_id

    stages = [f"agent-{i}" for i in range(1, 11)] + [f"agent-{i}-r1" for i in range(1, 11)] + ["synthesis"] + \
        [f"baseline-{i}" for i in range(1, 11)] + [f"judge-team-{k}" for k in (1, 2)] + \
        [f"judge-baseline-{i}-{k}" for i in range(1, 11) for k in (1, 2)]
    return {derived_id("cc-", result["tenant"], result["request_event_id"], s) for s in stages}
