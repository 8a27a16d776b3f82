"""Budgets on the real broker: costs drive a tenant through ok → review → braked → blocked;
a SIGKILLed worker's spend table still equals the exact sum of the distinct costs; the
tripwire downgrades and an operator resets it."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from resontinex.agents.budget import period_start
from resontinex.schemas import ms_to_ts

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

ENERGY = """
budget_limits: {hard_limit_percentage: 95, auto_review_threshold: 85, approval_threshold: 10000}
budget_tripwire: {breach_threshold: 12.0, consecutive_limit: 3, auto_recovery: false}
recovery: {insight_cache_ttl_s: 30, retry_base_s: 30, retry_max_s: 3600}
budgets:
  - {tenant: acme, period: day, usd: 100.0}
  - {tenant: "*", period: hour, usd: 1000000.0}
"""


def _config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    d.mkdir()
    (d / "energy_governance.yaml").write_text(ENERGY)
    return d


def _cost(event_id: str, tenant: str, usd: float, tokens: int = 100, ts: str | None = None,
          workflow: str = "default") -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant, "workflow": workflow, "provider": "p", "model": "m",
            "input_tokens": tokens // 2, "output_tokens": tokens - tokens // 2, "cost_usd": usd, "latency_ms": 100.0}
    if ts is not None:
        body["ts"] = ts
    return tenant.encode(), orjson.dumps(body)


def _request(event_id: str, tenant: str, usd: float | None = None) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant,
            "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
    if usd is not None:
        body["estimate"] = {"cost_usd": usd}
    return tenant.encode(), orjson.dumps(body)


def _budget(worker, scope: str) -> dict | None:
    status, body = worker.get("/budget/status")
    assert status == 200, body
    return next((row for row in json.loads(body)["budgets"] if row["scope"] == scope), None)


def _wait_spent(worker, scope: str, usd: float, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        row = _budget(worker, scope)
        if row is not None and abs(row["spent_usd"] - usd) < 1e-9:
            return row
        assert time.monotonic() < deadline, f"spend of {scope} is {row and row['spent_usd']}, expected {usd}"
        time.sleep(0.3)


def _costs_consumed(worker) -> float:
    status, body = worker.get("/metrics")
    match = re.search(rb'resontinex_events_total\{topic="costs"\} ([0-9.e+]+)', body) if status == 200 else None
    return float(match.group(1)) if match else 0.0


def _decide(bootstrap: str, request: tuple[bytes, bytes], seen: int) -> dict:
    run(produce(bootstrap, "decision-requests", [request]))
    request_id = orjson.loads(request[1])["event_id"]
    decisions = run(read_all(bootstrap, "decisions", expect=seen + 1))
    return next(d for *_, d in decisions if d["request_id"] == request_id)


def test_costs_drive_a_tenant_from_ok_to_blocked(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path, env={"RESONTINEX_CONFIG_DIR": str(_config_dir(tmp_path))})
    try:
        worker.wait_ready()
        verbs = []
        # (cost, estimate, status, verb): 60 %; exactly 85 %; exactly 95 %; once braked the
        # estimate counts × 0.6: 98 + 3 = 101 %, twice; then a small request: 98.6 %, and the
        # brake holds
        steps = [(50.0, 10.0, "ok", "execute"), (30.0, 5.0, "review", "review"),
                 (10.0, 5.0, "braked", "abort"), (8.0, 5.0, "blocked", "defer"), (0.0, 5.0, "blocked", "defer"),
                 (0.0, 1.0, "braked", "abort")]
        spent = 0.0
        for i, (cost, estimate, status, verb) in enumerate(steps):
            if cost:
                run(produce(broker.bootstrap, "costs", [_cost(f"c-{i}", "acme", cost)]))
                spent += cost
            _wait_spent(worker, "acme", spent)
            decision = _decide(broker.bootstrap, _request(f"r-{i}", "acme", estimate), i)
            budget = decision["budget"]
            assert (budget["status"], decision["verb"]) == (status, verb), decision
            assert budget["scope"] == "acme" and budget["period"] == "day"
            assert budget["remaining_usd"] == pytest.approx(100.0 - spent)
            verbs.append(decision["verb"])
            if status == "blocked":  # the budget has been exhausted for less than 30 s
                assert budget["retry_after_s"] == 30.0 and budget["blocked_since"] is not None
                assert "budget_exceeded" in [r["code"] for r in decision["reasons"]]
        assert verbs == ["execute", "review", "abort", "defer", "defer", "abort"]
        alerts = [a for *_, a in run(read_all(broker.bootstrap, "alerts", settle_s=1.0))]
        kinds = [a["kind"] for a in alerts if a["tenant"] == "acme"]
        assert kinds == ["budget_warning", "emergency_brake", "budget_blocked"], kinds  # one per transition
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=1.0))]
        changes = [r["record"]["budget"]["to"] for r in audit if r["kind"] == "state_change"]
        assert changes == ["review", "braked", "blocked"]
        row = _budget(worker, "acme")
        assert row["status"] == "braked" and row["utilization"] == 0.98  # on spend so far
        _, metrics = worker.get("/metrics")
        assert b'resontinex_budget_status{period="day",scope="acme"} 2.0' in metrics
    finally:
        worker.stop()


def test_spend_is_exact_after_a_sigkill(broker, tmp_path):
    config = {"RESONTINEX_CONFIG_DIR": str(_config_dir(tmp_path))}
    rng = random.Random(7)
    tenants = [f"t{i}" for i in range(8)]
    costs = [(f"k-{i}", rng.choice(tenants), round(rng.uniform(0.0001, 2.0), 6)) for i in range(12_000)]
    repeats = [costs[i] for i in rng.sample(range(len(costs)), 500)]  # producer retries: same event ids
    expected: dict[str, int] = {}
    for _, tenant, usd in costs:
        expected[tenant] = expected.get(tenant, 0) + round(usd * 1_000_000)
    worker = start_worker(broker.bootstrap, tmp_path / "a", env=config)
    try:
        worker.wait_ready()
        # the stream's first part, then a kill as soon as it is being folded; the rest comes after
        # the kill (sent all at once, a fast worker could fold every record before the kill)
        first = 8_000
        run(produce(broker.bootstrap, "costs", [_cost(e, t, u) for e, t, u in costs[:first]]))
        deadline = time.monotonic() + 60
        while _costs_consumed(worker) == 0:  # kill it mid-stream
            assert time.monotonic() < deadline, "the worker consumed no cost within 60 s"
            time.sleep(0.02)
        worker.kill()
        run(produce(broker.bootstrap, "costs", [_cost(e, t, u) for e, t, u in costs[first:] + repeats]))
        run(produce(broker.bootstrap, "costs", [_cost(e, t, u) for e, t, u in repeats]))  # retried again later
    finally:
        worker.stop()
    worker = start_worker(broker.bootstrap, tmp_path / "b", env=config, web_port=worker.web_port)
    try:
        worker.wait_ready()
        for tenant in tenants:
            _wait_spent(worker, tenant, expected[tenant] / 1_000_000, timeout_s=90)
    finally:
        worker.stop()


def test_tripwire_downgrades_after_three_breaches_and_an_operator_resets_it(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path, env={"RESONTINEX_CONFIG_DIR": str(_config_dir(tmp_path))})
    hour = 3600.0
    now = period_start("hour", time.time())
    # five closed hourly windows: 1000 → 1200 → 1400 → 1600 tokens (three breaches), then the current one
    tokens = [1000, 1200, 1400, 1600]
    try:
        worker.wait_ready()
        items = [_cost(f"tw-{i}", "zeta", 0.01, tokens=n, ts=ms_to_ts(round((now - (4 - i) * hour + 60) * 1000)))
                 for i, n in enumerate(tokens)]
        items.append(_cost("tw-now", "zeta", 0.01, tokens=10, ts=ms_to_ts(round((now + 60) * 1000))))
        run(produce(broker.bootstrap, "costs", items))
        alerts = run(read_all(broker.bootstrap, "alerts", expect=1))
        assert [a["kind"] for *_, a in alerts] == ["tripwire_downgrade"]
        assert alerts[0][3]["details"]["consecutive"] == 3
        decision = _decide(broker.bootstrap, _request("z-1", "zeta", 0.01), 0)
        assert decision["budget"]["status"] == "downgraded" and decision["budget"]["mode"] == "economy"
        assert "tripwire_downgraded" in [r["code"] for r in decision["reasons"]]

        done = subprocess.run(
            [sys.executable, "-m", "resontinex.app.cli", "budget", "reset", "--bootstrap", broker.bootstrap, "--tenant", "zeta",
             "--operator", "ops-1", "--reason", "launch traffic approved"],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        alerts = run(read_all(broker.bootstrap, "alerts", expect=2))
        assert alerts[-1][3]["kind"] == "tripwire_reset" and alerts[-1][3]["details"]["operator_id"] == "ops-1"
        deadline = time.monotonic() + 30
        while _budget(worker, "zeta")["downgraded"]:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        decision = _decide(broker.bootstrap, _request("z-2", "zeta", 0.02), 1)
        assert decision["budget"]["status"] == "ok" and decision["verb"] == "execute"
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=1.0))]
        changes = [r["record"]["tripwire"]["change"] for r in audit if r["kind"] == "state_change"]
        assert changes == ["downgraded", "reset"]
    finally:
        worker.stop()


def test_identical_request_reuses_the_earlier_decision(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path, env={"RESONTINEX_CONFIG_DIR": str(_config_dir(tmp_path))})
    try:
        worker.wait_ready()
        first = _decide(broker.bootstrap, _request("same-1", "acme", 1.0), 0)
        second = _decide(broker.bootstrap, _request("same-2", "acme", 1.0), 1)
        assert second["event_id"] != first["event_id"] and second["verb"] == first["verb"]
        assert second["reasons"][-1]["code"] == "insight_cache"
        _, metrics = worker.get("/metrics")
        assert b'resontinex_insight_cache_total{result="hit"} 1.0' in metrics
    finally:
        worker.stop()
