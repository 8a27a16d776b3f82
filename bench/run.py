"""One benchmark run of the gate: microbenchmarks, end-to-end decisions/s, latency.

    python -m bench.run [--quick] [--out bench/results/gate-<timestamp>.json] [-n N]

Measures, in this order, and writes every figure to ONE JSON file, each figure with its
ratio against the baseline measured in the same run (see bench/README.md):

1. scalar `evaluate_values` ns/eval (timeit, best of repeats) vs the seed's 500 ns target;
2. `evaluate_batch` ns/eval at 4,000 rows vs the scalar figure;
3. end-to-end decisions/s through the embedded broker, each variant on a fresh broker
   with N preloaded decision requests (4 partitions, 12 tenants, 3 per partition):
   (a) the project worker (`python -m resontinex.app.cli worker`), then two of them;
   (b) a naive per-event Faust agent doing the same work (`bench.naive_app`);
   (c) a Faust agent that only forwards each event with batched output, and one that
       only counts (`bench.forward_app`);
   (c2) the same forwarding on record batches taken past Faust's per-event delivery
       (`bench.forward_records_app`, `app.engine.record_source`);
   decisions/s = outputs after the warm-up-th / (last output time − warm-up-th output
   time), times being the output records' Kafka timestamps (CreateTime, set when the
   worker appends them); outputs are read by a plain aiokafka consumer in this process;
4. request→decision latency of (a) under a paced load at half of (a)'s measured rate.

Progress goes to stderr; a short table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson

from resontinex.app.settings import EMBEDDED_BROKER_ENV

SCHEMA = 1
PARTITIONS = 4
TENANTS = 12
SOURCE_TOPIC = "decision-requests"
FORWARD_TOPIC = "bench-forwarded"

SCALAR_TARGET_NS = 500.0
LATENCY_TARGET_MS = 100.0
A_VS_C_TARGET = 0.75
A_VS_B_TARGET = 3.0
TWO_VS_ONE_TARGET = 1.3
BATCH_ROWS = 4000
FAUST_FETCH_MAX_WAIT_MS = 1500  # hard-coded in faust/transport/drivers/aiokafka.py (0.15.3)
STOP_S = 5.0  # SIGTERM, then SIGKILL: a graceful Faust shutdown is not what is measured

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


# --------------------------------------------------------------------------- pure helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def git_state(paths: Sequence[str], label: str) -> dict[str, Any]:
    """The commit measured and whether `paths` differ from it (`<label>_tree_dirty`, and a
    hash of the diff as `<label>_diff_sha256`), for a bench's `meta`."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", *paths], cwd=REPO, capture_output=True).stdout
        untracked = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=REPO,
                                   capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, diff, untracked = "", b"", ""
    dirty = bool(diff or untracked)
    return {"git_commit": commit, f"{label}_tree_dirty": dirty,
            f"{label}_diff_sha256": hashlib.sha256(diff).hexdigest()[:16] if dirty else None}


