"""Audit verification records/s (issue 6), against hashing alone as the ceiling.

    python -m bench.audit_verify [--quick] [--records N] [--partitions P] [--repeats R]
                                 [--out bench/results/audit-verify-<timestamp>.json]

A deterministic synthetic audit topic is built first (not timed): per partition, a
`config` record, then decision records shaped like the gate's (`agents/gate/_plan.py`
`_audit`: the request with signals, an estimate and, for every other request, routing
offers; the `decision_event` with a real trust verdict from `evaluate_values`, a budget
summary and, when routed, a route summary; the source offset), an `alert` record after
each decision under the trust floor (`floor_alert`), and a `checkpoint` after every
1,000 records signed with a fresh Ed25519 key, all sealed with `seal_many`/`seal`, so
every hash is real. Each partition holds exactly N records.

Rows, each timed over every record of every partition (best of R repeats, and the
median; the repeats interleaved across rows), as records/s and as a ratio to
`hash_only` measured in the same run:

1. `hash_only`, the ceiling: per record, the record without `hash` (a dict copy), its
   RFC 8785 canonical JSON (`_record.digest`, the project's fast path) and the SHA-256
   of `prev_hash` + those bytes, compared with `hash`. No other check.
2. `verify`: `agents.audit.verify` per partition without a key (shape, hash, seq
   continuity, links, duplicates).
3. `verify_signed`: the same with the public key: every checkpoint's signature checked.
4. `verify_archive`: what `resontinex audit verify --file ARCHIVE` does: `read_archive`
   of a JSON Lines archive on disk (orjson parsing) + `verify_log` with the key.

Where the time goes (µs per record, same records): the dict copy, `canonical_json`,
SHA-256 alone, `orjson.dumps` with sorted keys alone (the fast path without its walk),
`rfc8785.dumps` (the pure-Python reference, on a sample), `record_problem` (shape +
hash, what `verify` does per record before its chain bookkeeping), `read_archive` with
the garbage collector off (against the row's, with it on) and one Ed25519 checkpoint
check. The bench's own inputs are frozen out of the collector (`gc.freeze`) while it
times, so the collections it pays for are those of the work measured, as in the CLI.

Correctness in the same run: every verify row must report every partition ok with all
its records checked (and its checkpoints verified when keyed); a copy with one record
changed must fail at that record (`modified`), the same change re-hashed onward (a
forger without the key) must pass unkeyed and fail keyed (`bad_signature`), and an
archive with one changed line must fail `verify_log`. These are the JSON's `sanity`.

Progress goes to stderr; a short table to stdout; every figure to one JSON file.
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from resontinex.agents.audit import AuditEntry, ChainHead, checkpoint_body, checkpoint_problem, seal, seal_many, verify
from resontinex.agents.audit._canonical import canonical_json
from resontinex.agents.audit._record import digest, record_problem
from resontinex.agents.gate._decide import decision_event, floor_alert, most_restrictive, trust_reasons
from resontinex.agents.trust import default_config, evaluate_values, policy_version
from resontinex.schemas import ms_to_ts

from .run import RESULTS, _fmt, git_state, log, mark_finished, publish, ratio

SCHEMA: Final = 1
REPO: Final = Path(__file__).resolve().parents[1]
REPORT_KEYS: Final = ("schema", "meta", "setup", "rows", "ratios", "breakdown", "sanity")
ROWS: Final = ("hash_only", "verify", "verify_signed", "verify_archive")
BASELINE: Final = "hash_only"
CHECKPOINT_EVERY: Final = 1_000
SYSTEM_TENANT: Final = "_system"
TENANTS: Final = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
WORKFLOWS: Final = ("chat", "summarise", "code-review", "default")
PROVIDERS: Final = (("akash", 1.45, 145.0, 89.0), ("vast", 1.2, 210.0, 82.0), ("lambda", 2.1, 120.0, 95.0))
BASE_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z
AUDIT_PATHS: Final = ("agents/audit", "app/commands/audit_source.py", "app/commands/audit_commands.py")


# --------------------------------------------------------------------------- the synthetic chain


def _request(p: int, i: int, rng: random.Random) -> dict[str, Any]:
    tenant = TENANTS[i % len(TENANTS)]
    ts = ms_to_ts(BASE_MS + 1000 * i + p)
    request: dict[str, Any] = {
        "event_id": f"r-{p}-{i}", "tenant": tenant, "workflow": WORKFLOWS[i % len(WORKFLOWS)], "ts": ts,
        "signals": {"alignment_score": rng.betavariate(5, 2), "epistemic_risk": rng.betavariate(2, 5),
                    "confidence_band": rng.betavariate(2, 6)},
        "estimate": {"tokens": rng.randint(50, 8000), "cost_usd": rng.randint(100, 2_000_000) / 1_000_000},
    }
    if i % 2:
        request["routing"] = {
            "context": {"workload_type": "llm_inference", "gpu_type": "a100", "region": "us-west",
                        "gpu_hours": round(rng.uniform(0.25, 4.0), 2)},
            "providers": [{"provider_id": pid, "price_usd_per_hour": price, "latency_ms": lat, "reputation": rep,
                           "capacity_available": float(rng.randint(1, 64)), "gpu_types": ["a100", "h100"],
                           "regions": ["us-west", "eu-central"]} for pid, price, lat, rep in PROVIDERS],
            "constraints": {"max_price": 6.0, "max_latency_ms": 600.0, "min_reputation": 60.0},
        }
    return request


def decision_entries(p: int, seed: int = 6) -> Iterator[AuditEntry]:
    """Partition `p`'s audit entries as the gate writes them: its `config` record, then per
    request a `decision` and, under the trust floor, an `alert`. Endless; entry k is the
    same in every call.

    >>> first = list(itertools.islice(decision_entries(0), 3))
    >>> [e["kind"] for e in first[:2]], first[1]["record"]["request"]["event_id"]
    (['config', 'decision'], 'r-0-0')
    >>> first[1]["record"]["decision"]["trust"]["tier"] in ("pass", "monitor", "review", "block")
    True
    """
    config = default_config()
    pv = policy_version(config)
    yield AuditEntry(event_id=f"cfg-{pv}-{p}-0", kind="config", tenant=SYSTEM_TENANT, ts=ms_to_ts(BASE_MS),
                     policy_version=pv, record={"policy_version": pv, "configuration": {"trust": config.as_dict()}})
    for i in itertools.count():
        rng = random.Random((seed << 40) | (p << 32) | i)
        req = _request(p, i, rng)
        sig = req["signals"]
        result = evaluate_values(sig["alignment_score"], sig["epistemic_risk"], sig["confidence_band"], config)
        trust = result.as_dict()
        reasons = trust_reasons(result.tier, result.tier_decision, result.score, result.floor_violation,
                                result.entropy_flag, config.trust_floor, config.entropy_threshold,
                                sig["confidence_band"])
        cost = req["estimate"]["cost_usd"]
        spent = rng.randint(0, 900_000_000) / 1_000_000
        budget = {"status": "ok", "utilization": round(spent / 1000.0, 6), "remaining_usd": round(1000.0 - spent, 6),
                  "effective_cost_usd": cost, "multiplier": 1.0, "multipliers": [],
                  "scope": f"{req['tenant']}/{req['workflow']}", "period": "month",
                  "period_start": "2026-01-01T00:00:00.000Z", "period_end": "2026-02-01T00:00:00.000Z",
                  "limit_usd": 1000.0, "downgraded": False, "mode": None, "retry_after_s": None}
        route = None
        if "routing" in req:
            route = {"provider_id": PROVIDERS[i % len(PROVIDERS)][0],
                     "mode": "exploit" if rng.random() < 0.9 else "explore",
                     "q_value": round(rng.uniform(-2.0, 9.0), 6), "propensity": round(rng.uniform(0.3, 1.0), 6),
                     "policy": "epsilon_greedy", "violations": []}
        decision = decision_event(tenant=req["tenant"], request_id=req["event_id"], workflow=req["workflow"],
                                  ts=req["ts"], verb=most_restrictive([trust["decision"]]), reasons=reasons,
                                  policy_version=pv, trust=trust, budget=budget, route=route)
        body = {"request": req, "decision": decision,
                "source": {"topic": "decision-requests", "partition": p, "offset": i}}
        yield AuditEntry(event_id="au-" + decision["event_id"][2:], kind="decision", tenant=req["tenant"],
                         ts=decision["ts"], policy_version=pv, record=body)
        if trust["floor_violation"]:
            alert = floor_alert(decision, config.trust_floor)
            yield AuditEntry(event_id="au-" + alert["event_id"][2:], kind="alert", tenant=req["tenant"], ts=alert["ts"],
                             policy_version=pv, record={"alert": alert})


def build_partition(p: int, n: int, key: Ed25519PrivateKey, every: int = CHECKPOINT_EVERY,
                    seed: int = 6) -> list[dict[str, Any]]:
    """Exactly `n` sealed records of partition `p`, a signed checkpoint after every `every`.

    >>> key = Ed25519PrivateKey.generate()
    >>> recs = build_partition(1, 25, key, every=10)
    >>> len(recs), [r["seq"] for r in recs if r["kind"] == "checkpoint"]
    (25, [10, 21])
    >>> verify(recs, public_key=key.public_key(), partition=1).checkpoints_verified
    2
    """
    source = decision_entries(p, seed)
    records: list[dict[str, Any]] = []
    head = ChainHead.genesis()
    while len(records) < n:
        chunk, head = seal_many(head, itertools.islice(source, min(every, n - len(records))))
        records.extend(chunk)
        if len(chunk) == every and len(records) < n:
            body = checkpoint_body(key, partition=p, seq=head.seq_next - 1, head_hash=head.hash)
            rec, head = seal(head, event_id=f"cp-{p}-{head.seq_next - 1}", kind="checkpoint", tenant=SYSTEM_TENANT,
                             ts=records[-1]["ts"], policy_version=records[-1]["policy_version"], record=body)
            records.append(rec)
    return records


def write_archive(path: Path, chains: dict[int, list[dict[str, Any]]]) -> int:
    """Write the chains as `resontinex audit archive` does (header, then one line per
    record, offset = seq); the file's size in bytes."""
    from resontinex.app.commands.audit_source import archive_header, archive_line

    parts = {str(p): {"from_offset": 0, "to_offset": len(recs) - 1, "start": None} for p, recs in chains.items()}
    with path.open("wb") as fh:
        fh.write(json.dumps(archive_header("audit", parts, ms_to_ts(BASE_MS))).encode() + b"\n")
        for p, recs in chains.items():
            for rec in recs:
                fh.write(archive_line(p, rec["seq"], rec))
    return path.stat().st_size


