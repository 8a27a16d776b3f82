"""Scale-out across hosts: the broker and three core workers, each on a "host" of its own
(a Linux network namespace with its own address on a private /24, never loopback), load
driven from the root namespace, one host's worker SIGKILLed mid-stream.

What it shows: the killed worker's partitions move to the two survivors; every decision
request gets exactly one decision (by request id; a decision re-sent after the crash must
carry the same `event_id` and the same content, the dedupe rule of test_failover); the
audit holds each decision once, as subscribers got it first, and every partition's chain
verifies, signed checkpoints included; every tenant's spend equals the exact sum of its
distinct costs, read from one survivor that asks its peer host at the peer's advertised
address (RESONTINEX_ADVERTISED_HOST), and split between the survivors.

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
        assert time.monotonic() < deadline, (f"the group did not settle in {timeout_s} s (load average "
                                             f"{os.getloadavg()}): " + str({w.name: w.health() for w in workers}))
        for w in workers:
            assert w.proc.poll() is None, f"{w.name} exited:\n{w.log_tail()}"
        time.sleep(0.2)
    return held


def _budgets(worker: NetnsWorker, local: bool = False) -> dict[str, int]:
    """Spend per tenant in micro-dollars (the `*` row, no tenant's, must show none)."""
    status, body = worker.get("/budget/status" + ("?local=1" if local else ""))
    assert status == 200, body
    rows = {row["scope"]: round(row["spent_usd"] * 1_000_000) for row in json.loads(body)["budgets"]}
    assert not rows.pop("*", 0), rows
    return rows


def _diff(event_id: str, versions: list[dict]) -> str:
    """The fields in which the versions of one decision differ."""
    keys = sorted({k for v in versions for k in v})
    return f"{event_id}: " + "; ".join(f"{k}: {[v.get(k) for v in versions]}" for k in keys
                                       if len({orjson.dumps(v.get(k), option=orjson.OPT_SORT_KEYS) for v in versions}) > 1)


class _Paced(threading.Thread):
    """Requests and costs in chunks from the root namespace, in the background. Before chunk
    `hold_at` it waits for `go`: however slow the workers are, the kill comes while load is
    still flowing. `sent` counts the chunks sent."""

    def __init__(self, bootstrap: str, requests: list, costs: list, chunks: int = 40, pause_s: float = 0.2,
                 hold_at: int = 10) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.requests, self.costs, self.chunks, self.pause_s = bootstrap, requests, costs, chunks, pause_s
        self.hold_at, self.go, self.sent, self.error = hold_at, threading.Event(), 0, None

    def run(self) -> None:
        n, r, c = self.chunks, self.requests, self.costs
        try:
            for i in range(n):
                if i == self.hold_at:
                    self.go.wait(120)
                run(produce(self.bootstrap, "decision-requests", r[i * len(r) // n:(i + 1) * len(r) // n]))
                run(produce(self.bootstrap, "costs", c[i * len(c) // n:(i + 1) * len(c) // n]))
                self.sent = i + 1
                time.sleep(self.pause_s)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


@pytest.fixture
def hosts():
    ip, why = system_tool("ip", "iproute2")
    if ip is None:
        pytest.skip(why)
    lab = None
    try:
        lab = NetnsHosts(["broker", *WORKERS])
        lab.create()
    except NetnsError as exc:
        left = lab.destroy() if lab is not None else []
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

        # all at once: they join in one rebalance (a JoinGroup is held for half the session timeout)
        workers += [hosts.start_worker(name, bootstrap, tmp_path / name, web_port=WEB_PORT, env=env) for name in WORKERS]
        before = _wait_partitions(workers, 90)
        ready_s = time.monotonic() - started

        costs, expected = _costs()
        producer = _Paced(bootstrap, _requests(), costs)
        producer.start()
        victim = max(workers, key=lambda w: (len(before[w.name]), w.name == "w1"))  # the most partitions
        survivors = [w for w in workers if w is not victim]
        deadline = time.monotonic() + 90
        while _decided(victim) == 0 or _costs_consumed(victim) == 0:  # the victim has decided and spent ...
            assert time.monotonic() < deadline, f"{victim.name} decided nothing in 90 s:\n{victim.log_tail()}"
            time.sleep(0.05)
        producer.go.set()
        while producer.sent < producer.hold_at + 3:  # ... and the load flows again: kill mid-stream
            assert producer.is_alive(), f"the producer stopped: {producer.error!r}"
            time.sleep(0.01)
        victim_decided = _decided(victim)
        killed_at = time.monotonic()
        victim.kill()
        sent_at_kill = producer.sent
        assert producer.is_alive(), "the load finished before the kill: the test proves nothing"

        after = _wait_partitions(survivors, 60)
        moved_s = time.monotonic() - killed_at
        assert before[victim.name] <= set().union(*after.values())
        producer.join(120)
        assert not producer.is_alive() and producer.error is None, f"the producer failed: {producer.error!r}"

        decisions = run(read_all(bootstrap, "decisions", expect=N, timeout_s=90))
        audit = run(read_all(bootstrap, "audit", expect=N, timeout_s=60))
        (tmp_path / "decisions.jsonl").write_bytes(b"".join(orjson.dumps(x[:2] + (x[3],)) + b"\n" for x in decisions))
        verified = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--bootstrap", bootstrap,
                                   "--public-key", str(tmp_path / "audit.pub"), "--output-format", "json", "--quiet"],
                                  cwd=REPO, capture_output=True, text=True, timeout=120)

        # spend: one survivor answers for the group, asking its peer at the peer's address
        deadline = time.monotonic() + 60
        while (spent := _budgets(survivors[0])) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        local = [_budgets(w, local=True) for w in survivors]
        survivor_decided = {w.name: _decided(w) for w in survivors}
    finally:
        for w in workers:
            w.stop()
        broker.stop()
        if producer is not None:
            producer.join(30)

    # every failed check is listed, not only the first
    problems = []
    # every request has exactly one decision; a re-sent one is the same decision
    first: dict[str, dict] = {}  # decision event_id -> the version subscribers got first
    by_id: dict[str, set[bytes]] = defaultdict(set)
    per_request: dict[str, set[str]] = defaultdict(set)
    for _, _, _, d in sorted(decisions, key=lambda x: (x[0], x[1])):
        first.setdefault(d["event_id"], d)
        by_id[d["event_id"]].add(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
        per_request[d["request_id"]].add(d["event_id"])
    if lost := {f"r-{i}" for i in range(N)} - set(per_request):
        problems.append(f"{len(lost)} requests got no decision, e.g. {sorted(lost)[:5]}")
    if twice := {r: ids for r, ids in per_request.items() if len(ids) > 1}:
        problems.append(f"{len(twice)} requests got two different decisions, e.g. {next(iter(twice.items()))}")
    if differ := {e: [orjson.loads(b) for b in bodies] for e, bodies in by_id.items() if len(bodies) > 1}:
        problems.append(f"{len(differ)} re-sent decisions differ from the first, e.g. " + _diff(*next(iter(differ.items()))))

    # the audit holds each decision once, as subscribers got it first, and every partition's
    # chain verifies with its signatures
    audited = [r["record"] for *_, r in audit if r["kind"] == "decision"]
    if sorted(a["request"]["event_id"] for a in audited) != sorted(f"r-{i}" for i in range(N)):
        problems.append(f"audit lost or repeated a decision ({len(audited)} decision records for {N} requests)")
    if unlike := [a["decision"]["event_id"] for a in audited if a["decision"] != first.get(a["decision"]["event_id"])]:
        problems.append(f"{len(unlike)} audited decisions differ from the one published first, e.g. "
                        + _diff(unlike[0], [first.get(unlike[0]), next(a["decision"] for a in audited
                                                                         if a["decision"]["event_id"] == unlike[0])]))
    report = json.loads(verified.stdout) if verified.returncode in (0, 1) and verified.stdout.strip() else {}
    if verified.returncode != 0 or not report.get("ok") or set(report["partitions"]) != {str(p) for p in PARTITIONS}:
        problems.append(f"audit verify: {verified.stdout[-2000:]}{verified.stderr[-2000:]}")
    elif not all(p["checkpoints_verified"] >= 1 for p in report["partitions"].values()):
        problems.append(f"a partition has no verified checkpoint: {report}")

    # spend is exact, and splits between the survivors' hosts
    if spent != expected:
        problems.append("spend (micro-USD, got vs expected): "
                        + str({t: (spent.get(t), usd) for t, usd in expected.items() if spent.get(t) != usd})
                        + f"; extra scopes {set(spent) - set(expected)}")
    if not (local[0] and local[1] and not set(local[0]) & set(local[1]) and {**local[0], **local[1]} == expected):
        problems.append(f"survivors' own spend {local} does not split the expected {expected}")
    print(f"\nhosts: broker {bootstrap}, " + ", ".join(f"{w.name} {w.host}:{w.web_port}" for w in workers)
          + f"\nready in {ready_s:.1f} s; partitions before {dict(sorted(before.items()))}; killed {victim.name} "
          f"after {victim_decided:.0f} of its decisions, {sent_at_kill}/{producer.chunks} chunks of load out;"
          f" after {dict(sorted(after.items()))} ({moved_s:.1f} s to move)"
          f"\nsurvivors' decisions {survivor_decided}; {len(decisions)} decision records for {N} requests "
          f"({len(decisions) - N} re-sent); audit: {len(audit)} records, "
          f"{sum(p['checkpoints_verified'] for p in report.get('partitions', {}).values())} signed checkpoints verified, "
          f"{sum(p['duplicates'] for p in report.get('partitions', {}).values())} duplicates; spend of {len(expected)} tenants "
          f"{'exact' if spent == expected else 'WRONG'} ({COSTS} costs + {REPEATS} repeats); {time.monotonic() - started:.1f} s in all")
    assert not problems, "\n".join(problems)
