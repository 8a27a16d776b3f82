"""Scale-out across hosts: the broker and three core workers, each on a "host" of its own
(a Linux network namespace with its own address on a private /24, never loopback), load
driven from the root namespace, one host's worker SIGKILLed mid-stream.

What it shows: the killed worker's partitions move to the two survivors; every decision
request gets exactly one decision (by request id; a re-sent decision carries the same
`event_id` and content, see test_failover); the audit chain of every partition verifies,
signed checkpoints included, and holds each decision once; every tenant's spend equals the
exact sum of its distinct costs, read from one survivor that asks its peer host at the
peer's advertised address.

Needs root (namespaces, veths, a bridge); skipped where they cannot be made.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict

import orjson
import pytest

from resontinex.agents.audit import new_key_pair

from .conftest import run
from .harness import REPO, NetnsError, NetnsHosts, NetnsWorker, produce, read_all, system_tool

pytestmark = pytest.mark.integration

N = 3000  # decision requests
COSTS = 1100  # cost events, plus REPEATS of them re-sent (a producer's retries: same event ids)
REPEATS = 100
TENANTS = [f"t{i}" for i in range(11)]
WORKERS = ("w1", "w2", "w3")
PARTITIONS = {0, 1, 2, 3}
BROKER_PORT = 9092
WEB_PORT = 6066  # the same on every host


def _requests() -> list[tuple[bytes, bytes]]:
    rng = random.Random(5)
    return [(TENANTS[i % len(TENANTS)].encode(), orjson.dumps({
        "event_id": f"r-{i}", "tenant": TENANTS[i % len(TENANTS)],
        "signals": {"alignment_score": rng.random(), "epistemic_risk": rng.random(), "confidence_band": rng.random()},
    })) for i in range(N)]


def _costs() -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """Cost events (repeats included) and each tenant's expected spend in micro-dollars."""
    rng = random.Random(9)
    costs = [(f"c-{i}", rng.choice(TENANTS), round(rng.uniform(0.0001, 0.5), 6)) for i in range(COSTS)]
    expected = dict.fromkeys(TENANTS, 0)
    for _, tenant, usd in costs:
        expected[tenant] += round(usd * 1_000_000)
    items = [(t.encode(), orjson.dumps({"event_id": e, "tenant": t, "workflow": "default", "provider": "p", "model": "m",
                                        "input_tokens": 50, "output_tokens": 50, "cost_usd": u, "latency_ms": 100.0}))
             for e, t, u in costs + [costs[i] for i in rng.sample(range(COSTS), REPEATS)]]
    return items, expected


def _decided(worker: NetnsWorker) -> float:
    status, body = worker.get("/metrics")
    if status != 200:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("trust_gate_decisions_total{"))


def _costs_consumed(worker: NetnsWorker) -> float:
    status, body = worker.get("/metrics")
    match = re.search(rb'resontinex_events_total\{topic="costs"\} ([0-9.e+]+)', body) if status == 200 else None
    return float(match.group(1)) if match else 0.0


def _partitions(workers: list[NetnsWorker]) -> dict[str, set[int]] | None:
    """Each worker's partitions once they are disjoint, cover all and none is empty; else None."""
    held = {}
    for w in workers:
        h = w.health()
        if not h or not h.get("ready"):
            return None
        held[w.name] = set(h["partitions"])
    parts = list(held.values())
    if all(parts) and sum(map(len, parts)) == len(PARTITIONS) and set().union(*parts) == PARTITIONS:
        return held
    return None


def _wait_partitions(workers: list[NetnsWorker], timeout_s: float) -> dict[str, set[int]]:
    deadline = time.monotonic() + timeout_s
    while (held := _partitions(workers)) is None:
        assert time.monotonic() < deadline, {w.name: w.health() for w in workers}
        for w in workers:
            assert w.proc.poll() is None, f"{w.name} exited:\n{w.log_tail()}"
        time.sleep(0.2)
    return held


def _budgets(worker: NetnsWorker, local: bool = False) -> dict[str, int]:
    status, body = worker.get("/budget/status" + ("?local=1" if local else ""))
    assert status == 200, body
    return {row["scope"]: round(row["spent_usd"] * 1_000_000) for row in json.loads(body)["budgets"]}


