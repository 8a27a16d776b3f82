"""Enhancement governance end to end: a real core worker, submissions on `enhancements`,
telemetry from a real producer, transitions read back from `enhancement-events`, the
audit chain verified.

One enhancement goes through its whole life: validated and activated, its telemetry
degrades (a critical quality drop) → deactivated → cooldown (3 s in this config) → active
again, twice, and the third deactivation disables it for good. Beside it: a submission
that fails preflight (rejected, alerted), a bad record and a second submission under a
taken id (dead letters), a semi-automatic one that waits for `approve` on `control`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from resontinex.schemas import EnhancementEvent

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

CONFIG = """
telemetry: {window: PT1S, grace: PT0.3S}
monitor:
  interval: PT0.25S
  cooldown: {critical: PT3S, consecutive: PT3S, canary_failed: PT3S}
"""
GOOD = {"mandatory": 1.0, "proxy": 0.8, "alpha": 0.96, "sigma": 0.1, "governance": 0.9}


class TelemetryPump(threading.Thread):
    """Publishes one sample of `metrics` every `every_s` for `enhancement_id` (librdkafka
    producer, murmur2 as CONTRACT §1 asks) until stopped; `metrics` may change meanwhile."""

    def __init__(self, bootstrap: str, source: str, enhancement_id: str, metrics: dict[str, float],
                 every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
        self.source, self.enhancement_id, self.metrics, self.every_s = source, enhancement_id, metrics, every_s
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            self.producer.produce("telemetry", key=self.source.encode(), value=orjson.dumps({
                "event_id": f"t-{uuid.uuid4().hex}", "source": self.source, "metrics": dict(self.metrics),
                "enhancement_id": self.enhancement_id}))
            self.producer.poll(0)
            self.sent += 1
            time.sleep(self.every_s)
        self.producer.flush(10)

    def stop(self) -> None:
        self.stopped.set()
        self.join(15)


def _submission(enhancement_id: str, event_id: str, **extra: Any) -> tuple[bytes, bytes]:
    body = {"event_id": event_id, "enhancement_id": enhancement_id, "tenant": "acme", "kind": "prompt",
            "description": f"{enhancement_id}: a shorter system prompt", "payload": {"name": enhancement_id},
            "requirements": ["numpy>=2"], "thresholds": GOOD, "baseline": {"accuracy": 0.9},
            "canary_share": 1.0, "mode": "automatic", **extra}
    return enhancement_id.encode(), orjson.dumps(body)


def _events(bootstrap: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for *_, e in run(read_all(bootstrap, "enhancement-events", settle_s=0.5, timeout_s=30)):
        out.setdefault(e["enhancement_id"], []).append(e)
    return out


def _states(events: list[dict[str, Any]]) -> list[str]:
    return [e["to_state"] for e in events]


def _wait_for(bootstrap: str, enhancement_id: str, check, what: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = _events(bootstrap).get(enhancement_id, [])
        if check(_states(events)):
            return events
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {_states(_events(bootstrap).get(enhancement_id, []))}")


def test_an_enhancement_lives_its_whole_lifecycle_on_kafka(broker, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "enhancements.yaml").write_text(CONFIG)
    b = broker.bootstrap
    worker = start_worker(b, tmp_path / "w1", env={"RESONTINEX_CONFIG_DIR": str(config)})
    pump = None
    try:
        worker.wait_ready(timeout_s=90)
        run(produce(b, "enhancements", [
            _submission("concise-v1", "s-1"),
            _submission("too-risky", "s-2", thresholds={**GOOD, "mandatory": 0.9}),
            _submission("concise-v1", "s-3"),  # the id is taken: a dead letter
            (b"broken", b"{not json"),
            _submission("needs-ok", "s-4", mode="semi_automatic"),
        ]))
        events = _wait_for(b, "concise-v1", lambda s: s[-1:] == ["active"], "activation")
        assert _states(events) == ["pending", "validated", "active"]
        assert events[-1]["phase"] == "full" and events[-1]["share"] == 1.0
        for e in events:
            EnhancementEvent.model_validate(e)
        rejected = _wait_for(b, "too-risky", lambda s: "rejected" in s, "the rejection")
        assert _states(rejected) == ["pending", "rejected"]
        assert rejected[-1]["evidence"]["thresholds"]["critical_failures"] == ["mandatory"]

        # healthy telemetry: no trigger; then a critical quality drop, three times
        pump = TelemetryPump(b, "summarizer-1", "concise-v1", {"quality_score": 0.9, "accuracy": 0.9})
        pump.start()
        time.sleep(4)
        assert _states(_events(b)["concise-v1"]) == ["pending", "validated", "active"]
        pump.metrics["quality_score"] = 0.6
        events = _wait_for(b, "concise-v1", lambda s: "permanently_disabled" in s, "the third deactivation",
                           timeout_s=90)
        assert _states(events) == ["pending", "validated", "active",
                                   "deactivated", "cooldown", "active",
                                   "deactivated", "cooldown", "active",
                                   "deactivated", "permanently_disabled"]
        deactivations = [e for e in events if e["to_state"] == "deactivated"]
        assert [e["deactivations"] for e in deactivations] == [1, 2, 3]
        assert all(e["reason"]["code"] == "critical_regression" for e in deactivations)
        assert deactivations[0]["evidence"]["triggers"][0]["check"] == "quality"
        cooled = [e for e in events if e["to_state"] == "cooldown"]
        assert all(e["cooldown_until"] for e in cooled)
        reactivated = [e for e in events if e["from_state"] == "cooldown"]
        assert [e["reason"]["code"] for e in reactivated] == ["cooldown_over"] * 2
        pump.stop()
        pump = None

        # the semi-automatic one waits for an operator
        assert _states(_events(b)["needs-ok"]) == ["pending", "validated"]
        run(produce(b, "control", [(b"acme", orjson.dumps({
            "event_id": "c-1", "tenant": "acme", "action": "enhancement_approve", "enhancement_id": "needs-ok",
            "operator_id": "ops-7", "reason": "reviewed the prompt"}))]))
        approved = _wait_for(b, "needs-ok", lambda s: s[-1:] == ["active"], "the approval")
        assert approved[-1]["operator_id"] == "ops-7"

        status = json.loads(worker.get("/enhancements/status")[1])
        rows = {r["enhancement_id"]: r for r in status["tenants"]["acme"]["enhancements"]}
        assert rows["concise-v1"]["state"] == "permanently_disabled" and rows["needs-ok"]["state"] == "active"
        code, body = worker.get("/telemetry/summarizer-1")
        assert code == 200 and json.loads(body)["windows"][0]["metrics"]["quality_score"]["count"] > 0

        letters = [d for *_, d in run(read_all(b, "dead-letters", expect=2))]
        assert sorted(d["error"]["code"] for d in letters if d["source_topic"] == "enhancements") == \
            ["enhancement_exists", "not_json"]
        alerts = [a for *_, a in run(read_all(b, "alerts", expect=1))]
        kinds = [a["kind"] for a in alerts if a["details"].get("enhancement_id")]
        assert kinds.count("enhancement_deactivated") == 3 and "enhancement_disabled" in kinds
        assert "enhancement_rejected" in kinds and "enhancement_approval_needed" in kinds

        every = [e["event_id"] for es in _events(b).values() for e in es]
        audit = [a for *_, a in run(read_all(b, "audit", expect=len(every)))]
        audited = {a["record"]["enhancement_event"]["event_id"] for a in audit if "enhancement_event" in a["record"]}
        assert set(every) <= audited
        verify = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--bootstrap", b],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        if pump is not None:
            pump.stop()
        worker.stop()
