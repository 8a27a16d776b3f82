"""The audit topic for auditors, on the real broker with a real worker: signed checkpoints,
`audit verify` naming each forgery at its offset, archive and offline verification,
replay, reproduce, and a chain that survives a SIGKILL without a fork."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resontinex.agents.audit import ChainHead, checkpoint_body, seal

from .conftest import run
from .harness import REPO, produce, read_all, start_worker

pytestmark = pytest.mark.integration


def _cli(broker, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", *argv, "--bootstrap", broker.bootstrap],
                          cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120)


def _request(i: int, tenant: str) -> tuple[bytes, bytes]:
    shaky = i % 7 == 0  # under the trust floor: alerts too
    return tenant.encode(), orjson.dumps({"event_id": f"{tenant}-{i}", "tenant": tenant,
                                          "signals": {"alignment_score": 0.2 if shaky else 0.9,
                                                      "epistemic_risk": 0.9 if shaky else 0.1,
                                                      "confidence_band": 0.1}})


async def _copy(bootstrap: str, topic: str, partition: int, records: list[dict]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        for record in records:
            await (await producer.send(topic, orjson.dumps(record), partition=partition))
    finally:
        await producer.stop()


def _reseal(records: list[dict], start: int) -> list[dict]:
    out = records[:start]
    head = ChainHead(records[start]["seq"], records[start]["prev_hash"])
    for rec in records[start:]:
        sealed, head = seal(head, **{k: rec[k] for k in ("event_id", "kind", "tenant", "ts", "policy_version",
                                                           "record")})
        out.append(sealed)
    return out


@pytest.fixture
def signed_chain(broker, tmp_path):
    """A worker with a signing key has written decisions, alerts and checkpoints."""
    keys = tmp_path / "audit"
    keygen = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "keygen", "--out", str(keys)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert keygen.returncode == 0, keygen.stderr
    env = {"RESONTINEX_AUDIT_SIGNING_KEY_FILE": f"{keys}.key", "RESONTINEX_AUDIT_CHECKPOINT_EVERY": "10",
           "RESONTINEX_AUDIT_CHECKPOINT_S": "1"}
    worker = start_worker(broker.bootstrap, tmp_path / "w", env=env)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", [_request(i, t) for t in ("acme", "globex")
                                                             for i in range(40)]))
        run(read_all(broker.bootstrap, "decisions", expect=80))
        records = run(read_all(broker.bootstrap, "audit", settle_s=3.0))  # the timer's checkpoints too
    finally:
        worker.stop()
    return Path(f"{keys}.pub"), records, env


def test_verify_names_each_forgery_at_its_offset_and_passes_the_real_chain(broker, tmp_path, signed_chain):
    public, records, _ = signed_chain
    kinds = [r["kind"] for *_, r in records]
    assert {"config", "decision", "alert", "checkpoint"} <= set(kinds)
    ok = _cli(broker, "verify", "--public-key", str(public), "--output-format", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and sum(p["checkpoints_verified"] for p in report["partitions"].values()) >= 2

    partition = max({p for p, *_ in records}, key=lambda p: sum(q == p for q, *_ in records))
    chain = [r for p, _, _, r in sorted(records, key=lambda x: (x[0], x[1])) if p == partition]
    first_cp = next(i for i, r in enumerate(chain) if r["kind"] == "checkpoint" and i > 4)
    k = first_cp - 2  # a decision or alert before the first checkpoint
    altered = [dict(r) for r in chain]
    altered[k] = {**altered[k], "ts": "2020-01-01T00:00:00.000Z"}
    forged_cp = [dict(r) for r in chain]
    forged_cp[1] = {**forged_cp[1], "tenant": "mallory"}
    forged_cp = _reseal(forged_cp, 1)  # every hash redone: only the signature can tell
    intruder, _ = seal(ChainHead(chain[k]["seq"], chain[k]["prev_hash"]),
                       **{**{f: chain[k][f] for f in ("kind", "tenant", "ts", "policy_version", "record")},
                          "event_id": "au-forged"})
    other_key = Ed25519PrivateKey.generate()
    fake_cp, _ = seal(ChainHead(chain[k + 1]["seq"], chain[k]["hash"]), event_id="cp-fake", kind="checkpoint",
                      tenant="_system", ts=chain[k]["ts"], policy_version=chain[k]["policy_version"],
                      record=checkpoint_body(other_key, partition=partition, seq=chain[k]["seq"],
                                             head_hash=chain[k]["hash"]))
    cases = {
        "altered": (altered, "modified", k),
        "dropped": (chain[:k] + chain[k + 1:], "missing", k),
        "swapped": (chain[:k] + [chain[k + 1], chain[k]] + chain[k + 2:], "reordered", k),
        "inserted": (chain[:k] + [intruder] + chain[k:], "inserted", k),
        "rehashed": (forged_cp, "bad_signature", next(i for i, r in enumerate(forged_cp) if r["kind"] == "checkpoint"
                                                      and i > 1)),
        "fake-checkpoint": (_reseal(chain[:k + 1] + [fake_cp] + chain[k + 1:], k + 1), "bad_signature", k + 1),
    }
    for name, (copy, kind, offset) in cases.items():
        run(_copy(broker.bootstrap, f"{name}-audit", partition, copy))
        out = _cli(broker, "verify", "--public-key", str(public), "--output-format", "json",
                   env={"RESONTINEX_TOPIC_PREFIX": f"{name}-"})
        assert out.returncode == 1, (name, out.stdout, out.stderr)
        error = json.loads(out.stdout)["partitions"][str(partition)]["first_error"]
        assert (error["kind"], error["offset"]) == (kind, offset), (name, error)
    stripped = _reseal([dict(r, tenant="mallory") if i == 1 else r for i, r in enumerate(chain)
                        if r["kind"] != "checkpoint"], 1)
    run(_copy(broker.bootstrap, "stripped-audit", partition, stripped))
    out = _cli(broker, "verify", "--public-key", str(public), "--max-unsigned", "20", "--output-format", "json",
               env={"RESONTINEX_TOPIC_PREFIX": "stripped-"})
    error = json.loads(out.stdout)["partitions"][str(partition)]["first_error"]
    assert out.returncode == 1 and (error["kind"], error["offset"]) == ("unsigned", 0), error
    run(_copy(broker.bootstrap, "clean-audit", partition, chain))
    clean = _cli(broker, "verify", "--public-key", str(public), env={"RESONTINEX_TOPIC_PREFIX": "clean-"})
    assert clean.returncode == 0 and "all intact" in clean.stdout, clean.stdout


def test_archive_verifies_with_no_kafka_and_replay_and_reproduce_read_it(broker, tmp_path, signed_chain):
    public, records, _ = signed_chain
    archive = tmp_path / "audit.jsonl"
    done = _cli(broker, "archive", "--out", str(archive))
    assert done.returncode == 0, done.stderr
    offline = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--file", str(archive),
                              "--public-key", str(public)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0 and f"verified {len(records):,} records" in offline.stdout, offline.stdout
    lines = archive.read_bytes().splitlines()
    forged = orjson.loads(lines[5])
    forged["record"]["ts"] = "2020-01-01T00:00:00.000Z"
    (tmp_path / "forged.jsonl").write_bytes(b"\n".join([*lines[:5], orjson.dumps(forged), *lines[6:]]) + b"\n")
    bad = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--file", str(tmp_path / "forged.jsonl"),
                          "--public-key", str(public)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and f"FAILED at offset {forged['offset']}" in bad.stdout, bad.stdout

    partial = [line for line in lines if b'"partition":0,' not in line]  # a partition's records left out
    assert len(partial) < len(lines)
    (tmp_path / "partial.jsonl").write_bytes(b"\n".join(partial) + b"\n")
    gap = subprocess.run([sys.executable, "-m", "resontinex.app.cli", "audit", "verify", "--file", str(tmp_path / "partial.jsonl"),
                          "--public-key", str(public)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert gap.returncode == 1 and "partition 0: FAILED" in gap.stdout and "missing" in gap.stdout, gap.stdout

    replay = _cli(broker, "replay", "--file", str(archive), "--tenant", "globex", "--kind", "decision")
    assert replay.returncode == 0, replay.stderr
    replayed = [orjson.loads(line) for line in replay.stdout.splitlines()]
    assert len(replayed) == 40 and all(r["record"]["tenant"] == "globex" for r in replayed)

    same = _cli(broker, "reproduce", "--file", str(archive), "--output-format", "json")
    assert same.returncode == 0, same.stdout + same.stderr
    report = json.loads(same.stdout)
    assert (report["decisions"], report["differ_under_recorded_config"], report["differ_today"]) == (80, 0, 0)
    stricter = tmp_path / "config"
    stricter.mkdir()
    trust = (REPO / "config" / "trust_gate.yaml").read_text().replace("trust_floor: 0.60", "trust_floor: 0.95")
    assert trust != (REPO / "config" / "trust_gate.yaml").read_text()
    (stricter / "trust_gate.yaml").write_text(trust)
    today = _cli(broker, "reproduce", "--file", str(archive), "--output-format", "json", "--config-dir", str(stricter))
    changed = json.loads(today.stdout)
    assert today.returncode == 0 and changed["differ_under_recorded_config"] == 0 and changed["differ_today"] > 0


def test_a_sigkill_while_writing_leaves_one_chain_per_partition(broker, tmp_path):
    """Killed once at the worst moment (decisions out, audit not written) and once at a
    random moment under load: after each restart the chain goes on from the last record in
    the topic, so verify finds no fork and no gap; redelivered work shows as duplicates."""
    requests = [_request(i, t) for t in ("acme", "globex", "initech", "hooli") for i in range(1500)]
    worker = start_worker(broker.bootstrap, tmp_path / "w", env={"RESONTINEX_CRASH_AT": "gate.outputs_sent"})
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", requests[:100]))
        assert worker.proc.wait(timeout=60) < 0  # killed itself: the decisions are out, their audit is not
    finally:
        worker.stop()
    worker = start_worker(broker.bootstrap, tmp_path / "w", web_port=worker.web_port)
    try:
        worker.wait_ready()
        run(produce(broker.bootstrap, "decision-requests", requests[100:]))
        asyncio.run(_wait_for_audit(broker.bootstrap, 1500))
        worker.kill()  # mid-stream
    finally:
        worker.stop()
    worker = start_worker(broker.bootstrap, tmp_path / "w2")
    try:
        worker.wait_ready()
        decided = {d["request_id"] for *_, d in run(read_all(broker.bootstrap, "decisions", expect=len(requests),
                                                                timeout_s=180))}
        assert len(decided) == len(requests)
        run(read_all(broker.bootstrap, "audit", settle_s=2.0))
    finally:
        worker.stop()
    out = _cli(broker, "verify", "--output-format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    decisions = sum(p["records"] for p in report["partitions"].values())
    assert report["ok"] and decisions >= len(requests)


async def _wait_for_audit(bootstrap: str, n: int, timeout_s: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(await read_all(bootstrap, "audit", settle_s=0.0, timeout_s=5)) < n:
        assert asyncio.get_running_loop().time() < deadline, "the worker wrote too little audit"
        await asyncio.sleep(0.5)