def mark_finished(info: dict[str, Any]) -> None:
    info["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]


def publish(report: dict[str, Any], out: Path, table_text: str) -> None:
    """Write the JSON result, then print the table and where the result went."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table_text)
    print(f"\nwritten: {out}")


def partition_of(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition the default Kafka partitioner (murmur2, as aiokafka and Java) picks."""
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    return DefaultPartitioner()(key, every, every)


def balanced_tenants(count: int = TENANTS, partitions: int = PARTITIONS, prefix: str = "tenant") -> list[str]:
    """`count` names `<prefix>-NN` spread as evenly as murmur2 allows over `partitions`.

    With 4 partitions the 11 tenants t0..t10 of the integration tests hash 4/1/4/2, which
    would cap two workers at 11/8 of one whatever the code does; the bench measures the
    code, so it picks names that hash evenly (12 tenants: 3 per partition).
    """
    cap = [count // partitions + (1 if p < count % partitions else 0) for p in range(partitions)]
    used = [0] * partitions
    out: list[str] = []
    i = 0
    while len(out) < count:
        name = f"{prefix}-{i:02d}"
        p = partition_of(name.encode(), partitions)
        if used[p] < cap[p]:
            used[p] += 1
            out.append(name)
        i += 1
    return out


WORKFLOWS = ("chat", "summarise", "code-review", "default")


def requests(n: int, *, start: int = 0, seed: int = 3, tenants: Sequence[str] | None = None) -> list[tuple[bytes, bytes]]:
    """Requests start..start+n-1 as (key, value), like tests/integration/test_failover.py's
    plus a workflow and a ts; request i is the same whichever call makes it."""
    names = list(tenants or balanced_tenants())
    out = []
    base_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    for i in range(start, start + n):
        rng = random.Random((seed << 32) | i)
        tenant = names[i % len(names)]
        ms = base_ms + i
        out.append((tenant.encode(), orjson.dumps({
            "event_id": f"r-{i}", "tenant": tenant, "workflow": WORKFLOWS[i % len(WORKFLOWS)],
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z",
            "signals": {"alignment_score": rng.random(), "epistemic_risk": rng.random(),
                        "confidence_band": rng.random()},
        })))
    return out


def rate(timestamps_ms: Iterable[int], warmup: int, *, not_before_ms: float | None = None) -> dict[str, Any]:
    """Outputs per second after the warm-up.

    t0 is the timestamp of the `warmup`-th output (1-based; the first output when
    `warmup` is 0), or `not_before_ms` if later (e.g. the end of a load that was still
    being produced). The rate counts the outputs strictly after t0 over (last − t0):
    outputs that share t0's millisecond were made before the window opened.

    >>> rate([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], 1)["per_s"]
    10.0
    """
    ts = sorted(timestamps_ms)
    if not ts:
        return {"per_s": None, "counted": 0, "window_s": 0.0, "outputs": 0, "warmup": warmup}
    t0 = ts[min(max(warmup, 1), len(ts)) - 1]
    if not_before_ms is not None and not_before_ms > t0:
        t0 = not_before_ms
    counted = sum(1 for t in ts if t > t0)
    window_s = (ts[-1] - t0) / 1000.0
    per_s = counted / window_s if counted and window_s > 0 else None
    return {"per_s": None if per_s is None else round(per_s, 1), "counted": counted,
            "window_s": round(window_s, 3), "outputs": len(ts), "warmup": warmup}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least q % of values ≤ it).

    >>> percentile(list(range(1, 101)), 99), percentile([5.0], 50), percentile([], 50)
    (99, 5.0, None)
    """
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q}")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100.0 * len(ordered))) - 1]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(latencies_ms),
        "p50_ms": percentile(latencies_ms, 50),
        "p95_ms": percentile(latencies_ms, 95),
        "p99_ms": percentile(latencies_ms, 99),
        "max_ms": max(latencies_ms) if latencies_ms else None,
        "mean_ms": round(sum(latencies_ms) / len(latencies_ms), 2) if latencies_ms else None,
    }


def ratio(value: float | None, baseline: float | None, digits: int = 3) -> float | None:
    """value / baseline, or None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return round(value / baseline, digits)


def _per_s(e2e: dict[str, Any], name: str) -> float | None:
    return (e2e.get(name) or {}).get("rate", {}).get("per_s")


def assemble(meta: dict[str, Any], micro: dict[str, Any], e2e: dict[str, Any],
             latency: dict[str, Any]) -> dict[str, Any]:
    """The report: every figure, each ratio against its same-run baseline, the targets."""
    scalar, batch = micro.get("scalar_ns_per_eval"), micro.get("batch_ns_per_eval")
    a, a2, b = _per_s(e2e, "a_worker"), _per_s(e2e, "a_two_workers"), _per_s(e2e, "b_naive")
    c, c_count = _per_s(e2e, "c_forward"), _per_s(e2e, "c_count")
    c2 = _per_s(e2e, "c2_forward_records")
    p99 = latency.get("p99_ms")
    base = latency.get("baselines") or {}
    p99_c = (base.get("c_forward") or {}).get("p99_ms")
    p99_probe = (base.get(f"fetch_probe_{FAUST_FETCH_MAX_WAIT_MS}ms") or {}).get("p99_ms")
    p99_probe_10 = (base.get("fetch_probe_10ms") or {}).get("p99_ms")
    ratios = {
        "scalar_vs_target_500ns": ratio(scalar, SCALAR_TARGET_NS),
        "batch_vs_scalar": ratio(batch, scalar),
        "a_vs_c_forward": ratio(a, c),
        "a_vs_c_count": ratio(a, c_count),
        "a_vs_b_naive": ratio(a, b),
        "c_forward_vs_b_naive": ratio(c, b),
        "c2_forward_records_vs_c_forward": ratio(c2, c),
        "a_two_workers_vs_one": ratio(a2, a),
        "p99_vs_target_100ms": ratio(p99, LATENCY_TARGET_MS),
        "p99_a_vs_c_forward": ratio(p99, p99_c),
        f"p99_a_vs_a_fetch_wait_{FAUST_FETCH_MAX_WAIT_MS}ms": ratio(
            p99, (base.get(f"a_fetch_wait_{FAUST_FETCH_MAX_WAIT_MS}ms") or {}).get("p99_ms")),
        f"p99_a_vs_fetch_probe_{FAUST_FETCH_MAX_WAIT_MS}ms": ratio(p99, p99_probe),
        f"p99_fetch_probe_{FAUST_FETCH_MAX_WAIT_MS}ms_vs_10ms": ratio(p99_probe, p99_probe_10),
    }

    def met(value: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if value is None else bool(ok(value))

    targets = {
        "scalar_le_500ns": met(scalar, lambda v: v <= SCALAR_TARGET_NS),
        "a_ge_75pct_of_c_forward": met(ratios["a_vs_c_forward"], lambda v: v >= A_VS_C_TARGET),
        "a_ge_3x_b_naive": met(ratios["a_vs_b_naive"], lambda v: v >= A_VS_B_TARGET),
        "two_workers_ge_1_3x_one": met(ratios["a_two_workers_vs_one"], lambda v: v >= TWO_VS_ONE_TARGET),
        "p99_lt_100ms_at_half_max": met(p99, lambda v: v < LATENCY_TARGET_MS),
    }
    return {
        "schema": SCHEMA,
        "meta": meta,
        "micro": {**micro, "scalar_target_ns": SCALAR_TARGET_NS, "batch_rows": micro.get("batch_rows", BATCH_ROWS)},
        "e2e": e2e,
        "latency": {**latency, "target_ms": LATENCY_TARGET_MS},
        "ratios": ratios,
        "targets": targets,
    }


REPORT_KEYS = ("schema", "meta", "micro", "e2e", "latency", "ratios", "targets")
E2E_VARIANTS = ("a_worker", "a_two_workers", "b_naive", "c_forward", "c_count", "c2_forward_records")


def _ms3(lat: dict[str, Any]) -> str:
    return " / ".join(_fmt(lat.get(k), " ms") for k in ("p50_ms", "p95_ms", "p99_ms"))


def _fmt(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value:,}{unit}"


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    m, e, lat, r, t = (report[k] for k in ("micro", "e2e", "latency", "ratios", "targets"))

    def mark(key: str) -> str:
        return {True: "met", False: "NOT met", None: "—"}[t.get(key)]

    rows = [
        ("scalar evaluate_values", _fmt(m.get("scalar_ns_per_eval"), " ns/eval", 1),
         f"{_fmt(r['scalar_vs_target_500ns'], '× 500 ns target', 2)}  ({mark('scalar_le_500ns')})"),
        (f"batch evaluate_batch ({m.get('batch_rows')} rows)", _fmt(m.get("batch_ns_per_eval"), " ns/eval", 1),
         _fmt(r["batch_vs_scalar"], "× scalar", 3)),
        ("(a) project worker", _fmt(_per_s(e, "a_worker"), " /s"),
         f"{_fmt(r['a_vs_c_forward'], '× (c) fwd', 2)} ({mark('a_ge_75pct_of_c_forward')} ≥0.75), "
         f"{_fmt(r['a_vs_b_naive'], '× (b)', 2)} ({mark('a_ge_3x_b_naive')} ≥3)"),
        ("(a) two workers", _fmt(_per_s(e, "a_two_workers"), " /s"),
         f"{_fmt(r['a_two_workers_vs_one'], '× one', 2)} ({mark('two_workers_ge_1_3x_one')} ≥1.3)"),
        ("(b) naive per-event agent", _fmt(_per_s(e, "b_naive"), " /s"), "baseline"),
        ("(c) forward only, batched out", _fmt(_per_s(e, "c_forward"), " /s"), "framework ceiling"),
        ("(c) count only", _fmt(_per_s(e, "c_count"), " /s"), f"(a) is {_fmt(r['a_vs_c_count'], '×', 2)} this"),
        ("(c2) forward only, record batches", _fmt(_per_s(e, "c2_forward_records"), " /s"),
         _fmt(r.get("c2_forward_records_vs_c_forward"), "× (c) fwd", 2)),
        (f"(a) latency p50/p95/p99 at {_fmt(lat.get('rate_per_s'), '/s')}", _ms3(lat),
         f"{_fmt(r['p99_vs_target_100ms'], '× 100 ms', 2)} ({mark('p99_lt_100ms_at_half_max')}), "
         f"{_fmt(r['p99_a_vs_c_forward'], '× (c)', 2)}"),
    ]
    base = lat.get("baselines") or {}
    for name, title in (("c_forward", "(c) forward latency, same load"),
                        (f"a_fetch_wait_{FAUST_FETCH_MAX_WAIT_MS}ms",
                         f"(a) with Faust's own {FAUST_FETCH_MAX_WAIT_MS} ms fetch wait"),
                        (f"fetch_probe_{FAUST_FETCH_MAX_WAIT_MS}ms",
                         f"broker only, fetch_max_wait {FAUST_FETCH_MAX_WAIT_MS} ms"),
                        ("fetch_probe_10ms", "broker only, fetch_max_wait 10 ms")):
        if name in base:
            rows.append((title, _ms3(base[name]), "baseline"))
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    return "\n".join(f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows)


# --------------------------------------------------------------------------- microbenchmarks


def bench_micro(quick: bool) -> dict[str, Any]:
    import numpy as np

    from resontinex.agents.trust import default_config, evaluate_batch, evaluate_values

    cfg = default_config()
    rng = random.Random(7)
    triples = [(rng.random(), rng.random(), rng.random()) for _ in range(1000)]
    repeats = 5 if quick else 9
    number = 20 if quick else 100

    def scalar_loop() -> None:
        ev, c = evaluate_values, cfg
        for a, r, cb in triples:
            ev(a, r, cb, c)

    def empty_loop() -> None:
        for _a, _r, _cb in triples:
            pass

    log(f"micro: scalar evaluate_values, {repeats} repeats × {number} × {len(triples)} evals")
    best = min(timeit.repeat(scalar_loop, number=number, repeat=repeats))
    loop = min(timeit.repeat(empty_loop, number=number, repeat=repeats))
    scalar_ns = best / (number * len(triples)) * 1e9
    loop_ns = loop / (number * len(triples)) * 1e9

    # How fast this CPU runs Python, to read the ns figures against other machines.
    calib = timeit.Timer("log(x)", setup="from math import log; x = 0.3").repeat(repeats, 200_000)
    call = timeit.Timer("f(1.0, 2.0, 3.0, 4.0)", setup="def f(a, b, c, d): return a").repeat(repeats, 200_000)

    nrng = np.random.default_rng(7)
    a, r, c = (nrng.random(BATCH_ROWS) for _ in range(3))
    bnumber = 20 if quick else 100
    log(f"micro: evaluate_batch, {repeats} repeats × {bnumber} × {BATCH_ROWS} rows")
    bbest = min(timeit.repeat(lambda: evaluate_batch(a, r, c, cfg), number=bnumber, repeat=repeats))
    batch_ns = bbest / (bnumber * BATCH_ROWS) * 1e9
    return {
        "scalar_ns_per_eval": round(scalar_ns, 1),
        "scalar_loop_overhead_ns": round(loop_ns, 1),
        "scalar_evals_per_repeat": number * len(triples),
        "calibration_math_log_ns": round(min(calib) / 200_000 * 1e9, 1),
        "calibration_4arg_call_ns": round(min(call) / 200_000 * 1e9, 1),
        "batch_ns_per_eval": round(batch_ns, 2),
        "batch_us_per_call": round(bbest / bnumber * 1e6, 1),
        "batch_rows": BATCH_ROWS,
        "repeats": repeats,
    }


# --------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Procs:
    """The processes of one variant whose CPU time is reported."""

    named: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, float | None]:
        out = {name: cpu_seconds(pid) for name, pid in self.named.items()}
        out["bench"] = self_cpu_seconds()
        return out


def cpu_use(before: dict[str, float | None], after: dict[str, float | None], wall_s: float) -> dict[str, float | None]:
    """CPU cores used by each process between two snapshots (1.0 = one core busy)."""
    out: dict[str, float | None] = {}
    for name, b in before.items():
        a = after.get(name)
        out[name] = None if a is None or b is None or wall_s <= 0 else round((a - b) / wall_s, 2)
    return out


class Broker:
    """A fresh embedded broker with the registry's topics (`topics create`) plus extra ones."""

    def __init__(self, extra_topics: Sequence[str] = ()) -> None:
        from resontinex.app.broker import EmbeddedBroker

        self.broker = EmbeddedBroker(port=0)
        self.extra = list(extra_topics)

    def __enter__(self) -> "Broker":
        self.broker.start()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "resontinex.app.cli", "topics", "create", "--bootstrap", self.bootstrap],
                cwd=REPO, capture_output=True, text=True, timeout=120,
            )
            if done.returncode != 0:
                raise RuntimeError(f"topics create failed: {done.stderr[-2000:]}")
            if self.extra:
                asyncio.run(_create_topics(self.bootstrap, self.extra))
        except BaseException:
            self.broker.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.broker.stop()

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def pid(self) -> int:
        assert self.broker.process is not None
        return self.broker.process.pid