def reseal_from(records: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """Re-hash records[start:] onto the chain before them, as a forger without the key would."""
    head = ChainHead(records[start]["seq"], records[start]["prev_hash"])
    fields = ("event_id", "kind", "tenant", "ts", "policy_version", "record")
    entries = [AuditEntry(**{k: rec[k] for k in fields}) for rec in records[start:]]  # type: ignore[typeddict-item]
    resealed, _ = seal_many(head, entries)
    return records[:start] + resealed


# --------------------------------------------------------------------------- timing


def hash_all(chains: Sequence[Sequence[dict[str, Any]]]) -> int:
    """The ceiling: recompute every record's hash as the chain defines it; the mismatches.

    >>> key = Ed25519PrivateKey.generate()
    >>> recs = build_partition(0, 12, key, every=5)
    >>> hash_all([recs]), hash_all([recs[:3] + [{**recs[3], "ts": "x"}]])
    (0, 1)
    """
    bad = 0
    for records in chains:
        for rec in records:
            if digest(rec["prev_hash"], {k: v for k, v in rec.items() if k != "hash"}) != rec["hash"]:
                bad += 1
    return bad


def measure(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[Any]]:
    """Wall seconds of `repeats` calls (a full collection before each; the collector stays
    on, as in the CLI) and what each call returned."""
    times, results = [], []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        results.append(fn())
        times.append(time.perf_counter() - start)
    return times, results


def row_of(records: int, times: Sequence[float], **extra: Any) -> dict[str, Any]:
    """A row: records/s at the best and the median time, µs per record.

    >>> r = row_of(1000, [0.5, 0.25, 0.4])
    >>> r["per_s"], r["per_s_median"], r["us_per_record"], r["best_s"]
    (4000.0, 2500.0, 250.0, 0.25)
    """
    best, median = min(times), statistics.median(times)
    return {"records": records, "repeats": len(times), "best_s": round(best, 6), "median_s": round(median, 6),
            "per_s": round(records / best, 1) if best > 0 else None,
            "per_s_median": round(records / median, 1) if median > 0 else None,
            "us_per_record": round(best / records * 1e6, 3) if records else None, **extra}


def add_ratios(rows: dict[str, dict[str, Any]], baseline: str = BASELINE) -> dict[str, float | None]:
    """Each row's records/s as a ratio to the baseline's (best and median), in the rows
    and returned as `<row>_vs_<baseline>`.

    >>> rows = {"hash_only": {"per_s": 100.0, "per_s_median": 80.0}, "verify": {"per_s": 50.0, "per_s_median": 60.0}}
    >>> add_ratios(rows)
    {'verify_vs_hash_only': 0.5, 'verify_vs_hash_only_median': 0.75}
    >>> rows["verify"]["vs_hash_only"], rows["hash_only"]["vs_hash_only"]
    (0.5, 1.0)
    """
    base, base_median = rows[baseline]["per_s"], rows[baseline]["per_s_median"]
    out: dict[str, float | None] = {}
    for name, row in rows.items():
        row["vs_" + baseline] = ratio(row["per_s"], base)
        row["vs_" + baseline + "_median"] = ratio(row["per_s_median"], base_median)
        if name != baseline:
            out[f"{name}_vs_{baseline}"] = row["vs_" + baseline]
            out[f"{name}_vs_{baseline}_median"] = row["vs_" + baseline + "_median"]
    return out


def _report_summary(reports: dict[int, Any], expected: dict[int, int], checkpoints: dict[int, int],
                    signed: bool) -> dict[str, Any]:
    """Whether `verify` passed every partition whole (from VerifyReports or verify_log dicts)."""
    def get(r: Any, name: str) -> Any:
        return r[name] if isinstance(r, dict) else getattr(r, name)

    per = {}
    for p, r in reports.items():
        checked = get(r, "records") if isinstance(r, dict) else r.records_checked
        per[str(p)] = {"ok": bool(get(r, "ok")), "records_checked": checked, "duplicates": get(r, "duplicates"),
                       "checkpoints_verified": get(r, "checkpoints_verified"),
                       "checkpoints_unverified": get(r, "checkpoints_unverified"),
                       "unsigned_tail": get(r, "unsigned_tail")}
    whole = all(x["ok"] and x["records_checked"] == expected[int(p)] and x["duplicates"] == 0
                and x["checkpoints_verified" if signed else "checkpoints_unverified"] == checkpoints[int(p)]
                for p, x in per.items()) and set(per) == {str(p) for p in expected}
    return {"ok": whole, "partitions": per}


def run_rows(chains: dict[int, list[dict[str, Any]]], archive: Path, public_key: Ed25519PublicKey,
             repeats: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Time the rows, interleaved (repeat 1 of every row, then repeat 2, ...), so that a
    change in the machine's load hits every row alike; each row's figures and checks."""
    from resontinex.app.commands.audit_commands import verify_log
    from resontinex.app.commands.audit_source import read_archive

    total = sum(map(len, chains.values()))
    expected = {p: len(recs) for p, recs in chains.items()}
    checkpoints = {p: sum(r["kind"] == "checkpoint" for r in recs) for p, recs in chains.items()}
    all_records = list(chains.values())

    def verify_all(key: Ed25519PublicKey | None) -> dict[int, Any]:
        return {p: verify(recs, public_key=key, partition=p if key is not None else None) for p, recs in chains.items()}

    def from_archive() -> tuple[dict[int, dict[str, Any]], float, float]:
        start = time.perf_counter()
        got = read_archive(archive, quiet=True)
        read = time.perf_counter()
        results = verify_log(got, public_key, quiet=True)
        return results, read - start, time.perf_counter() - read

    fns: dict[str, Callable[[], Any]] = {
        "hash_only": lambda: hash_all(all_records), "verify": lambda: verify_all(None),
        "verify_signed": lambda: verify_all(public_key), "verify_archive": from_archive}
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    results: dict[str, list[Any]] = {name: [] for name in ROWS}
    for r in range(repeats):
        for name in ROWS:
            took, got = measure(fns[name], 1)
            times[name] += took
            results[name] += got
        log(f"repeat {r + 1}/{repeats}: " + ", ".join(f"{name} {total / times[name][-1]:,.0f}/s" for name in ROWS))

    rows: dict[str, dict[str, Any]] = {}
    checks: dict[str, Any] = {}
    rows["hash_only"] = row_of(total, times["hash_only"])
    checks["hash_only"] = {"ok": all(x == 0 for x in results["hash_only"]), "mismatches": results["hash_only"][-1]}
    for name, signed in (("verify", False), ("verify_signed", True)):
        rows[name] = row_of(total, times[name])
        checks[name] = _report_summary(results[name][-1], expected, checkpoints, signed)
        checks[name]["ok"] = all(_report_summary(x, expected, checkpoints, signed)["ok"] for x in results[name])
    best = min(range(repeats), key=times["verify_archive"].__getitem__)
    _, read_s, verify_s = results["verify_archive"][best]
    rows["verify_archive"] = row_of(total, times["verify_archive"], read_s=round(read_s, 6),
                                    verify_log_s=round(verify_s, 6),
                                    us_read_per_record=round(read_s / total * 1e6, 3),
                                    us_verify_per_record=round(verify_s / total * 1e6, 3))
    checks["verify_archive"] = _report_summary(results["verify_archive"][-1][0], expected, checkpoints, True)
    checks["verify_archive"]["ok"] = all(_report_summary(x[0], expected, checkpoints, True)["ok"]
                                         for x in results["verify_archive"])
    return rows, checks


def _best_us(fn: Callable[[], Any], count: int, repeats: int) -> float:
    times, _ = measure(fn, repeats)
    return round(min(times) / count * 1e6, 3) if count else 0.0


def _gc_off(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()
    return run


def breakdown(chains: dict[int, list[dict[str, Any]]], archive: Path, public_key: Ed25519PublicKey, repeats: int,
              sample: int) -> dict[str, Any]:
    """µs per record of the parts of hashing and verifying, on the same records (results
    are dropped as they come, so the loops do not grow the heap)."""
    from resontinex.app.commands.audit_source import read_archive

    records = [rec for recs in chains.values() for rec in recs]
    n = len(records)
    contents = [{k: v for k, v in rec.items() if k != "hash"} for rec in records]
    canon = [canonical_json(c) for c in contents]
    prevs = [rec["prev_hash"] for rec in records]
    step = max(1, n // sample) if sample else n + 1
    picked = contents[::step][:sample] if sample else []
    cps = [(p, i, rec) for p, recs in chains.items() for i, rec in enumerate(recs) if rec["kind"] == "checkpoint"]
    gc.freeze()  # the bench's own inputs: not the collector's work in what is timed
    sha = hashlib.sha256
    sort_keys = orjson.OPT_SORT_KEYS

    def copies() -> None:
        for r in records:
            {k: v for k, v in r.items() if k != "hash"}

    def canonicals() -> None:
        for c in contents:
            canonical_json(c)

    def orjsons() -> None:
        for c in contents:
            orjson.dumps(c, option=sort_keys)

    def hashes() -> None:
        for prev, b in zip(prevs, canon):
            sha(prev.encode("ascii") + b).hexdigest()

    def problems() -> None:
        for r in records:
            record_problem(r)

    def references() -> None:
        for c in picked:
            rfc8785.dumps(c)

    out = {
        "copy_without_hash": _best_us(copies, n, repeats),
        "canonical_json": _best_us(canonicals, n, repeats),
        "orjson_sorted_alone": _best_us(orjsons, n, repeats),
        "sha256": _best_us(hashes, n, repeats),
        "record_problem": _best_us(problems, n, repeats),
        "rfc8785_dumps_sample": _best_us(references, len(picked), repeats) if picked else None,
        "rfc8785_sample_records": len(picked),
        "canonical_bytes_mean": round(sum(map(len, canon)) / n, 1) if n else None,
        "read_archive_gc_off": _best_us(_gc_off(lambda: read_archive(archive, quiet=True)), n, repeats),
    }
    if cps:
        def check_all() -> None:
            for p, i, rec in cps:
                prev = chains[p][i - 1]
                checkpoint_problem(rec["record"], public_key, partition=p, seq=prev["seq"], head_hash=prev["hash"])

        out["checkpoint_check_us_each"] = _best_us(check_all, len(cps), repeats)
        out["checkpoints"] = len(cps)
    return out


# --------------------------------------------------------------------------- sanity


def tamper_index(records: Sequence[dict[str, Any]]) -> int:
    """A decision record halfway to the last checkpoint (or halfway, with none), so a
    signature follows it.

    >>> kinds = ["config"] + ["decision"] * 9 + ["checkpoint"] + ["decision"] * 5
    >>> tamper_index([{"kind": k} for k in kinds])
    5
    """
    end = max((i for i, rec in enumerate(records) if rec["kind"] == "checkpoint"), default=len(records))
    i = end // 2
    while records[i]["kind"] != "decision":
        i += 1
    return i


def tamper_checks(chains: dict[int, list[dict[str, Any]]], public_key: Ed25519PublicKey, tmp: Path) -> dict[str, Any]:
    """A changed record in a copy is caught; re-hashed onward, the signatures catch it;
    changed in an archive, `verify_log` catches it."""
    from resontinex.app.commands.audit_commands import verify_log
    from resontinex.app.commands.audit_source import read_archive

    p = min(chains)
    original = chains[p]
    idx = tamper_index(original)
    changed = copy.deepcopy(original[idx])
    decision = changed["record"]["decision"]
    decision["verb"] = "execute" if decision["verb"] != "execute" else "abort"
    tampered = [*original[:idx], changed, *original[idx + 1:]]
    report = verify(tampered)
    err = report.first_error
    caught = err is not None and err.kind == "modified" and err.index == idx

    forged = reseal_from(tampered, idx)
    unkeyed = verify(forged)
    keyed = verify(forged, public_key=public_key, partition=p)
    next_cp = next((i for i in range(idx, len(forged)) if forged[i]["kind"] == "checkpoint"), None)
    kerr = keyed.first_error
    forgery_caught = (next_cp is not None and unkeyed.ok and kerr is not None and kerr.kind == "bad_signature"
                      and kerr.index == next_cp)

    path = tmp / "tampered.jsonl"
    write_archive(path, {p: tampered})
    results = verify_log(read_archive(path, quiet=True), public_key, quiet=True)
    aerr = results[p]["first_error"]
    archive_caught = not results[p]["ok"] and aerr is not None and aerr["offset"] == original[idx]["seq"]
    original_intact = verify(original).ok and original[idx]["record"]["decision"]["verb"] != decision["verb"]
    return {
        "tamper_caught": caught and original_intact,
        "tamper": {"partition": p, "index": idx, "seq": original[idx]["seq"], "changed": "record.decision.verb",
                   "found": None if err is None else {"index": err.index, "kind": err.kind, "message": err.message}},
        "forgery_caught_by_signature": forgery_caught,
        "forgery": {"resealed_from": idx, "unkeyed_ok": unkeyed.ok, "next_checkpoint_index": next_cp,
                    "found": None if kerr is None else {"index": kerr.index, "kind": kerr.kind,
                                                        "message": kerr.message}},
        "archive_tamper_caught": archive_caught,
        "archive_tamper": {"found": aerr},
    }


# --------------------------------------------------------------------------- report


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def meta(args: argparse.Namespace) -> dict[str, Any]:
    return {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **git_state(AUDIT_PATHS, "audit"), "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(),
            "rfc8785": _version("rfc8785"), "cryptography": _version("cryptography"), "orjson": _version("orjson"),
            "quick": args.quick}


def setup(args: argparse.Namespace, chains: dict[int, list[dict[str, Any]]], archive_bytes: int,
          build_s: float) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for recs in chains.values():
        for rec in recs:
            kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
    total = sum(kinds.values())
    return {"records_per_partition": args.records, "partitions": args.partitions, "records": total,
            "kinds": dict(sorted(kinds.items())), "checkpoint_every": args.checkpoint_every, "repeats": args.repeats,
            "seed": args.seed, "archive_bytes": archive_bytes,
            "archive_bytes_per_record": round(archive_bytes / total, 1) if total else None,
            "build_s": round(build_s, 3), "baseline": BASELINE,
            "timing": "wall seconds over every record of every partition; best of repeats (per_s) and median "
                      "(per_s_median); repeats interleaved across rows; gc on, a full collection before each; "
                      "the bench's own inputs (the chains) frozen out of the collector (gc.freeze)",
            "hash_only_does": "dict copy without 'hash' + canonical JSON (agents.audit._record.digest) + SHA-256, "
                              "compared with 'hash'",
            "verify_archive_does": "resontinex.app.commands.audit_source.read_archive + resontinex.app.commands.audit_commands.verify_log(public key, quiet)"}


def assemble(info: dict[str, Any], setup_: dict[str, Any], rows: dict[str, dict[str, Any]], checks: dict[str, Any],
             parts: dict[str, Any], tamper: dict[str, Any]) -> dict[str, Any]:
    ratios = add_ratios(rows)
    sanity = {"all_rows_ok": all(checks[name]["ok"] for name in ROWS),
              **{f"{name}_ok": checks[name]["ok"] for name in ROWS},
              **tamper, "reports": {name: checks[name] for name in ROWS if name != BASELINE}}
    return {"schema": SCHEMA, "meta": info, "setup": setup_, "rows": rows, "ratios": ratios, "breakdown": parts,
            "sanity": sanity}


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    rows, parts, sanity = report["rows"], report["breakdown"], report["sanity"]
    head = ("row", "records/s", "µs/record", "median /s", "× hash_only", "ok")
    lines = [head]
    for name, r in rows.items():
        lines.append((name, _fmt(r["per_s"], "", 0), _fmt(r["us_per_record"], "", 1), _fmt(r["per_s_median"], "", 0),
                      "baseline" if name == BASELINE else _fmt(r.get("vs_" + BASELINE), "×", 3),
                      "yes" if sanity.get(f"{name}_ok") else "NO"))
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    out = ["  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(line, widths)))
           for line in lines]
    a = rows.get("verify_archive") or {}
    if a:
        out.append(f"verify_archive = read_archive {_fmt(a['us_read_per_record'], ' µs', 1)} + verify_log "
                   f"{_fmt(a['us_verify_per_record'], ' µs', 1)} per record")
    out.append("per record: copy " + _fmt(parts["copy_without_hash"], " µs", 2)
               + ", canonical_json " + _fmt(parts["canonical_json"], " µs", 2)
               + " (orjson sorted alone " + _fmt(parts["orjson_sorted_alone"], " µs", 2)
               + "), sha256 " + _fmt(parts["sha256"], " µs", 2)
               + ", record_problem " + _fmt(parts["record_problem"], " µs", 2)
               + "; read_archive with gc off " + _fmt(parts["read_archive_gc_off"], " µs", 1)
               + "; rfc8785.dumps " + _fmt(parts.get("rfc8785_dumps_sample"), " µs", 1)
               + f" (sample of {parts['rfc8785_sample_records']:,})"
               + (f"; one checkpoint check {_fmt(parts['checkpoint_check_us_each'], ' µs', 1)}"
                  if "checkpoint_check_us_each" in parts else ""))
    out.append(f"sanity: rows ok {'yes' if sanity['all_rows_ok'] else 'NO'}, tamper caught "
               f"{'yes' if sanity['tamper_caught'] else 'NO'}, re-hashed forgery caught by signature "
               f"{'yes' if sanity['forgery_caught_by_signature'] else 'NO'}, archive tamper caught "
               f"{'yes' if sanity['archive_tamper_caught'] else 'NO'}")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options, with defaults filled in.

    >>> a = parse_args([])
    >>> (a.records, a.partitions, a.repeats, a.checkpoint_every, a.rfc8785_sample)
    (50000, 2, 3, 1000, 2000)
    >>> a.out.name.startswith("audit-verify-"), a.out.parent.name
    (True, 'results')
    >>> q = parse_args(["--quick"])
    >>> q.records, q.rfc8785_sample
    (2000, 200)
    """
    ap = argparse.ArgumentParser(prog="python -m bench.audit_verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 records per partition (a smoke check)")
    ap.add_argument("--records", "-n", type=int, help="records per partition (default 50,000; quick 2,000)")
    ap.add_argument("--partitions", type=int, default=2, help="partitions (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row; best and median kept (default 3)")
    ap.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                    help=f"records between signed checkpoints (default {CHECKPOINT_EVERY:,})")
    ap.add_argument("--rfc8785-sample", type=int, help="records timed through rfc8785.dumps (default 2,000; quick 200)")
    ap.add_argument("--seed", type=int, default=6, help="the synthetic records' seed (default 6)")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/audit-verify-<timestamp>.json)")
    args = ap.parse_args(argv)
    if args.records is None:
        args.records = 2_000 if args.quick else 50_000
    if args.rfc8785_sample is None:
        args.rfc8785_sample = 200 if args.quick else 2_000
    if args.records < 4 or args.partitions < 1 or args.repeats < 1 or args.checkpoint_every < 2 \
            or args.rfc8785_sample < 0:
        ap.error("--records must be >= 4, --partitions and --repeats >= 1, --checkpoint-every >= 2, "
                 "--rfc8785-sample >= 0")
    args.out = args.out or RESULTS / f"audit-verify-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = meta(args)
    log(f"{args.records:,} records × {args.partitions} partitions, checkpoint every {args.checkpoint_every:,}, "
        f"{args.repeats} repeats; result → {args.out}")
    try:
        report = run(args, info)
    finally:
        gc.unfreeze()
    publish(report, args.out, table(report))
    return 0


def run(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key()
    started = time.perf_counter()
    chains = {p: build_partition(p, args.records, key, args.checkpoint_every, args.seed)
              for p in range(args.partitions)}
    with tempfile.TemporaryDirectory(prefix="audit-verify-") as tmp_dir:
        tmp = Path(tmp_dir)
        archive = tmp / "audit.jsonl"
        archive_bytes = write_archive(archive, chains)
        build_s = time.perf_counter() - started
        gc.freeze()  # the chains are the bench's input: the collector need not scan them in what is timed
        log(f"built {sum(map(len, chains.values())):,} records and a {archive_bytes / 1e6:,.1f} MB archive "
            f"in {build_s:.1f}s")
        rows, checks = run_rows(chains, archive, public_key, args.repeats)
        log("breakdown")
        parts = breakdown(chains, archive, public_key, args.repeats, args.rfc8785_sample)
        log("sanity: tampering")
        tamper = tamper_checks(chains, public_key, tmp)
    mark_finished(info)
    return assemble(info, setup(args, chains, archive_bytes, build_s), rows, checks, parts, tamper)


if __name__ == "__main__":
    sys.exit(main())
