"""Seed 001's circuit breaker on the real broker: processing errors open it (every decision
goes to review, `circuit_open` alert, audited), and it closes once they leave the window."""

from __future__ import annotations

import re
import time
from pathlib import Path

import orjson
import pytest

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

WINDOW_S = 8  # long enough that the errors are still in the window when the next request comes, on a loaded CI machine


def _request(event_id: str, tenant: str) -> tuple[bytes, bytes]:
    return tenant.encode(), orjson.dumps({"event_id": event_id, "tenant": tenant,
                                          "signals": {"alignment_score": 0.95, "epistemic_risk": 0.05,
                                                      "confidence_band": 0.05}})


def _decision(bootstrap: str, request_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [d for *_, d in run(read_all(bootstrap, "decisions", settle_s=0.3)) if d["request_id"] == request_id]
        if found:
            return found[0]
    raise AssertionError(f"no decision for {request_id}")


def _gauge(worker, name: str) -> float:
    _, body = worker.get("/metrics")
    match = re.search(rb"^%s ([-0-9.e+]+)$" % name.encode(), body, re.M)
    return float(match.group(1)) if match else -1.0


def test_processing_errors_open_the_circuit_and_it_closes_when_they_stop(broker, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "trust_gate.yaml").write_text((REPO / "config" / "trust_gate.yaml").read_text() + (
        f"circuit_breaker: {{open_rate: 0.5, close_rate: 0.1, window_s: {WINDOW_S}, min_events: 10}}\n"))
    worker = start_worker(broker.bootstrap, tmp_path / "w", env={"RESONTINEX_CONFIG_DIR": str(config),
                                                                 "RESONTINEX_FAULT_KEY": "faulty"})
    try:
        worker.wait_ready()
        assert _decision_after(broker.bootstrap, "before", worker)["verb"] == "execute"

        run(produce(broker.bootstrap, "decision-requests", [_request(f"f-{i}", "faulty") for i in range(20)]))
        dead = run(read_all(broker.bootstrap, "dead-letters", expect=20))
        assert {rec["error"]["code"] for *_, rec in dead} == {"processing_error"}
        deadline = time.monotonic() + 10
        while _gauge(worker, "resontinex_circuit_open") != 1.0:
            assert time.monotonic() < deadline, "the circuit did not open"
            time.sleep(0.2)
        held = _decision_after(broker.bootstrap, "while-open", worker)
        assert held["verb"] == "review" and held["trust"]["decision"] == "execute"
        assert "circuit_open" in [r["code"] for r in held["reasons"]]

        time.sleep(WINDOW_S + 1)  # the errors leave the window
        again = _decision_after(broker.bootstrap, "after", worker)
        assert again["verb"] == "execute" and "circuit_open" not in [r["code"] for r in again["reasons"]]
        assert _gauge(worker, "resontinex_circuit_open") == 0.0
    finally:
        worker.stop()
    alerts = [a for *_, a in run(read_all(broker.bootstrap, "alerts", settle_s=1.0))]
    assert [a["kind"] for a in alerts if a["kind"].startswith("circuit_")] == ["circuit_open", "circuit_closed"]
    opened = next(a for a in alerts if a["kind"] == "circuit_open")
    assert opened["tenant"] == "_system" and opened["severity"] == "critical" and opened["details"]["error_rate"] >= 0.5
    audited = [r["record"]["alert"]["kind"] for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=1.0))
               if r["kind"] == "alert"]
    assert "circuit_open" in audited and "circuit_closed" in audited


def _decision_after(bootstrap: str, request_id: str, _worker) -> dict:
    run(produce(bootstrap, "decision-requests", [_request(request_id, "acme")]))
    return _decision(bootstrap, request_id)