def _paced(bootstrap: str, requests: list, costs: list, chunks: int = 30, pause_s: float = 0.2) -> threading.Thread:
    """Requests and costs in chunks from the root namespace, in the background."""
    def go() -> None:
        for i in range(chunks):
            run(produce(bootstrap, "decision-requests", requests[i * len(requests) // chunks:(i + 1) * len(requests) // chunks]))
            run(produce(bootstrap, "costs", costs[i * len(costs) // chunks:(i + 1) * len(costs) // chunks]))
            time.sleep(pause_s)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def hosts():
    ip, why = system_tool("ip", "iproute2")
    if ip is None:
        pytest.skip(why)
    lab = NetnsHosts(["broker", *WORKERS])
    try:
        lab.create()
    except NetnsError as exc:
        left = lab.destroy()
        pytest.skip(f"network namespaces cannot be made here (needs root and CAP_NET_ADMIN): {exc}"
                    + (f"; left behind: {left}" if left else ""))
    try:
        yield lab
    finally:
        left = lab.destroy()
        assert not left, f"not cleaned up: {left}"


def test_partitions_move_across_hosts_and_nothing_is_lost_or_doubled(hosts, tmp_path):
    started = time.monotonic()
    private, public = new_key_pair()  # one signing key for the group, as deployed
    (tmp_path / "audit.key").write_bytes(private)
    (tmp_path / "audit.pub").write_bytes(public)
    env = {"RESONTINEX_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "audit.key"), "RESONTINEX_AUDIT_CHECKPOINT_EVERY": "200"}
    broker = hosts.start_broker("broker", tmp_path / "broker.log", port=BROKER_PORT)
    workers: list[NetnsWorker] = []
    producer = None
    try:
        bootstrap = broker.bootstrap
        assert not bootstrap.startswith("127.") and bootstrap.split(":")[0] == hosts.address["broker"]
        done = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "topics", "create", "--bootstrap", bootstrap],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

        for name in WORKERS:  # one host after another, as a group scales out
            workers.append(hosts.start_worker(name, bootstrap, tmp_path / name, web_port=WEB_PORT, env=env))
            workers[-1].wait_ready(90)
        before = _wait_partitions(workers, 60)
        ready_s = time.monotonic() - started

        costs, expected = _costs()
        producer = _paced(bootstrap, _requests(), costs)
        victim = max(workers, key=lambda w: (len(before[w.name]), w.name == "w1"))  # the most partitions
        survivors = [w for w in workers if w is not victim]
        deadline = time.monotonic() + 60
        while _decided(victim) < N // (2 * len(workers)) or _costs_consumed(victim) == 0:  # mid-stream on the victim
            assert time.monotonic() < deadline, victim.log_tail()
            time.sleep(0.05)
        victim_decided = _decided(victim)
        killed_at = time.monotonic()
        victim.kill()
        assert producer.is_alive(), "the load finished before the kill: the test proves nothing"

        after = _wait_partitions(survivors, 60)
        moved_s = time.monotonic() - killed_at
        assert before[victim.name] <= set().union(*after.values())
        producer.join(120)
        assert not producer.is_alive()

        decisions = run(read_all(bootstrap, "decisions", expect=N, timeout_s=90))
        audit = run(read_all(bootstrap, "audit", expect=N, timeout_s=60))
        verified = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--bootstrap", bootstrap,
                                   "--public-key", str(tmp_path / "audit.pub"), "--output-format", "json", "--quiet"],
                                  cwd=REPO, capture_output=True, text=True, timeout=120)

        # spend: one survivor answers for the group, asking its peer at the peer's address
        deadline = time.monotonic() + 60
        while (spent := _budgets(survivors[0])) != expected:
            assert time.monotonic() < deadline, {t: (spent.get(t), usd) for t, usd in expected.items()}
            time.sleep(0.5)
        local = [_budgets(w, local=True) for w in survivors]
        survivor_decided = {w.name: _decided(w) for w in survivors}
    finally:
        for w in workers:
            w.stop()
        broker.stop()
        if producer is not None:
            producer.join(30)

    # every request has exactly one decision; a re-sent one is the same decision
    by_id: dict[str, set[bytes]] = defaultdict(set)
    per_request: dict[str, set[str]] = defaultdict(set)
    for *_, d in decisions:
        by_id[d["event_id"]].add(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
        per_request[d["request_id"]].add(d["event_id"])
    assert set(per_request) == {f"r-{i}" for i in range(N)}, "a decision was lost"
    assert all(len(ids) == 1 for ids in per_request.values()), "a request got two different decisions"
    assert all(len(bodies) == 1 for bodies in by_id.values()), "a re-sent decision differs from the first"

    # the audit holds each decision once, and every partition's chain verifies with its signatures
    audited = [r["record"]["request"]["event_id"] for *_, r in audit if r["kind"] == "decision"]
    assert sorted(audited) == sorted(f"r-{i}" for i in range(N)), "audit lost or repeated a decision"
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and set(report["partitions"]) == {str(p) for p in PARTITIONS}
    assert all(p["checkpoints_verified"] >= 1 for p in report["partitions"].values()), report

    # spend splits between the survivors' hosts, and the whole is exact
    assert spent == expected
    assert local[0] and local[1] and not set(local[0]) & set(local[1])
    assert {**local[0], **local[1]} == expected

    print(f"\nhosts: broker {bootstrap}, " + ", ".join(f"{w.name} {w.host}:{w.web_port}" for w in workers)
          + f"\nready in {ready_s:.1f} s; partitions before {dict(sorted(before.items()))}; killed {victim.name} "
          f"after {victim_decided:.0f} of its decisions; after {dict(sorted(after.items()))} ({moved_s:.1f} s to move)"
          f"\nsurvivors' decisions {survivor_decided}; {len(decisions)} decision records for {N} requests "
          f"({len(decisions) - N} re-sent); audit: {len(audit)} records, "
          f"{sum(p['checkpoints_verified'] for p in report['partitions'].values())} signed checkpoints verified, "
          f"{sum(p['duplicates'] for p in report['partitions'].values())} duplicates; spend of {len(expected)} tenants "
          f"exact ({COSTS} costs + {REPEATS} repeats); {time.monotonic() - started:.1f} s in all")
