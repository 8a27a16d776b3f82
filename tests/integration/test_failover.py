"""Crashes and groups: SIGKILL mid-stream loses and duplicates nothing; two workers split partitions.

Dedupe rule (what a consumer acts on): a decision's `event_id` is derived from
(tenant, request event_id), so a decision re-sent after a crash carries the same id and
the same content; a consumer acts on the first decision per `event_id`. The worker
itself drops a request whose decision is already in the audit topic, so the audit holds
each decision once.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict

import orjson
import pytest

from agents.audit import verify

from .conftest import run
from .harness import produce, read_all, start_worker

pytestmark = pytest.mark.integration

N = 6000


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


def _count(bootstrap: str, topic: str) -> int:
    return len(run(read_all(bootstrap, topic, settle_s=0.3, timeout_s=10)))


def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(broker, tmp_path):
    worker = start_worker(broker.bootstrap, tmp_path)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", _requests(N)))
        deadline = time.monotonic() + 60
        while _count(broker.bootstrap, "decisions") < N // 10:
            assert time.monotonic() < deadline, worker.log_tail()
        worker.kill()
        seen_before_restart = _count(broker.bootstrap, "decisions")
        assert seen_before_restart < N, "the worker finished before it was killed; raise N"
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
    finally:
        a.stop()
        if b is not None:
            b.stop()
