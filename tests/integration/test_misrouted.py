"""CONTRACT §1 on the real broker with a librdkafka client: records a producer put on
another partition than their tenant's (crc32, librdkafka's default) are forwarded there, so
a tenant's spend, dedupe and audit chain are never split."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import orjson
import pytest

from resontinex.topics import partition_of

from .conftest import run
from .harness import REPO, read_all, start_worker

confluent_kafka = pytest.importorskip("confluent_kafka", reason="the test extra installs confluent-kafka")
pytestmark = pytest.mark.integration

PARTITIONS = 4
BUDGET_USD = 100.0


def _misrouted_tenants(n: int) -> list[str]:
    """Tenants librdkafka's default partitioner puts on another partition than murmur2."""
    out = [t for t in (f"tenant{i}" for i in range(200)) if zlib.crc32(t.encode()) % PARTITIONS != partition_of(t, PARTITIONS)]
    return out[:n]


def _cost(event_id: str, tenant: str, usd: float) -> bytes:
    return orjson.dumps({"event_id": event_id, "tenant": tenant, "workflow": "default", "provider": "p", "model": "m",
                         "input_tokens": 10, "output_tokens": 10, "cost_usd": usd, "latency_ms": 100.0})


def _request(event_id: str, tenant: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "tenant": tenant, "estimate": {"cost_usd": 1.0},
                         "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}})


def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes, int | None]]) -> None:
    """Publish with confluent-kafka's defaults (partitioner consistent_random: crc32 of the
    key); a record with a partition number goes there, as an explicit producer would do."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "client.id": "crc32-client"})
    errors: list[str] = []

    def delivered(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value, partition in records:
        kw = {} if partition is None else {"partition": partition}
        producer.produce(topic, value, key.encode(), on_delivery=delivered, **kw)
    assert producer.flush(30) == 0, "confluent-kafka could not deliver everything"
    assert not errors, errors


def _spent(worker, scope: str) -> float | None:
    status, body = worker.get("/budget/status")
    if status != 200:
        return None
    row = next((r for r in json.loads(body)["budgets"] if r["scope"] == scope), None)
    return None if row is None else row["spent_usd"]


def _wait_spent(worker, scope: str, usd: float, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (spent := _spent(worker, scope)) is None or abs(spent - usd) > 1e-9:
        assert time.monotonic() < deadline, f"{scope} spent {spent}, expected {usd}"
        time.sleep(0.3)


def test_a_crc32_producer_splits_no_tenant(broker, tmp_path: Path) -> None:
    tenants = _misrouted_tenants(3)
    config = tmp_path / "config"
    config.mkdir()
    (config / "energy_governance.yaml").write_text(
        "budgets:\n" + "".join(f"  - {{tenant: {t}, period: day, usd: {BUDGET_USD}}}\n" for t in tenants))
    worker = start_worker(broker.bootstrap, tmp_path / "w", env={"RESONTINEX_CONFIG_DIR": str(config)})
    try:
        worker.wait_ready()
        first = tenants[0]
        wrong = zlib.crc32(first.encode()) % PARTITIONS
        costs = [(first, _cost("c-wrong", first, 40.0), wrong),  # the case: $40 on one partition ...
                 (first, _cost("c-right", first, 50.0), partition_of(first, PARTITIONS)),  # ... $50 on the other
                 (first, _cost("c-wrong", first, 40.0), partition_of(first, PARTITIONS))]  # a retry, on the right one
        costs += [(t, _cost(f"c-{t}-{i}", t, 1.5), None) for t in tenants[1:] for i in range(10)]
        _produce(broker.bootstrap, "costs", costs)
        _wait_spent(worker, first, 90.0)
        for t in tenants[1:]:
            _wait_spent(worker, t, 15.0)

        # one request id on both partitions, and requests through the default partitioner
        requests = [(first, _request("r-twice", first), wrong),
                    (first, _request("r-twice", first), partition_of(first, PARTITIONS))]
        requests += [(t, _request(f"r-{t}-{i}", t), None) for t in tenants for i in range(5)]
        _produce(broker.bootstrap, "decision-requests", requests)
        decisions = run(read_all(broker.bootstrap, "decisions", expect=1 + 5 * len(tenants), settle_s=3.0))
        by_request: dict[str, list[dict]] = {}
        for partition, _, key, decision in decisions:
            assert partition == partition_of(key.decode(), PARTITIONS)  # decided where the tenant's state is
            by_request.setdefault(decision["request_id"], []).append(decision)
        assert sorted(by_request) == sorted(["r-twice", *(f"r-{t}-{i}" for t in tenants for i in range(5))]), worker.log_tail()
        assert all(len(d) == 1 for d in by_request.values()), {k: len(d) for k, d in by_request.items() if len(d) > 1}
        assert by_request["r-twice"][0]["budget"]["remaining_usd"] == pytest.approx(BUDGET_USD - 90.0)
        assert by_request[f"r-{tenants[1]}-0"][0]["budget"]["remaining_usd"] == pytest.approx(BUDGET_USD - 15.0)

        status, body = worker.get("/metrics")
        assert status == 200
        forwarded = {m.group(1).decode(): float(m.group(2)) for m in
                     re.finditer(rb'resontinex_misrouted_total\{topic="([^"]+)"\} ([0-9.e+]+)', body)}
        assert forwarded["costs"] >= 1 + 10 * (len(tenants) - 1) and forwarded["decision-requests"] >= 1
        assert worker.log_tail(10**7).count("records on another partition than their key's") == 2  # once per topic

        verify = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--bootstrap", broker.bootstrap,
                                 "--output-format", "json", "--quiet"],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = json.loads(verify.stdout)
        assert report["ok"] and all(p["duplicates"] == 0 for p in report["partitions"].values())
    finally:
        worker.stop()
