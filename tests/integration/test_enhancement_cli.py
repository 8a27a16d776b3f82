"""`resontinex enhancement …` against a real core worker: one semi-automatic enhancement
submitted from a file, listed, approved (a second approve refused), shown, retired and
exported with its audit hashes verified. One worker life for the whole module."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .harness import REPO, start_worker

pytestmark = pytest.mark.integration

CONFIG = """
telemetry: {window: PT1S, grace: PT0.3S}
monitor:
  interval: PT0.25S
  cooldown: {critical: PT3S, consecutive: PT3S, canary_failed: PT3S}
"""
SUBMISSION = {
    "enhancement_id": "cli-prompt-v1", "tenant": "acme", "kind": "prompt",
    "description": "a shorter system prompt for the summariser", "payload": {"name": "concise"},
    "requirements": ["numpy>=2"],
    "thresholds": {"mandatory": 1.0, "proxy": 0.8, "alpha": 0.96, "sigma": 0.1, "governance": 0.9},
    "baseline": {"accuracy": 0.9}, "mode": "semi_automatic",
}


def _cli(bootstrap: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resontinex.app.cli", "enhancement", *args, "--bootstrap", bootstrap],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _ok(done: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_enhancement_commands_govern_one_enhancement_end_to_end(broker, tmp_path: Path) -> None:
    started = time.monotonic()
    config = tmp_path / "config"
    config.mkdir()
    (config / "enhancements.yaml").write_text(CONFIG)
    b = broker.bootstrap
    worker = start_worker(b, tmp_path / "w1", env={"RESONTINEX_CONFIG_DIR": str(config)})
    try:
        worker.wait_ready(timeout_s=90)
        ready = time.monotonic()
        eid = SUBMISSION["enhancement_id"]
        file = tmp_path / "submission.yaml"
        file.write_text(yaml.safe_dump(SUBMISSION))

        out = _ok(_cli(b, "submit", str(file), "--wait", "30"))
        assert "published submission enh-" in out
        assert "— → pending  submitted:" in out and "pending → validated  preflight_passed:" in out
        assert "waits for approval" in out

        rows = json.loads(_ok(_cli(b, "list", "--tenant", "acme", "--output-format", "json")))
        assert [(r["enhancement_id"], r["state"], r["transitions"]) for r in rows] == [(eid, "validated", 2)]
        table = _ok(_cli(b, "list"))
        assert table.splitlines()[0].split()[:4] == ["ID", "TENANT", "KIND", "STATE"]
        assert f"{eid}  acme    prompt  validated" in table

        approve = ("--tenant", "acme", "--operator", "ops-7", "--reason", "reviewed the prompt")
        out = _ok(_cli(b, "approve", eid, *approve))
        assert "published enhancement_approve ctl-" in out
        assert "validated → active (canary 10%)  activated:" in out and "[by ops-7]" in out

        again = _cli(b, "approve", eid, *approve, "--wait", "15")
        _ok(again, 1)
        assert "invalid_command" in again.stderr and "no transition waiting for approval" in again.stderr

        shown = _ok(_cli(b, "show", eid)).splitlines()
        assert shown[0].startswith(f"enhancement {eid}  tenant acme  kind prompt  state active (canary 10%)")
        transitions = [line.split("  ")[1] for line in shown[1:] if not line.startswith("    ")]
        assert transitions == ["— → pending", "pending → validated", "validated → active (canary 10%)"]
        assert "    approved by ops-7: reviewed the prompt" in "\n".join(shown)
        _ok(_cli(b, "show", "no-such-enhancement"), 2)

        out = _ok(_cli(b, "retire", eid, "--tenant", "acme", "--operator", "ops-7", "--reason", "superseded"))
        assert "active → retired  retired: superseded  [by ops-7]" in out

        exported = tmp_path / "export.json"
        assert "chain verified" in _ok(_cli(b, "export", eid, "--output", str(exported)))
        doc = json.loads(exported.read_text())
        assert doc["enhancement_id"] == eid and doc["tenant"] == "acme" and doc["state"] == "retired"
        assert [t["event"]["to_state"] for t in doc["transitions"]] == ["pending", "validated", "active", "retired"]
        assert all(len(t["hash"]) == 64 and len(t["prev_hash"]) == 64 for t in doc["transitions"])
        assert doc["chain"]["verified"] is True and doc["chain"]["records_verified"] is True
        assert doc["chain"]["partitions_verified"] == {str(p): True for p in doc["chain"]["partitions"]}
        assert "enhancement_approval_needed" in [a["alert"]["kind"] for a in doc["alerts"]]
        assert doc["submission"]["found"] and doc["submission"]["value"]["payload"] == {"name": "concise"}
        assert doc["events"][0]["evidence"]["submission_event_id"] == doc["submission"]["event_id"]
        print(f"worker ready after {ready - started:.1f} s; commands took {time.monotonic() - ready:.1f} s")
    finally:
        worker.stop()