async def _create_topics(bootstrap: str, names: Sequence[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names])
    finally:
        await admin.close()


def _producer(bootstrap: str):
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                            max_batch_size=1_000_000, max_request_size=4_000_000)


async def preload(bootstrap: str, items: Sequence[tuple[bytes, bytes]], topic: str = SOURCE_TOPIC) -> list[int]:
    """Produce `items` with aiokafka record batches (create_batch/send_batch), partitioned
    by key as the default partitioner would; return the request timestamps (ms)."""
    producer = _producer(bootstrap)
    await producer.start()
    try:
        stamps: list[int] = []
        acks = []
        open_: dict[int, Any] = {}
        for key, value in items:
            p = partition_of(key)
            batch = open_.get(p) or open_.setdefault(p, producer.create_batch())
            meta = batch.append(key=key, value=value, timestamp=None)
            if meta is None:
                acks.append(await producer.send_batch(batch, topic, partition=p))
                batch = open_[p] = producer.create_batch()
                meta = batch.append(key=key, value=value, timestamp=None)
            stamps.append(meta.timestamp)
        for p, batch in open_.items():
            acks.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*acks)
        return stamps
    finally:
        await producer.stop()


def _consumer(bootstrap: str):
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", max_partition_fetch_bytes=16 * 1024 * 1024,
                            fetch_max_bytes=64 * 1024 * 1024)


