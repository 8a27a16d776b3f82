"""A steady stream of costs is folded batch after batch without a gap: nothing is fetched
again and nothing is dropped as a duplicate (a gap must mean a real gap)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from .conftest import run
from .harness import start_worker

pytestmark = pytest.mark.integration

TENANTS = [f"steady{i}" for i in range(8)]
ROUNDS, PER_ROUND = 40, 8


async def _steady_costs(bootstrap: str) -> None:
    """ROUNDS small sends 50 ms apart: each reaches the worker as a batch of its own."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for r in range(ROUNDS):
            sent = []
            for i in range(PER_ROUND):
                tenant = TENANTS[i % len(TENANTS)]
                body = {"event_id": f"c-{r}-{i}", "tenant": tenant, "workflow": "default", "provider": "p",
                        "model": "m", "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.01, "latency_ms": 5.0}
                sent.append(await producer.send("costs", orjson.dumps(body), key=tenant.encode()))
            await asyncio.gather(*sent)
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


def _counter(body: bytes, name: str, topic: str) -> float:
    match = re.search(rb"%s_total\{topic=\"%s\"\} ([0-9.e+]+)" % (name.encode(), topic.encode()), body)
    return float(match.group(1)) if match else 0.0


def test_a_steady_stream_of_costs_refetches_nothing(broker, tmp_path: Path) -> None:
    worker = start_worker(broker.bootstrap, tmp_path / "w")
    try:
        worker.wait_ready()
        run(_steady_costs(broker.bootstrap))
        deadline = time.monotonic() + 60
        while True:
            status, body = worker.get("/metrics")
            if status == 200 and _counter(body, "resontinex_events", "costs") >= ROUNDS * PER_ROUND:
                break
            assert time.monotonic() < deadline, "the costs were not all consumed"
            time.sleep(0.3)
        assert _counter(body, "resontinex_refetched", "costs") == 0
        assert _counter(body, "resontinex_redelivered", "costs") == 0
        assert _counter(body, "resontinex_duplicates", "costs") == 0
        batches = re.search(rb'resontinex_batch_size_count\{agent="budget"\} ([0-9.e+]+)', body)
        assert batches and float(batches.group(1)) > 1  # several batches, each one a chance for a false gap
        assert "offset gap" not in worker.log_tail(10**7)
        status, page = worker.get("/budget/status")
        spent = {row["scope"]: row["spent_usd"] for row in json.loads(page)["budgets"]}
        assert sum(spent.get(t, 0.0) for t in TENANTS) == pytest.approx(ROUNDS * PER_ROUND * 0.01)
    finally:
        worker.stop()
