"""Text-only decision requests through topics: the core role sends the text to the
trajectory group and decides with the risk its entropy gives, or after a timeout without it."""

from __future__ import annotations

import orjson
import pytest

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

FLUENT = "To reset your password, open the settings page and follow the instructions sent to your email."
SCRAMBLED = "email. settings the your open password, reset follow To page instructions and sent the to"


def _request(event_id: str, text: str, tenant: str = "acme") -> tuple[bytes, bytes]:
    return tenant.encode(), orjson.dumps({"event_id": event_id, "tenant": tenant, "text": text,
                                          "signals": {"alignment_score": 0.9, "confidence_band": 0.1}})


def test_the_decision_takes_its_risk_from_the_language_model(broker, tmp_path):
    scorer = start_worker(broker.bootstrap, tmp_path / "trajectory", role="trajectory")
    core = start_worker(broker.bootstrap, tmp_path / "core")
    try:
        scorer.wait_ready(timeout_s=120)
        core.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", [_request("f-1", FLUENT), _request("s-1", SCRAMBLED)]))
        decisions = {d["request_id"]: d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=2))}
        results = {r["request_id"]: r for *_, r in run(read_all(broker.bootstrap, "trajectory-results", expect=2))}
        alerts = [a for *_, a in run(read_all(broker.bootstrap, "alerts", settle_s=1.0))]
        everything = [r for *_, r in run(read_all(broker.bootstrap, "audit", settle_s=1.5))]
        audit = [r for r in everything if r["kind"] == "decision"]
    finally:
        core.stop()
        scorer.stop()
    fluent, scrambled = decisions["f-1"], decisions["s-1"]
    assert fluent["trust"]["score"] > scrambled["trust"]["score"], (fluent, scrambled)
    assert fluent["verb"] == "execute"
    for d in (fluent, scrambled):
        assert "risk_from_text" in [r["code"] for r in d["reasons"]]
    assert [(a["kind"], a["source_event_id"]) for a in alerts if a["kind"] == "quality_check_failed"] == [
        ("quality_check_failed", results["s-1"]["request_event_id"])]
    audited_alerts = [r["record"]["alert"]["kind"] for r in everything if r["kind"] == "alert"]
    assert audited_alerts.count("quality_check_failed") == 1  # the trajectory role's alert, in the core's chain
    recorded = {r["record"]["request"]["event_id"]: r["record"]["request"] for r in audit}
    for rid in ("f-1", "s-1"):
        request, result = recorded[rid], results[rid]
        assert request["trajectory"]["result_id"] == result["event_id"]
        assert request["trajectory"]["mean_entropy"] == result["mean_entropy"]
        expected = min(1.0, max(0.0, (result["mean_entropy"] - 2.0) / 4.0))  # config/trajectory.yaml's mapping
        assert request["signals"]["epistemic_risk"] == pytest.approx(expected)


def test_with_no_trajectory_group_a_text_only_request_is_held_back_after_the_timeout(broker, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "trajectory.yaml").write_text("fusion_timeout_s: 2\n")
    core = start_worker(broker.bootstrap, tmp_path / "core", env={"RESONTINEX_CONFIG_DIR": str(config)})
    try:
        core.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", [_request("t-1", FLUENT, tenant="initech")]))
        (*_, decision), = run(read_all(broker.bootstrap, "decisions", expect=1, timeout_s=30))
        forwarded = run(read_all(broker.bootstrap, "trajectory-requests", expect=1))
    finally:
        core.stop()
    assert decision["verb"] in ("defer", "abort") and "text_risk_timeout" in [r["code"] for r in decision["reasons"]]
    assert forwarded[0][3]["request_id"] == "t-1" and forwarded[0][3]["text"] == FLUENT
