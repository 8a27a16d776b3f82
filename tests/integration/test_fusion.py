"""Text-only decision requests through topics: the core role sends the text to the
trajectory group and decides with the risk its entropy gives, or after a timeout without it,
or at once when no trajectory group is running."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

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
        _wait_members(core, lambda n: n >= 1)  # else the core would not wait for a score
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


def _group_members(worker) -> float:
    status, body = worker.get("/metrics")
    match = re.search(rb"^resontinex_trajectory_group_members ([-0-9.e+]+)$", body, re.M) if status == 200 else None
    return float(match.group(1)) if match else -1.0


def _wait_members(worker, wanted: Callable[[float], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not wanted(members := _group_members(worker)):
        assert time.monotonic() < deadline, f"the core sees {members} trajectory group member(s)"
        time.sleep(0.2)


def _reason(decision: dict, code: str) -> dict:
    return next(r for r in decision["reasons"] if r["code"] == code)


def test_with_no_trajectory_group_a_text_only_request_is_held_back_at_once(broker, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "trajectory.yaml").write_text("fusion_timeout_s: 60\n")
    core = start_worker(broker.bootstrap, tmp_path / "core", env={"RESONTINEX_CONFIG_DIR": str(config)})
    try:
        core.wait_ready()
        _wait_members(core, lambda n: n == 0)
        sent = time.monotonic()
        run(produce(broker.bootstrap, "decision-requests", [_request("t-1", FLUENT, tenant="initech")]))
        (*_, decision), = run(read_all(broker.bootstrap, "decisions", expect=1, timeout_s=30, settle_s=0.5))
        waited = time.monotonic() - sent
        forwarded = run(read_all(broker.bootstrap, "trajectory-requests", settle_s=1.0))
    finally:
        core.stop()
    assert waited < 10, f"decided after {waited:.1f} s, as if it had waited for a score"  # the timeout is 60 s
    assert forwarded == []
    assert decision["verb"] in ("defer", "abort")
    reason = _reason(decision, "text_scoring_unavailable")
    assert "defer at least" in reason["message"] and "deferred" not in reason["message"]


def test_a_trajectory_group_that_never_answers_holds_the_request_back_after_the_timeout(broker, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "trajectory.yaml").write_text("fusion_timeout_s: 2\n")

    async def join() -> AIOKafkaConsumer:  # a member of the trajectory group that never scores anything
        consumer = AIOKafkaConsumer("trajectory-requests", bootstrap_servers=broker.bootstrap,
                                    group_id="resontinex-trajectory")
        await consumer.start()
        await consumer.getmany(timeout_ms=500)
        return consumer

    loop = asyncio.new_event_loop()  # runs in a thread of its own, so the member keeps its heartbeats
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stalled = asyncio.run_coroutine_threadsafe(join(), loop).result(30)
    core = start_worker(broker.bootstrap, tmp_path / "core", env={"RESONTINEX_CONFIG_DIR": str(config)})
    try:
        core.wait_ready()
        _wait_members(core, lambda n: n >= 1)
        run(produce(broker.bootstrap, "decision-requests", [_request("t-1", FLUENT, tenant="initech")]))
        (*_, decision), = run(read_all(broker.bootstrap, "decisions", expect=1, timeout_s=30))
        forwarded = run(read_all(broker.bootstrap, "trajectory-requests", expect=1))
    finally:
        core.stop()
        asyncio.run_coroutine_threadsafe(stalled.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert decision["verb"] in ("defer", "abort")
    assert "defer at least" in _reason(decision, "text_risk_timeout")["message"]
    assert forwarded[0][3]["request_id"] == "t-1" and forwarded[0][3]["text"] == FLUENT
