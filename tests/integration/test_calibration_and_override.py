"""Labelled outcomes fit the tenant's calibration; break-glass overrides are decided and audited."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import orjson
import pytest

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration


def _request(event_id: str, tenant: str, a: float, r: float, c: float, **extra) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant,
            "signals": {"alignment_score": a, "epistemic_risk": r, "confidence_band": c}, **extra}
    return tenant.encode(), orjson.dumps(body)


def _outcome(event_id: str, tenant: str, decision_id: str, label: bool | None) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "tenant": tenant, "decision_id": decision_id, "success": bool(label),
            "actual_cost_usd": 0.01, "actual_latency_ms": 120.0, "actual_reputation": 90.0}
    if label is not None:
        body["label"] = label
    return tenant.encode(), orjson.dumps(body)


def test_labelled_outcomes_calibrate_later_decisions(broker, tmp_path):
    rng = random.Random(11)
    worker = start_worker(broker.bootstrap, tmp_path)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests",
                    [_request(f"c-{i}", "cal", rng.random(), rng.random(), rng.random()) for i in range(150)]))
        first = run(read_all(broker.bootstrap, "decisions", expect=150))
        assert all(d["trust"]["calibrated_score"] is None for *_, d in first)
        outcomes = [_outcome(f"o-{i}", "cal", d["event_id"], rng.random() < d["trust"]["raw_score"])
                    for i, (*_, d) in enumerate(first)]
        outcomes.append(_outcome("o-unknown", "cal", "d-no-such-decision", True))
        run(produce(broker.bootstrap, "outcomes", outcomes))
        dead = run(read_all(broker.bootstrap, "dead-letters", expect=1))
        assert [rec["error"]["code"] for *_, rec in dead] == ["unknown_decision"]
        assert dead[0][3]["source_topic"] == "outcomes"

        deadline, i = time.monotonic() + 60, 0
        while True:
            i += 1
            run(produce(broker.bootstrap, "decision-requests", [_request(f"later-{i}", "cal", 0.7, 0.3, 0.3)]))
            later = [d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=150 + i, settle_s=0.5))
                     if d["request_id"] == f"later-{i}"]
            if later and later[0]["trust"]["calibrated_score"] is not None:
                break
            assert time.monotonic() < deadline, "no calibrated decision within 60 s"
        calibrated = later[0]["trust"]["calibrated_score"]
        assert 0.0 <= calibrated <= 1.0
        _, body = worker.get("/metrics")
        assert b'trust_gate_calibration_fits_total{result="fitted"}' in body
    finally:
        worker.stop()


def test_break_glass_override_executes_and_is_audited(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", [
            _request("bg-1", "ops", 0.05, 0.95, 0.9, override={"operator_id": "oncall-7", "reason": "incident 4711"}),
            _request("bg-2", "ops", 0.95, 0.05, 0.05, override={"operator_id": "oncall-7", "reason": "not needed"}),
            _request("bg-3", "ops", 0.05, 0.95, 0.9, override={"operator_id": " ", "reason": "blank operator"}),
        ]))
        decisions = {d["request_id"]: d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=2))}
        dead = run(read_all(broker.bootstrap, "dead-letters", expect=1, settle_s=0.5))
        audit = run(read_all(broker.bootstrap, "audit", settle_s=1))
    finally:
        worker.stop()
    assert decisions["bg-1"]["verb"] == "execute" and decisions["bg-1"]["trust"]["decision"] == "abort"
    assert any(r["code"] == "break_glass" and "oncall-7" in r["message"] for r in decisions["bg-1"]["reasons"])
    assert decisions["bg-2"]["verb"] == "execute"
    assert any(r["code"] == "break_glass_refused" for r in decisions["bg-2"]["reasons"])
    overrides = {rec["record"]["request_id"]: rec["record"] for *_, rec in audit if rec["kind"] == "override"}
    assert overrides["bg-1"]["applied"] is True and overrides["bg-1"]["operator_id"] == "oncall-7"
    assert overrides["bg-1"]["original_decision"] == "abort" and overrides["bg-1"]["reason"] == "incident 4711"
    assert overrides["bg-2"]["applied"] is False
    assert "bg-3" not in decisions  # a blank operator id is invalid input: a dead letter
    assert [(rec["source_topic"], rec["error"]["code"]) for *_, rec in dead] == [("decision-requests", "invalid_value")]


def test_with_decide_on_calibrated_the_calibrated_score_sets_the_verb_and_reproduces(broker, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    packaged = (REPO / "config" / "trust_gate.yaml").read_text()
    (config / "trust_gate.yaml").write_text(packaged.replace("min_samples: 50", "min_samples: 10")
                                            + "decide_on: calibrated\n")
    worker = start_worker(broker.bootstrap, tmp_path / "w", env={"RESONTINEX_CONFIG_DIR": str(config)})
    try:
        worker.wait_ready()
        rng = random.Random(5)
        run(produce(broker.bootstrap, "decision-requests",
                    [_request(f"c-{i}", "inv", rng.random(), rng.random(), rng.random()) for i in range(60)]))
        first = sorted((d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=60))),
                       key=lambda d: d["trust"]["raw_score"])
        assert all(d["trust"]["decided_on"] == "raw" for d in first)  # no calibration yet
        # the lowest scores succeeded, the rest did not: isotonic pools that to ~0.2 everywhere
        run(produce(broker.bootstrap, "outcomes", [_outcome(f"o-{i}", "inv", d["event_id"], i < 12)
                                                   for i, d in enumerate(first)]))
        deadline, i = time.monotonic() + 60, 0
        while True:
            i += 1
            run(produce(broker.bootstrap, "decision-requests", [_request(f"later-{i}", "inv", 0.95, 0.05, 0.05)]))
            (later,) = [d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=60 + i, settle_s=0.5))
                        if d["request_id"] == f"later-{i}"]
            if later["trust"]["calibrated_score"] is not None:
                break
            assert later["verb"] == "execute"  # decided on its raw score until the tenant is calibrated
            assert time.monotonic() < deadline, "no calibrated decision within 60 s"
    finally:
        worker.stop()
    trust = later["trust"]
    assert trust["decided_on"] == "calibrated"
    assert trust["score"] > 0.9 and trust["calibrated_score"] < 0.25  # a raw pass, a calibrated block
    assert trust["tier"] == "block" and later["verb"] == "abort"
    assert any(r["code"] == "tier_block" and r["message"].startswith("calibrated trust score") for r in later["reasons"])
    done = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "reproduce", "--bootstrap", broker.bootstrap,
                           "--config-dir", str(config), "--output-format", "json", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["decisions"] == 60 + i and report["differ_under_recorded_config"] == 0 and report["differ_today"] == 0
