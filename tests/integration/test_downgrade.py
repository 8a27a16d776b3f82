"""A tripwire downgrade on the real broker switches the tenant to its configured mode:
while it holds, a large token estimate and a trust score under the mode's raised floor
go to review with the mode's reasons; after `resontinex budget reset` they execute."""

from __future__ import annotations

import json
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
budget_tripwire: {breach_threshold: 12.0, consecutive_limit: 3, auto_recovery: false, downgrade_mode: economy}
downgrade_modes:
  economy: {max_estimate_tokens: 2000, trust_floor: 0.75}
budgets:
  - {tenant: "*", period: hour, usd: 1000000.0}
"""
CONFIDENT = {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}  # score 0.9
MIDDLING = {"alignment_score": 0.7, "epistemic_risk": 0.35, "confidence_band": 0.3}  # score 0.683: above 0.60, below 0.75


def _cost(event_id: str, tokens: int, ts: str) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": "zeta", "workflow": "default", "provider": "p", "model": "m",
            "input_tokens": tokens // 2, "output_tokens": tokens - tokens // 2, "cost_usd": 0.01, "latency_ms": 100.0,
            "ts": ts}
    return b"zeta", orjson.dumps(body)


def _request(event_id: str, signals: dict[str, float], tokens: int) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": "zeta", "signals": signals, "estimate": {"cost_usd": 0.01, "tokens": tokens}}
    return b"zeta", orjson.dumps(body)


def _decide(bootstrap: str, requests: list[tuple[bytes, bytes]], seen: int) -> list[dict]:
    run(produce(bootstrap, "decision-requests", requests))
    decisions = {d["request_id"]: d for *_, d in run(read_all(bootstrap, "decisions", expect=seen + len(requests)))}
    return [decisions[orjson.loads(value)["event_id"]] for _, value in requests]


def _downgraded(worker) -> bool:
    status, body = worker.get("/budget/status")
    assert status == 200, body
    return next(row for row in json.loads(body)["budgets"] if row["scope"] == "zeta")["downgraded"]


def _codes(decision: dict) -> list[str]:
    """The budget's reason codes (the trust gate notes the monitor tier too)."""
    return [r["code"] for r in decision["reasons"] if r["component"] == "budget"]


def test_a_downgraded_tenant_runs_in_economy_mode_until_reset(broker, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "energy_governance.yaml").write_text(ENERGY)
    worker = start_worker(broker.bootstrap, tmp_path, env={"RESONTINEX_CONFIG_DIR": str(config)})
    hour = 3600.0
    now = period_start("hour", time.time())
    try:
        worker.wait_ready()
        # four closed hourly windows, 1000 → 1200 → 1400 → 1600 tokens (three breaches), then the current one
        costs = [_cost(f"tw-{i}", n, ms_to_ts(round((now - (4 - i) * hour + 60) * 1000)))
                 for i, n in enumerate([1000, 1200, 1400, 1600])]
        costs.append(_cost("tw-now", 10, ms_to_ts(round((now + 60) * 1000))))
        run(produce(broker.bootstrap, "costs", costs))
        alerts = run(read_all(broker.bootstrap, "alerts", expect=1))
        assert [a["kind"] for *_, a in alerts] == ["tripwire_downgrade"]

        big, middling = _decide(broker.bootstrap, [_request("z-big", CONFIDENT, 5000),
                                                   _request("z-mid", MIDDLING, 100)], 0)
        assert (big["verb"], big["budget"]["status"], big["budget"]["mode"]) == ("review", "downgraded", "economy")
        assert _codes(big) == ["tripwire_downgraded", "downgrade_tokens_over_limit"]
        held = next(r["message"] for r in big["reasons"] if r["code"] == "downgrade_tokens_over_limit")
        assert "economy mode" in held and "limit of 2000" in held
        assert middling["verb"] == "review" and middling["trust"]["decision"] == "execute"
        assert 0.60 < middling["trust"]["score"] < 0.75 and not middling["trust"]["floor_violation"]
        assert _codes(middling) == ["tripwire_downgraded", "downgrade_trust_floor"]

        done = subprocess.run(
            [sys.executable, "-m", "resontinex.app.cli", "budget", "reset", "--bootstrap", broker.bootstrap, "--tenant", "zeta",
             "--operator", "ops-1", "--reason", "launch traffic approved"],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 30
        while _downgraded(worker):
            assert time.monotonic() < deadline, "the reset was not applied within 30 s"
            time.sleep(0.3)

        # the same requests again (the insight cache must not carry the downgrade over)
        big, middling = _decide(broker.bootstrap, [_request("z-big-2", CONFIDENT, 5000),
                                                   _request("z-mid-2", MIDDLING, 100)], 2)
        for decision in (big, middling):
            assert (decision["verb"], decision["budget"]["status"], decision["budget"]["downgraded"]) \
                == ("execute", "ok", False), decision
            assert _codes(decision) == []
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=1.0))]
        verbs = {r["record"]["decision"]["request_id"]: r["record"]["decision"]["verb"]
                 for r in audit if r["kind"] == "decision"}
        assert verbs == {"z-big": "review", "z-mid": "review", "z-big-2": "execute", "z-mid-2": "execute"}
    finally:
        worker.stop()