async def _assign_all(consumer, topic: str) -> None:
    from aiokafka import TopicPartition

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


class ProcessGone(RuntimeError):
    pass


def _check_alive(alive: Callable[[], str | None]) -> None:
    """Raise `ProcessGone` when a process the measurement depends on has exited."""
    gone = alive()
    if gone:
        raise ProcessGone(gone)


async def collect(bootstrap: str, topic: str, n: int, *, timeout_s: float, label: str,
                  procs: Procs, warmup: int, alive: Callable[[], str | None],
                  keep: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Read `topic` from the beginning until `n` records came (or the timeout).

    Returns the records' timestamps (ms), what `keep` took from each record, and CPU
    snapshots taken when the warm-up-th and the n-th record arrived here.
    """
    consumer = _consumer(bootstrap)
    await consumer.start()
    stamps: list[int] = []
    kept: list[Any] = []
    cpu: dict[str, Any] = {}
    started = time.monotonic()
    try:
        await _assign_all(consumer, topic)
        last_log = started
        while len(stamps) < n:
            now = time.monotonic()
            if now - started > timeout_s:
                log(f"{label}: timeout after {timeout_s:.0f}s with {len(stamps):,}/{n:,} outputs")
                break
            if now - last_log >= 2.0:
                _check_alive(alive)
                log(f"{label}: {len(stamps):,}/{n:,} outputs")
                last_log = now
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for msgs in batch.values():
                for m in msgs:
                    stamps.append(m.timestamp)
                    if keep is not None:
                        kept.append(keep(m))
            if "warm" not in cpu and len(stamps) >= warmup:
                cpu["warm"], cpu["warm_t"] = procs.snapshot(), time.monotonic()
        cpu["end"], cpu["end_t"] = procs.snapshot(), time.monotonic()
    finally:
        await consumer.stop()
    return {"stamps": stamps, "kept": kept, "cpu": cpu}


def _cpu_report(cpu: dict[str, Any]) -> dict[str, Any]:
    if "warm" not in cpu or "end" not in cpu:
        return {}
    return cpu_use(cpu["warm"], cpu["end"], cpu["end_t"] - cpu["warm_t"])


def _spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log_path, "ab") as out:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process (group) by pid: SIGTERM, then SIGKILL after STOP_S (tests/integration/harness.py)."""
    from tests.integration.harness import stop_process

    t = time.monotonic()
    stop_process(proc, STOP_S)
    log(f"stopped pid {proc.pid} in {time.monotonic() - t:.1f}s (exit {proc.returncode})")


@contextmanager
def _session(prefix: str, extra_topics: Sequence[str] = ()) -> Iterator[tuple[Broker, Path, list[subprocess.Popen]]]:
    """A fresh broker, a scratch directory and a list of processes to stop, in that order
    of teardown: processes first (a Faust worker whose broker is gone hangs on SIGTERM),
    then the broker, then the directory."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    procs: list[subprocess.Popen] = []
    try:
        with Broker(extra_topics) as broker:
            try:
                yield broker, tmp, procs
            finally:
                for proc in procs:
                    _stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _gone(procs: Sequence[tuple[subprocess.Popen, Path]]) -> Callable[[], str | None]:
    def check() -> str | None:
        for proc, path in procs:
            if proc.poll() is not None:
                return f"process {proc.pid} exited with {proc.returncode}:\n{_tail(path)}"
        return None
    return check


def _partition_counts(items: Sequence[tuple[bytes, bytes]]) -> list[int]:
    counts = Counter(partition_of(k) for k, _ in items)
    return [counts.get(p, 0) for p in range(PARTITIONS)]


# --------------------------------------------------------------------------- end-to-end variants


@dataclass
class Plan:
    n: int
    warmup: int
    timeout_s: float
    latency_warm_s: float
    latency_measure_s: float
    probe_s: float = 5.0


def _result(label: str, plan: Plan, got: dict[str, Any], preload_end_ms: int | None, started: float,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    r = rate(got["stamps"], plan.warmup, not_before_ms=preload_end_ms)
    log(f"{label}: {_fmt(r['per_s'], '/s')} ({r['counted']:,} outputs in {r['window_s']:.2f}s after warm-up)")
    return {"rate": r, "complete": len(got["stamps"]) >= plan.n, "cpu_cores": _cpu_report(got["cpu"]),
            "elapsed_s": round(time.monotonic() - started, 2), **(extra or {})}


def run_worker_variant(plan: Plan, workers: int) -> dict[str, Any]:
    from tests.integration.harness import start_worker

    label = "(a) worker" if workers == 1 else f"(a) {workers} workers"
    items = requests(plan.n)
    started = time.monotonic()
    with _session("a") as (broker, tmp, procs):
        workers_: list[Any] = []

        def spawn(i: int) -> None:
            workers_.append(start_worker(broker.bootstrap, tmp / f"w{i}"))
            procs.append(workers_[-1].proc)

        preload_end_ms = None
        if workers == 1:
            log(f"{label}: preloading {plan.n:,} requests")
            asyncio.run(preload(broker.bootstrap, items))
            spawn(0)
        else:
            for i in range(workers):
                spawn(i)
            log(f"{label}: waiting until {workers} workers are ready with disjoint partitions")
            assignment = _wait_split(workers_, timeout_s=90)
            log(f"{label}: partitions {assignment}; preloading {plan.n:,} requests")
        watch = Procs({"broker": broker.pid, **{f"worker{i}": w.proc.pid for i, w in enumerate(workers_)}})

        async def go() -> tuple[dict[str, Any], int | None]:
            task = asyncio.create_task(collect(
                broker.bootstrap, "decisions", plan.n, timeout_s=plan.timeout_s, label=label, procs=watch,
                warmup=plan.warmup, alive=_gone([(w.proc, w.log_path) for w in workers_])))
            end = None
            if workers > 1:
                await preload(broker.bootstrap, items)
                end = int(time.time() * 1000)
            return await task, end

        got, preload_end_ms = asyncio.run(go())
        extra: dict[str, Any] = {"workers": workers, "partition_load": _partition_counts(items)}
        if workers > 1:
            extra["assignment"] = assignment
            extra["preload_end_ms"] = preload_end_ms
        return _result(label, plan, got, preload_end_ms, started, extra)


def _wait_split(workers: Sequence[Any], timeout_s: float) -> list[list[int]]:
    deadline = time.monotonic() + timeout_s
    for w in workers:
        w.wait_ready(timeout_s)
    while True:
        healths = [w.health() or {} for w in workers]
        parts = [set(h.get("partitions") or []) for h in healths]
        union = set().union(*parts)
        disjoint = sum(len(p) for p in parts) == len(union)
        if all(h.get("ready") for h in healths) and all(parts) and disjoint and union == set(range(PARTITIONS)):
            return [sorted(p) for p in parts]
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers did not split the partitions in {timeout_s}s: {parts}")
        time.sleep(0.3)


def run_app_variant(plan: Plan, kind: str) -> dict[str, Any]:
    """(b) naive, (c) forward or count, (c2) forward_records: a bench Faust app as a subprocess on a fresh broker."""
    label = {"naive": "(b) naive", "forward": "(c) forward", "count": "(c) count",
             "forward_records": "(c2) forward records"}[kind]
    items = requests(plan.n)
    started = time.monotonic()
    forwards = kind in ("forward", "forward_records")
    with _session(kind, [FORWARD_TOPIC] if forwards else []) as (broker, tmp, procs):
        log(f"{label}: preloading {plan.n:,} requests")
        asyncio.run(preload(broker.bootstrap, items))
        log_path = tmp / "app.log"
        report = tmp / "count.json"
        if kind == "naive":
            args = ["-m", "bench.naive_app", broker.bootstrap, str(tmp)]
        elif kind == "forward":
            args = ["-m", "bench.forward_app", "forward", broker.bootstrap, str(tmp), FORWARD_TOPIC]
        elif kind == "forward_records":
            args = ["-m", "bench.forward_records_app", broker.bootstrap, str(tmp), FORWARD_TOPIC]
        else:
            args = ["-m", "bench.forward_app", "count", broker.bootstrap, str(tmp), str(report),
                    str(plan.n), str(plan.warmup)]
        proc = _spawn(args, log_path)
        procs.append(proc)
        watch = Procs({"broker": broker.pid, "app": proc.pid})
        alive = _gone([(proc, log_path)])
        if kind == "count":
            return _await_count(plan, report, watch, alive, started)
        topic = "decisions" if kind == "naive" else FORWARD_TOPIC
        got = asyncio.run(collect(broker.bootstrap, topic, plan.n, timeout_s=plan.timeout_s, label=label,
                                  procs=watch, warmup=plan.warmup, alive=alive))
        return _result(label, plan, got, None, started)


def _await_count(plan: Plan, report: Path, watch: Procs, alive: Callable[[], str | None],
                 started: float) -> dict[str, Any]:
    deadline = time.monotonic() + plan.timeout_s
    last_log = time.monotonic()
    while not report.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"count-only agent did not report {plan.n:,} events in {plan.timeout_s:.0f}s")
        _check_alive(alive)
        if time.monotonic() - last_log >= 2.0:
            log("(c) count: waiting for the agent's report")
            last_log = time.monotonic()
        time.sleep(0.1)
    body = json.loads(report.read_text())
    window = body["t_last"] - body["t_warmup"]
    per_s = round((body["count"] - body["warmup"]) / window, 1) if window > 0 else None
    log(f"(c) count: {_fmt(per_s, '/s')}")
    return {"rate": {"per_s": per_s, "counted": body["count"] - body["warmup"], "window_s": round(window, 3),
                     "outputs": body["count"], "warmup": body["warmup"], "source": "the agent's own clock"},
            "complete": True, "elapsed_s": round(time.monotonic() - started, 2)}


def run_latency(plan: Plan, target_rate: float, kind: str = "a") -> dict[str, Any]:
    """Request→output latency under a paced load at `target_rate` requests/s.

    kind "a": the project worker (request → decision); "a1500": the same with its
    consumer's fetch wait forced to faust-streaming's own 1,500 ms (`bench.fetch_wait`);
    "c": the forward-only agent (request → forwarded copy), the framework's own latency.
    """
    label = f"latency ({kind})"
    with _session(f"latency-{kind}", [FORWARD_TOPIC] if kind == "c" else []) as (broker, tmp, procs):
        if kind in ("a", "a1500"):
            from tests.integration.harness import start_worker

            worker = start_worker(broker.bootstrap, tmp / "w0") if kind == "a" else _fetch_wait_worker(broker, tmp, FAUST_FETCH_MAX_WAIT_MS)
            procs.append(worker.proc)
            worker.wait_ready(90)
            proc, log_path, topic, rid = worker.proc, worker.log_path, "decisions", "request_id"
        else:
            log_path = tmp / "app.log"
            proc = _spawn(["-m", "bench.forward_app", "forward", broker.bootstrap, str(tmp), FORWARD_TOPIC], log_path)
            procs.append(proc)
            topic, rid = FORWARD_TOPIC, "event_id"
            asyncio.run(_wait_forwarding(broker.bootstrap, proc, log_path))
        log(f"{label}: ready; pacing {target_rate:,.0f} requests/s for "
            f"{plan.latency_warm_s:.0f}s warm-up + {plan.latency_measure_s:.0f}s")
        watch = Procs({"broker": broker.pid, "worker": proc.pid})
        return asyncio.run(_paced(broker.bootstrap, target_rate, plan.latency_warm_s, plan.latency_measure_s,
                                  watch, _gone([(proc, log_path)]), label=label, topic=topic, request_id=rid))


def _fetch_wait_worker(broker: Broker, tmp: Path, ms: int) -> Any:
    """`python -m resontinex.app.cli worker` run through `bench.fetch_wait` (as harness.start_worker runs it)."""
    from resontinex.app.broker import free_port
    from tests.integration.harness import Worker

    port = free_port()
    data = tmp / "w0"
    data.mkdir(parents=True, exist_ok=True)
    log_path = data / f"worker-{port}.log"
    proc = _spawn(["-m", "bench.fetch_wait", str(ms), "worker", "--bootstrap", broker.bootstrap,
                   "--web-port", str(port)], log_path, env={"RESONTINEX_DATA_DIR": str(data), EMBEDDED_BROKER_ENV: "1"})
    return Worker(proc, port, log_path)


async def _wait_forwarding(bootstrap: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 90) -> None:
    """The forward app has no health endpoint: it is ready once a probe request comes out."""
    gone = _gone([(proc, log_path)])
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        await _assign_all(consumer, FORWARD_TOPIC)
        await preload(bootstrap, [(b"probe", orjson.dumps({"event_id": "probe"}))])
        deadline = time.monotonic() + timeout_s
        while not await consumer.getmany(timeout_ms=200):
            if gone() or time.monotonic() > deadline:
                raise RuntimeError(f"forward app not forwarding after {timeout_s}s: {gone() or ''}")
    finally:
        await consumer.stop()


def run_fetch_probe(plan: Plan, target_rate: float, fetch_max_wait_ms: int) -> dict[str, Any]:
    """The broker's own delivery latency: a plain aiokafka consumer (no Faust, no worker)
    reading the paced requests with `fetch_max_wait_ms`; latency = receipt − CreateTime."""
    label = f"fetch probe ({fetch_max_wait_ms} ms)"
    with _session("probe") as (broker, _tmp, _procs):
        log(f"{label}: pacing {target_rate:,.0f} requests/s for 1s warm-up + {plan.probe_s:.0f}s")
        return asyncio.run(_paced(broker.bootstrap, target_rate, 1.0, plan.probe_s, Procs({"broker": broker.pid}),
                                  lambda: None, label=label, topic=SOURCE_TOPIC, request_id="event_id",
                                  fetch_max_wait_ms=fetch_max_wait_ms))


async def _paced(bootstrap: str, target_rate: float, warm_s: float, measure_s: float, watch: Procs,
                 alive: Callable[[], str | None], *, label: str, topic: str, request_id: str,
                 fetch_max_wait_ms: int | None = None) -> dict[str, Any]:
    """Produce decision requests at `target_rate` (record batches every 5 ms) for
    warm_s + measure_s; latency of each request sent in the measured span =
    output record timestamp − request record timestamp (CreateTime both), matched on the
    output value's `request_id` field. With `fetch_max_wait_ms` the outputs are the
    requests themselves, read by this process, and the latency ends at their receipt."""
    tenants = balanced_tenants()
    decided: dict[str, int] = {}
    stop = asyncio.Event()
    receipt = fetch_max_wait_ms is not None

    async def consume() -> None:
        if receipt:
            from aiokafka import AIOKafkaConsumer

            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms)
        else:
            consumer = _consumer(bootstrap)
        await consumer.start()
        try:
            await _assign_all(consumer, topic)
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100, max_records=20_000)
                now_ms = int(time.time() * 1000)
                for msgs in batch.values():
                    for m in msgs:
                        decided[orjson.loads(m.value)[request_id]] = now_ms if receipt else m.timestamp
        finally:
            await consumer.stop()

    consumer_task = asyncio.create_task(consume())
    producer = _producer(bootstrap)
    await producer.start()
    sent: dict[str, tuple[int, bool]] = {}  # request id → (request timestamp ms, measured?)
    acks = []
    tick = 0.005
    want: list[str] = []
    try:
        t_start = time.monotonic()
        cpu_start: dict[str, float | None] | None = None
        measure_from, measure_to = t_start + warm_s, t_start + warm_s + measure_s
        i, last_log = 0, t_start
        while (now := time.monotonic()) < measure_to:
            due = int(target_rate * (now - t_start))
            measured = measure_from <= now
            if measured and cpu_start is None:
                cpu_start = watch.snapshot()
            batches: dict[int, Any] = {}
            for key, value in requests(due - i, start=i, tenants=tenants):
                p = partition_of(key)
                batch = batches.get(p) or batches.setdefault(p, producer.create_batch())
                meta = batch.append(key=key, value=value, timestamp=None)
                sent[f"r-{i}"] = (meta.timestamp, measured)
                i += 1
            for p, batch in batches.items():
                acks.append(await producer.send_batch(batch, SOURCE_TOPIC, partition=p))
            if now - last_log >= 2.0:
                _check_alive(alive)
                log(f"{label}: {i:,} sent, {len(decided):,} out")
                last_log = now
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - now)))
        cpu_end = watch.snapshot()
        wall = time.monotonic() - measure_from
        cores = cpu_use(cpu_start or cpu_end, cpu_end, wall)
        await asyncio.gather(*acks)
        want = [rid for rid, (_, m) in sent.items() if m]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(rid not in decided for rid in want[-200:]):
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await consumer_task
        await producer.stop()
    lat = [decided[rid] - sent[rid][0] for rid in want if rid in decided]
    summary = latency_summary(lat)
    log(f"{label}: p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, p99 {summary['p99_ms']} ms "
        f"over {len(lat):,} outputs")
    return {"rate_per_s": round(target_rate, 1), "offered_per_s": round(len(want) / measure_s, 1),
            "warm_s": warm_s, "measure_s": measure_s, "requests": len(want), "missing": len(want) - len(lat),
            **summary, "cpu_cores": cores}


# --------------------------------------------------------------------------- main


def _safe(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:  # one broken variant must not lose the others' figures
        log(f"{label}: FAILED: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"[:4000]}


def meta(plan: Plan, quick: bool) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "app", "agents", "schemas"],
                                    cwd=REPO, capture_output=True, text=True).stdout.strip())
        diff = subprocess.run(["git", "diff", "HEAD", "--", "app", "agents", "schemas", "topics", "config"],
                              cwd=REPO, capture_output=True).stdout
    except OSError:
        commit, dirty, diff = "", None, b""
    try:
        from resontinex.app.settings import Settings

        fetch_wait = getattr(Settings.from_env(), "fetch_max_wait_ms", None) or FAUST_FETCH_MAX_WAIT_MS
    except Exception:  # the meta data must not stop a run
        fetch_wait = None
    return {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "worker_fetch_max_wait_ms": fetch_wait,
        "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "platform": platform.platform(),
        "git_commit": commit, "app_tree_dirty": dirty,
        "app_diff_sha256": hashlib.sha256(diff).hexdigest()[:16] if dirty else None, "quick": quick,
        "n": plan.n, "warmup": plan.warmup, "partitions": PARTITIONS, "tenants": TENANTS,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller load (N≈5,000) for a fast check")
    ap.add_argument("-n", type=int, help="decision requests per end-to-end variant (default 60,000; quick 5,000)")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/gate-<timestamp>.json)")
    ap.add_argument("--only", default="micro,a,a2,b,c,count,c2,latency",
                    help="comma-separated phases to run (default: all)")
    args = ap.parse_args(argv)
    n = args.n or (5_000 if args.quick else 60_000)
    plan = Plan(n=n, warmup=max(1, n // 10), timeout_s=60 + n / 400,
                latency_warm_s=2.0 if args.quick else 3.0, latency_measure_s=5.0 if args.quick else 15.0,
                probe_s=3.0 if args.quick else 5.0)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    out = args.out or RESULTS / f"gate-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    info = meta(plan, args.quick)
    log(f"N={plan.n:,}, warm-up {plan.warmup:,}; phases {','.join(sorted(only))}; result → {out}")

    micro = bench_micro(args.quick) if "micro" in only else {}
    e2e: dict[str, Any] = {}
    steps = [("a", "a_worker", lambda: run_worker_variant(plan, 1)),
             ("a2", "a_two_workers", lambda: run_worker_variant(plan, 2)),
             ("b", "b_naive", lambda: run_app_variant(plan, "naive")),
             ("c", "c_forward", lambda: run_app_variant(plan, "forward")),
             ("count", "c_count", lambda: run_app_variant(plan, "count")),
             ("c2", "c2_forward_records", lambda: run_app_variant(plan, "forward_records"))]
    todo = [s for s in steps if s[0] in only]
    for i, (_, name, fn) in enumerate(todo, 1):
        log(f"phase {i}/{len(todo)}: {name}")
        e2e[name] = _safe(name, fn)
    latency: dict[str, Any] = {}
    a = _per_s(e2e, "a_worker")
    if "latency" in only:
        log("phase: latency at half of (a)'s rate, then its baselines")
        if a:
            half = a / 2
            latency = _safe("latency (a)", lambda: run_latency(plan, half, "a"))
            latency["baselines"] = {
                "c_forward": _safe("latency (c)", lambda: run_latency(plan, half, "c")),
                f"a_fetch_wait_{FAUST_FETCH_MAX_WAIT_MS}ms": _safe(
                    "latency (a1500)", lambda: run_latency(plan, half, "a1500")),
                f"fetch_probe_{FAUST_FETCH_MAX_WAIT_MS}ms": _safe(
                    "fetch probe", lambda: run_fetch_probe(plan, half, FAUST_FETCH_MAX_WAIT_MS)),
                "fetch_probe_10ms": _safe("fetch probe", lambda: run_fetch_probe(plan, half, 10)),
            }
        else:
            latency = {"error": "no (a) rate measured in this run, so no half-rate load"}
    mark_finished(info)
    report = assemble(info, micro, e2e, latency)
    publish(report, out, table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
