"""Seed 001's explanation trail on the real broker with a real worker: every decision's audit
record holds its explanation, a decision carries it when the request asks (`explain`),
`audit replay --request-id` shows it and `audit reproduce` compares it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import orjson
import pytest

from resontinex.schemas import Decision

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration

SIGNALS = ("alignment_score", "epistemic_risk", "confidence_band")


def _cli(broker, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", *argv, "--bootstrap", broker.bootstrap],
                          cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def _request(event_id: str, a: float, r: float, c: float, **extra: object) -> tuple[bytes, bytes]:
    return b"acme", orjson.dumps({"event_id": event_id, "tenant": "acme",
                                  "signals": {"alignment_score": a, "epistemic_risk": r, "confidence_band": c}, **extra})


def test_decisions_and_audit_records_carry_the_explanation(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path / "w")
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", [
            _request("asks", 0.8, 0.3, 0.9, explain=True),  # entropy flag: execute -> defer
            _request("silent", 0.8, 0.3, 0.2),  # the contract's example
        ]))
        decisions = {d["request_id"]: d for *_, d in run(read_all(broker.bootstrap, "decisions", expect=2))}
        audit = [r for *_, r in run(read_all(broker.bootstrap, "audit", expect=3)) if r["kind"] == "decision"]
    finally:
        worker.stop()

    asked, silent = decisions["asks"], decisions["silent"]
    assert "explanation" not in silent
    explanation = Decision.model_validate(asked).explanation
    assert explanation is not None and asked["verb"] == explanation.verb == "defer"
    assert [(c.component, c.codes, c.before, c.after) for c in explanation.verb_changes] == [
        ("trust", ["entropy_flag"], "execute", "defer")]
    assert explanation.z == sum(explanation.signals[name].contribution for name in SIGNALS)
    assert explanation.raw_score == asked["trust"]["raw_score"]

    recorded = {r["record"]["request"]["event_id"]: r["record"]["explanation"] for r in audit}
    assert recorded["asks"] == asked["explanation"]
    quiet = recorded["silent"]
    assert math.isclose(quiet["z"], 1.197646, abs_tol=1e-6) and quiet["score"] == silent["trust"]["score"] == 0.7681
    assert (quiet["tier"], quiet["tier_bounds"], quiet["verb_changes"], quiet["verb"]) == (
        "pass", {"above": 0.75, "at_most": 1.01}, [], "execute")

    replay = _cli(broker, "replay", "--request-id", "silent")
    assert replay.returncode == 0, replay.stderr
    (line,) = [r for r in map(orjson.loads, replay.stdout.splitlines()) if r["record"]["kind"] == "decision"]
    assert line["record"]["record"]["explanation"] == quiet
    table = _cli(broker, "replay", "--request-id", "silent", "--output-format", "table")
    assert table.returncode == 0, table.stderr
    assert "z 1.197646 = alignment_score 0.45 × logit" in table.stdout
    assert "tier pass (0.75 < 0.7681 ≤ 1.01) → execute" in table.stdout

    same = _cli(broker, "reproduce", "--output-format", "json")
    assert same.returncode == 0, same.stdout + same.stderr
    report = json.loads(same.stdout)
    assert (report["decisions"], report["differ_under_recorded_config"], report["differ_today"]) == (2, 0, 0)

    archive = tmp_path / "audit.jsonl"
    assert _cli(broker, "archive", "--out", str(archive)).returncode == 0
    lines = archive.read_bytes().splitlines()
    at = next(i for i, x in enumerate(lines) if b'"explanation"' in x and b'"silent"' in x)
    forged = orjson.loads(lines[at])
    forged["record"]["record"]["explanation"]["signals"]["epistemic_risk"]["contribution"] += 0.125
    (tmp_path / "forged.jsonl").write_bytes(b"\n".join([*lines[:at], orjson.dumps(forged), *lines[at + 1:]]) + b"\n")
    differ = _cli(broker, "reproduce", "--file", str(tmp_path / "forged.jsonl"), "--output-format", "json")
    report = json.loads(differ.stdout)
    assert differ.returncode == 1 and report["differ_under_recorded_config"] == 1, differ.stdout + differ.stderr
    (found,) = [d for d in report["differences"] if d["against"] == "recorded"]
    assert found["request_id"] == "silent"
    assert list(found["fields"]) == ["explanation.signals.epistemic_risk.contribution"]
