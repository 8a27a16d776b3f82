"""Crashes and groups: SIGKILL mid-stream loses and duplicates nothing; two workers split partitions.

Dedupe rule (what a consumer acts on): a decision's `event_id` is derived from
(tenant, request event_id), so a decision re-sent after a crash carries the same id and
the same content; a consumer acts on the first decision per `event_id`. The worker
itself drops a request whose decision is already in the audit topic, so the audit holds
each decision once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict

import orjson
import pytest

from resontinex.agents.audit import verify

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

N = 20_000


def _requests(n: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(3)
    out = []
    for i in range(n):
        tenant = f"t{i % 11}"
        out.append((tenant.encode(), orjson.dumps({
            "event_id": f"r-{i}", "tenant": tenant,
            "signals": {"alignment_score": rng.random(), "epistemic_risk": rng.random(), "confidence_band": rng.random()},
        })))
    return out


def _decided(worker) -> float:
    status, body = worker.get("/metrics")
    if status != 200:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("trust_gate_decisions_total{"))


def _produce_in_background(bootstrap: str, items, chunks: int = 40, pause_s: float = 0.1) -> threading.Thread:
    def paced():
        size = len(items) // chunks
        for i in range(chunks):
            run(produce(bootstrap, "decision-requests", items[i * size:(i + 1) * size]))
            time.sleep(pause_s)

    thread = threading.Thread(target=paced, daemon=True)
    thread.start()
    return thread


def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path)
    try:
        worker.wait_ready()
        producer = _produce_in_background(broker.bootstrap, _requests(N))
        deadline = time.monotonic() + 60
        while _decided(worker) < N // 5:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.05)
        worker.kill()
        assert producer.is_alive(), "the load finished before the kill; the test proves nothing"
        producer.join(120)
        worker = start_worker(broker.bootstrap, tmp_path)
        worker.wait_ready()
        decisions = run(read_all(broker.bootstrap, "decisions", expect=N, timeout_s=120))
        audit = run(read_all(broker.bootstrap, "audit", expect=N, timeout_s=60))
    finally:
        worker.stop()

    by_id: dict[str, set[bytes]] = defaultdict(set)
    per_request: dict[str, set[str]] = defaultdict(set)
    for *_, d in decisions:
        by_id[d["event_id"]].add(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
        per_request[d["request_id"]].add(d["event_id"])
    assert set(per_request) == {f"r-{i}" for i in range(N)}, "a decision was lost"
    assert all(len(ids) == 1 for ids in per_request.values())
    assert all(len(bodies) == 1 for bodies in by_id.values()), "a re-sent decision differs from the first"

    chains: dict[int, list[dict]] = defaultdict(list)
    for p, _, _, rec in sorted(audit, key=lambda x: (x[0], x[1])):
        chains[p].append(rec)
    audited = [rec["record"]["request"]["event_id"] for recs in chains.values() for rec in recs if rec["kind"] == "decision"]
    assert sorted(audited) == sorted(f"r-{i}" for i in range(N)), "audit lost or repeated a decision"
    for recs in chains.values():
        report = verify(recs)
        assert report.ok, report.first_error


def test_two_workers_split_the_partitions(broker, tmp_path):
    a = start_worker(broker.bootstrap, tmp_path / "a")
    b = None
    try:
        a.wait_ready()
        b = start_worker(broker.bootstrap, tmp_path / "b")
        b.wait_ready()
        deadline = time.monotonic() + 60
        while True:
            pa, pb = set(a.health()["partitions"]), set(b.health()["partitions"])
            if pa and pb and not (pa & pb) and (pa | pb) == {0, 1, 2, 3}:
                break
            assert time.monotonic() < deadline, (pa, pb)
            time.sleep(0.5)
        run(produce(broker.bootstrap, "decision-requests", _requests(1000)))
        decisions = run(read_all(broker.bootstrap, "decisions", expect=1000))
        assert sorted(d["request_id"] for *_, d in decisions) == sorted(f"r-{i}" for i in range(1000))

        # each worker holds the statistics of its own tenants, and either answers for all
        local = [json.loads(w.get("/stats/trust?local=1")[1])["tenants"] for w in (a, b)]
        assert local[0] and local[1] and not set(local[0]) & set(local[1])
        for w in (a, b):
            tenants = json.loads(w.get("/stats/trust")[1])["tenants"]
            assert set(tenants) == {f"t{i}" for i in range(11)}
            assert sum(win["requests"] for ws in tenants.values() for win in ws) == 1000
            status, body = w.get("/stats/trust/t3")
            assert status == 200 and json.loads(body)["tenant"] == "t3"
    finally:
        a.stop()
        if b is not None:
            b.stop()
