"""`router evaluate --from-kafka`: the audit and outcomes topics of a real broker give the same
estimates as the same records in a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.app.commands.test_router_eval_cli import logged_records, write_jsonl, write_policy

from .conftest import run
from .harness import REPO, produce

pytestmark = pytest.mark.integration


def _evaluate(tmp_path: Path, *flags: str, prefix: str = "") -> subprocess.CompletedProcess[str]:
    policy = write_policy(tmp_path / "routing.yaml", "policy: thompson\nthompson: {draws: 300}\n")
    return subprocess.run(
        [sys.executable, "-m", "resontinex.app.cli", "router", "evaluate", "--policy", policy, "--output-format", "json",
         "--resamples", "300", *flags],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "RESONTINEX_TOPIC_PREFIX": prefix},
    )


def _comparable(report: dict) -> dict:
    out = {k: v for k, v in report.items() if k != "source"}
    out["skipped"] = {k: v for k, v in report["skipped"].items() if k != "invalid_records"}
    return out


def test_evaluating_from_the_topics_equals_evaluating_the_exported_file(broker, tmp_path):
    audit, outcomes, skipped = logged_records(160)
    run(produce(broker.bootstrap, "audit", [(r["tenant"].encode(), orjson.dumps(r)) for r in audit]))
    junk = [(b"acme", b"not json {"), (b"acme", b'{"event_id": "o-x", "tenant": "acme", "decision_id": "d-1"}')]
    run(produce(broker.bootstrap, "outcomes", [(o["tenant"].encode(), orjson.dumps(o)) for o in outcomes] + junk))

    from_kafka = _evaluate(tmp_path, "--from-kafka", "--bootstrap", broker.bootstrap)
    assert from_kafka.returncode == 0, from_kafka.stderr
    kafka_report = json.loads(from_kafka.stdout)
    assert kafka_report["source"] == f"topics 'audit' and 'outcomes' at {broker.bootstrap}"
    assert kafka_report["rows"] == 159 and kafka_report["skipped"] == {**skipped, "invalid_records": 2}
    assert "outcomes[" in from_kafka.stderr and "skipped" in from_kafka.stderr  # the junk is logged

    from_file = _evaluate(tmp_path, "--file", write_jsonl(tmp_path / "export.jsonl", *outcomes, *audit))
    assert from_file.returncode == 0, from_file.stderr
    assert _comparable(kafka_report) == _comparable(json.loads(from_file.stdout))

    # the default source is Kafka; --tenant applies there too
    acme = _evaluate(tmp_path, "--bootstrap", broker.bootstrap, "--tenant", "acme")
    assert acme.returncode == 0, acme.stderr
    acme_file = _evaluate(tmp_path, "--tenant", "acme", "--file", str(tmp_path / "export.jsonl"))
    assert _comparable(json.loads(acme.stdout)) == _comparable(json.loads(acme_file.stdout))
    assert json.loads(acme.stdout)["rows"] == 80


def test_missing_topics_and_empty_topics_are_bad_input(broker, tmp_path):
    missing = _evaluate(tmp_path, "--bootstrap", broker.bootstrap, prefix="other-")
    assert missing.returncode == 2 and missing.stdout == ""
    assert "topic 'other-audit' does not exist" in missing.stderr

    empty = _evaluate(tmp_path, "--bootstrap", broker.bootstrap)
    assert empty.returncode == 2 and empty.stdout == ""
    assert "no usable rows: no routed decisions (0 decision records" in empty.stderr
