"""`budget-gate --from-kafka`: both runs built from the costs topic of a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import orjson
import pytest

from .conftest import run
from .harness import REPO, produce

pytestmark = pytest.mark.integration

BASELINE_RANGE = "2024-05-01T00:00:00Z,2024-05-01T01:00:00Z"


def _cost(event_id: str, tenant: str, workflow: str, tokens: int, latency_ms: float, ts: str | None) -> dict[str, Any]:
    body = {"event_id": event_id, "tenant": tenant, "workflow": workflow, "provider": "openai", "model": "gpt-4o",
            "input_tokens": tokens - tokens // 4, "output_tokens": tokens // 4, "cost_usd": tokens / 1e5,
            "latency_ms": latency_ms}
    return body if ts is None else {**body, "ts": ts}


def _costs() -> tuple[list[dict[str, Any]], dict[str, dict[str, list[float]]]]:
    """Cost events and, per (tenant, run), the token samples per workflow and the latencies they carry.

    Baseline costs carry a `ts` in BASELINE_RANGE; current costs have none (their record timestamp,
    the time of the test, places them) except one with a `ts` outside both ranges.
    """
    events: list[dict[str, Any]] = []
    expected: dict[str, dict[str, list[float]]] = {}
    for tenant, growth in (("acme", {"refund": 1.6, "search": 1.0}), ("globex", {"refund": 1.0, "search": 1.0})):
        for workflow, base_tokens in (("refund", 1000), ("search", 500)):
            for i in range(12):
                noise = (i % 5) * 4
                tokens = base_tokens + noise
                ts = f"2024-05-01T00:{i:02d}:30Z"
                events.append(_cost(f"{tenant}-{workflow}-b{i}", tenant, workflow, tokens, 300 + 10 * i, ts))
                expected.setdefault(f"{tenant}/baseline/{workflow}", []).append(tokens)
                current = round((base_tokens + noise) * growth[workflow])
                events.append(_cost(f"{tenant}-{workflow}-c{i}", tenant, workflow, current, 400 + 25 * i, None))
                expected.setdefault(f"{tenant}/current/{workflow}", []).append(current)
                expected.setdefault(f"{tenant}/current/latency", []).append(400 + 25 * i)
    events.append(_cost("acme-refund-b0", "acme", "refund", 99_999, 1, "2024-05-01T00:00:01Z"))  # a retry: dropped
    events.append(_cost("acme-late", "acme", "refund", 99_999, 1, "2024-06-01T00:00:00Z"))  # in neither range
    return events, expected


def _gate(bootstrap: str, current_range: str, *flags: str, prefix: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resontinex.app.cli", "budget-gate", "--from-kafka", "--bootstrap", bootstrap,
         "--baseline-range", BASELINE_RANGE, "--current-range", current_range, "--output-format", "json", *flags],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "RESONTINEX_TOPIC_PREFIX": prefix},
    )


def _delta(expected: dict[str, dict[str, list[float]]], tenants: list[str]) -> float:
    deltas = []
    for workflow in ("refund", "search"):
        base = np.mean([t for tenant in tenants for t in expected[f"{tenant}/baseline/{workflow}"]])
        cur = np.mean([t for tenant in tenants for t in expected[f"{tenant}/current/{workflow}"]])
        deltas.append((cur - base) / base * 100)
    return float(np.mean(deltas))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return float(ordered[-(-95 * len(ordered) // 100) - 1])


def test_the_gate_reads_both_ranges_of_the_costs_topic(broker):
    events, expected = _costs()
    now_ms = int(time.time() * 1000)
    items = [(e["tenant"].encode(), orjson.dumps(e)) for e in events]
    items += [(b"acme", b"not json {"), (b"acme", b'{"event_id": "x", "tenant": "acme"}')]  # invalid: skipped
    run(produce(broker.bootstrap, "costs", items))
    current_range = f"{now_ms - 600_000},{now_ms + 600_000}"

    acme = _gate(broker.bootstrap, current_range, "--tenant", "acme")
    assert acme.returncode == 1, acme.stderr
    report = json.loads(acme.stdout)
    assert report["budget_status"] == "block" and report["tokens"]["significant"] is True
    assert report["token_delta_pct"] == pytest.approx(_delta(expected, ["acme"])) == pytest.approx(30.0, abs=0.1)
    assert report["p95_latency_ms"] == _p95(expected["acme/current/latency"])
    assert [(r["name"], r["baseline_n"], r["current_n"]) for r in report["scenarios"]] == [
        ("refund", 12, 12), ("search", 12, 12)]
    assert "2 invalid skipped, 1 repeated event_id dropped" in acme.stderr

    everyone = _gate(broker.bootstrap, current_range)
    assert everyone.returncode == 0, everyone.stderr
    report = json.loads(everyone.stdout)
    assert report["budget_status"] == "warn"
    assert report["token_delta_pct"] == pytest.approx(_delta(expected, ["acme", "globex"]))
    assert report["p95_latency_ms"] == _p95(expected["acme/current/latency"] + expected["globex/current/latency"])
    assert [(r["baseline_n"], r["current_n"]) for r in report["scenarios"]] == [(24, 24), (24, 24)]

    empty = _gate(broker.bootstrap, "2030-01-01T00:00:00Z,2030-01-02T00:00:00Z")
    assert empty.returncode == 2 and empty.stdout == ""
    assert "current range [2030-01-01T00:00:00.000Z, 2030-01-02T00:00:00.000Z): no valid cost event" in empty.stderr

    missing = _gate(broker.bootstrap, current_range, prefix="other-")
    assert missing.returncode == 2 and "topic 'other-costs' does not exist" in missing.stderr
