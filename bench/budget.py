"""Cost events/s through the budget agent, against a naive per-event Faust agent, in one run.

    python -m bench.budget [--quick] [-n N] [--out bench/results/budget-<timestamp>.json]

Each variant runs on a fresh embedded broker with a fresh data directory: N cost events
are preloaded into `costs` (4 partitions, 12 tenants chosen so murmur2 puts 3 on each,
4 workflows per tenant, 1 % repeated event ids), then the variant starts and drains them:

* project: the worker, `python -m resontinex.app.cli worker` (`app/wiring/budget.py`: batches,
  three calendar-windowed tables, dedupe by event_id), with a config dir whose
  `energy_governance.yaml` gives every tenant a monthly `"*"` budget;
* naive: `bench/naive_budget_app.py`, the same work one event at a time the Faust way.

The budget agent sends nothing per cost, so throughput is measured by completion: the
bench polls the consumed-events count (the worker's Prometheus counter
`resontinex_events_total{topic="costs"}`; the naive app's `/bench/count`) and, once it
reaches N, the spend (`/budget/status`; `/bench/spend`) until it equals the exact sums
of the distinct costs. events/s = (N − count at the first poll that saw one) / (time of
the exact-sums poll − time of that first poll); `steady` does the same from the first poll
at or past N/10. Times are when each poll's answer arrived.

Progress goes to stderr; a short table to stdout; every figure to one JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson

from .run import (RESULTS, WORKFLOWS, Plan, Procs, _check_alive, _fmt, _gone, _partition_counts,
                  _session, _spawn, balanced_tenants, cpu_use, log, mark_finished, preload, publish, ratio)
from .run import meta as run_meta

SCHEMA = 1
VARIANTS = ("project", "naive")
REPORT_KEYS = ("schema", "meta", "variants", "ratios")
DUP_EVERY = 100
"""Every DUP_EVERY-th record repeats an earlier event (a producer retry: same key, value, event_id)."""
BUDGET_CONFIG = """\
# bench/budget.py: every tenant has a monthly budget too large to matter
budget_limits: {hard_limit_percentage: 95, auto_review_threshold: 85, approval_threshold: 10000}
budget_tripwire: {breach_threshold: 12.0, consecutive_limit: 3, auto_recovery: false}
recovery: {insight_cache_ttl_s: 30, retry_base_s: 30, retry_max_s: 3600}
budgets:
  - {tenant: "*", period: month, usd: 1000000000.0}
"""
EVENTS_LINE = re.compile(r'^resontinex_events_total\{([^}]*)\}\s+(\S+)\s*$', re.M)


# --------------------------------------------------------------------------- pure helpers


def dup_source(i: int, every: int = DUP_EVERY, back: int = 36) -> int:
    """The record whose event record `i` repeats (itself when it is not a repeat).

    `back` is a multiple of the tenant count, so a repeat has its original's key and
    partition (the project dedupes per partition, as a producer retry would need).

    >>> dup_source(98), dup_source(99), dup_source(199)
    (98, 63, 163)
    """
    while every and i % every == every - 1 and i >= back:
        i -= back
    return i


def costs(n: int, *, seed: int = 5, tenants: Sequence[str] | None = None,
          dup_every: int = DUP_EVERY) -> list[tuple[bytes, bytes]]:
    """Cost records 0..n−1 as (key, value); record i is the same in every call."""
    names = list(tenants or balanced_tenants())
    back = 3 * len(names)
    out = []
    for i in range(n):
        src = dup_source(i, dup_every, back)
        rng = random.Random((seed << 32) | src)
        tenant = names[src % len(names)]
        micros = rng.randint(100, 2_000_000)
        out.append((tenant.encode(), orjson.dumps({
            "event_id": f"c-{src}", "tenant": tenant, "workflow": WORKFLOWS[(src // len(names)) % len(WORKFLOWS)],
            "provider": "openai", "model": "gpt-4o-mini",
            "input_tokens": rng.randint(10, 4000), "output_tokens": rng.randint(10, 2000),
            "cost_usd": micros / 1_000_000, "latency_ms": round(rng.uniform(50.0, 3000.0), 1),
        })))
    return out


def expected_spend(items: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Exact spend of the distinct costs (first of each event_id): per tenant and per
    tenant/workflow scope, `{micros, tokens, n}`, money as the project rounds it."""
    from resontinex.agents.budget._rules import to_micros

    seen: set[str] = set()
    tenants: dict[str, dict[str, int]] = {}
    workflows: dict[str, dict[str, int]] = {}
    for _key, value in items:
        body = orjson.loads(value)
        if body["event_id"] in seen:
            continue
        seen.add(body["event_id"])
        micros, tokens = to_micros(body["cost_usd"]), body["input_tokens"] + body["output_tokens"]
        for out, scope in ((tenants, body["tenant"]), (workflows, f"{body['tenant']}/{body.get('workflow', 'default')}")):
            total = out.setdefault(scope, {"micros": 0, "tokens": 0, "n": 0})
            total["micros"] += micros
            total["tokens"] += tokens
            total["n"] += 1
    return {"records": len(items), "distinct": len(seen), "tenants": tenants, "workflows": workflows}


def events_total(metrics_text: str, topic: str = "costs") -> float | None:
    """`resontinex_events_total{topic=...}` from a Prometheus text exposition (None if absent)."""
    for labels, value in EVENTS_LINE.findall(metrics_text):
        if f'topic="{topic}"' in labels.split(","):
            return float(value)
    return None


def status_mismatches(expected: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Tenants whose `/budget/status` spend or tokens differ from the exact sums."""
    by_scope = {row["scope"]: row for row in rows}
    bad = []
    for tenant, want in sorted(expected["tenants"].items()):
        row = by_scope.get(tenant)
        if row is None:
            bad.append(f"{tenant}: no budget row")
        elif round(row["spent_usd"] * 1_000_000) != want["micros"] or row["tokens"] != want["tokens"]:
            bad.append(f"{tenant}: {row['spent_usd']} USD / {row['tokens']} tokens, "
                       f"expected {want['micros'] / 1_000_000} / {want['tokens']}")
    return bad


def spend_mismatches(expected: dict[str, Any], spend: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """Periods and scopes whose naive-app sums (over windows) differ from the exact sums."""
    want = {**expected["tenants"], **expected["workflows"]}
    bad = []
    for period in ("hour", "day", "month"):
        got = spend.get(period) or {}
        for scope in sorted(set(want) | set(got)):
            if got.get(scope) != want.get(scope):
                bad.append(f"{period} {scope}: {got.get(scope)} != {want.get(scope)}")
    return bad


def throughput(n: int, spawned: float, first: tuple[float, int] | None, warm: tuple[float, int] | None,
               end: float | None) -> dict[str, Any]:
    """Events/s from poll observations: (time, count) at the first poll that saw an event
    and at the first at/after the warm-up, and the time the exact sums were seen.

    >>> r = throughput(1000, 0.0, (2.0, 100), (3.0, 400), 5.0)
    >>> r["per_s"], r["elapsed_s"], r["steady"]["per_s"], r["startup_s"], r["wall_s"]
    (300.0, 3.0, 300.0, 2.0, 5.0)
    """
    def window(obs: tuple[float, int] | None) -> dict[str, Any]:
        if obs is None or end is None or end <= obs[0]:
            return {"per_s": None, "events": None, "window_s": None, "from_count": obs and obs[1]}
        return {"per_s": round((n - obs[1]) / (end - obs[0]), 1), "events": n - obs[1],
                "window_s": round(end - obs[0], 3), "from_count": obs[1]}

    main, steady = window(first), window(warm)
    return {"n": n, "per_s": main["per_s"], "elapsed_s": main["window_s"], "events": main["events"],
            "first_count": main["from_count"], "steady": steady,
            "startup_s": None if first is None else round(first[0] - spawned, 3),
            "wall_s": None if end is None else round(end - spawned, 3)}


def poll_interval(n: int, first: tuple[float, int] | None, last: tuple[float, int],
                  fine: float = 0.05, coarse: float = 0.5) -> float:
    """Seconds to the next count poll: `fine` until the first event and once the rate so far
    says the rest takes under a second, else `coarse` (every poll costs the worker a little
    CPU, and only the first and the last polls set the figures).

    >>> poll_interval(1000, None, (1.0, 0)), poll_interval(1000, (1.0, 100), (2.0, 200))
    (0.05, 0.5)
    >>> poll_interval(1000, (1.0, 100), (2.0, 950)), poll_interval(1000, (2.0, 100), (2.0, 100))
    (0.05, 0.05)
    """
    if first is None or last[0] <= first[0] or last[1] <= first[1]:
        return fine
    per_s = (last[1] - first[1]) / (last[0] - first[0])
    return fine if (n - last[1]) / per_s < 1.0 else coarse


def _variant_per_s(variants: dict[str, Any], name: str, steady: bool = False) -> float | None:
    v = variants.get(name) or {}
    return (v.get("steady") or {}).get("per_s") if steady else v.get("per_s")


def assemble(meta: dict[str, Any], variants: dict[str, Any]) -> dict[str, Any]:
    """The report: both variants' figures and the project's ratio against the naive baseline."""
    return {
        "schema": SCHEMA,
        "meta": meta,
        "variants": variants,
        "ratios": {
            "project_vs_naive": ratio(_variant_per_s(variants, "project"), _variant_per_s(variants, "naive")),
            "project_vs_naive_steady": ratio(_variant_per_s(variants, "project", True),
                                             _variant_per_s(variants, "naive", True)),
        },
    }


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    v, r = report["variants"], report["ratios"]
    rows = [("variant", "events/s", "steady /s", "elapsed", "note")]
    titles = {"project": "budget agent (app.cli worker)", "naive": "naive per-event Faust agent"}
    for name in VARIANTS:
        x = v.get(name) or {}
        if "error" in x:
            rows.append((titles[name], "—", "—", "—", f"FAILED: {x['error'][:60]}"))
            continue
        note = "baseline" if name == "naive" else (
            f"{_fmt(r['project_vs_naive'], '× naive', 2)} (steady {_fmt(r['project_vs_naive_steady'], '×', 2)})")
        rows.append((titles[name], _fmt(x.get("per_s"), " /s"), _fmt((x.get("steady") or {}).get("per_s"), " /s"),
                     _fmt(x.get("elapsed_s"), " s", 2), note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}  {e}"
                     for a, b, c, d, e in rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller load (N=5,000) for a fast check")
    ap.add_argument("-n", type=int, help="cost events per variant (default 60,000; quick 5,000)")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/budget-<timestamp>.json)")
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants (default: project,naive)")
    args = ap.parse_args(argv)
    args.n = args.n or (5_000 if args.quick else 60_000)
    if args.n < 2 * DUP_EVERY:
        ap.error(f"-n must be at least {2 * DUP_EVERY}")
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    if unknown := set(args.only) - set(VARIANTS):
        ap.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    args.out = args.out or RESULTS / f"budget-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return args


# --------------------------------------------------------------------------- measurement


@dataclass
class Probe:
    """How the bench watches one variant: `count` (events consumed, None while it does not
    answer) and `check` (what differs from the exact sums; empty when exact)."""

    count: Callable[[], int | None]
    check: Callable[[], list[str]]


def _get(port: int, path: str, timeout: float = 5.0) -> bytes | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.read()
    except OSError:  # not listening yet, or an HTTP error
        return None


def drain(n: int, warmup: int, probe: Probe, *, spawned: float, watch: Procs, alive: Callable[[], str | None],
          timeout_s: float, label: str, verify_s: float = 60.0) -> dict[str, Any]:
    """Poll until all `n` events were consumed and the sums are exact; return the figures."""
    first = warm = None
    cpu0: dict[str, Any] | None = None
    polls, last_log, count = 0, time.monotonic(), None
    while True:  # 1: the count (see poll_interval)
        _check_alive(alive)
        count = probe.count()
        now = time.monotonic()
        polls += 1
        if count:
            if first is None:
                first, cpu0 = (now, count), watch.snapshot()
                log(f"{label}: first events seen ({count:,}) {now - spawned:.2f}s after start")
            if warm is None and count >= warmup:
                warm = (now, count)
            if count >= n:
                break
        if now - spawned > timeout_s:
            raise TimeoutError(f"{label}: {count or 0:,}/{n:,} events consumed after {timeout_s:.0f}s")
        if now - last_log >= 2.0:
            log(f"{label}: {count or 0:,}/{n:,} events")
            last_log = now
        time.sleep(poll_interval(n, first, (now, count or 0)))
    deadline = time.monotonic() + verify_s
    while True:  # 2: the sums, every 0.05 s, until exact
        bad = probe.check()
        end = time.monotonic()
        polls += 1
        if not bad:
            break
        if end > deadline:
            raise AssertionError(f"{label}: sums not exact {verify_s:.0f}s after all events were consumed: "
                                 + "; ".join(bad[:6]))
        _check_alive(alive)
        time.sleep(0.05)
    cpu1 = watch.snapshot()
    result = throughput(n, spawned, first, warm, end)
    result.update(polls=polls, verified=True, warmup=warmup,
                  cpu_cores=cpu_use(cpu0 or cpu1, cpu1, end - first[0]) if first else {})
    log(f"{label}: {_fmt(result['per_s'], ' events/s')} ({result['events']:,} in {result['elapsed_s']:.2f}s; "
        f"steady {_fmt(result['steady']['per_s'], '/s')}), sums exact")
    return result


def _costs_topic() -> str:
    from resontinex.app.settings import Settings

    return Settings.from_env().topic("costs")


def run_variant(kind: str, n: int, items: Sequence[tuple[bytes, bytes]], expected: dict[str, Any],
                timeout_s: float) -> dict[str, Any]:
    """One variant on a fresh broker and data directory: preload, start, drain, stop."""
    from resontinex.app.broker import free_port
    from tests.integration.harness import start_worker

    label = {"project": "project worker", "naive": "naive agent"}[kind]
    topic = _costs_topic()
    with _session(f"budget-{kind}") as (broker, tmp, procs):
        log(f"{label}: preloading {n:,} cost events")
        asyncio.run(preload(broker.bootstrap, items, topic=topic))
        if kind == "project":
            config = tmp / "config"
            config.mkdir()
            (config / "energy_governance.yaml").write_text(BUDGET_CONFIG)
            spawned = time.monotonic()
            worker = start_worker(broker.bootstrap, tmp / "w0", env={"RESONTINEX_CONFIG_DIR": str(config)})
            procs.append(worker.proc)
            proc, log_path, port = worker.proc, worker.log_path, worker.web_port

            def count() -> int | None:
                body = _get(port, "/metrics")
                value = None if body is None else events_total(body.decode(), topic)
                return None if value is None else int(value)

            def check() -> list[str]:
                body = _get(port, "/budget/status?local=1")
                return ["no answer"] if body is None else status_mismatches(expected, json.loads(body)["budgets"])
        else:
            port = free_port()
            log_path = tmp / "naive.log"
            spawned = time.monotonic()
            proc = _spawn(["-m", "bench.naive_budget_app", broker.bootstrap, str(tmp), str(port)], log_path)
            procs.append(proc)

            def count() -> int | None:
                body = _get(port, "/bench/count")
                return None if body is None else json.loads(body)["events"]

            def check() -> list[str]:
                body = _get(port, "/bench/spend")
                return ["no answer"] if body is None else spend_mismatches(expected, json.loads(body))
        watch = Procs({"broker": broker.pid, kind: proc.pid})
        log(f"{label}: started pid {proc.pid}, web port {port}")
        return drain(n, max(1, n // 10), Probe(count, check), spawned=spawned, watch=watch,
                     alive=_gone([(proc, log_path)]), timeout_s=timeout_s, label=label)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    n = args.n
    plan = Plan(n=n, warmup=max(1, n // 10), timeout_s=90 + n / 250, latency_warm_s=0.0, latency_measure_s=0.0)
    info = run_meta(plan, args.quick)
    items = costs(n)
    expected = expected_spend(items)
    from resontinex.app.settings import Settings

    s = Settings.from_env()
    info.update(
        variants=args.only, records=n, distinct=expected["distinct"], duplicates=n - expected["distinct"],
        tenants=len(expected["tenants"]), scopes=len(expected["tenants"]) + len(expected["workflows"]),
        partition_load=_partition_counts(items), batch_max=s.batch_max, batch_linger_ms=round(s.batch_linger_s * 1000),
        timeout_s=plan.timeout_s,
    )
    log(f"N={n:,} ({expected['distinct']:,} distinct), {len(expected['tenants'])} tenants, partitions "
        f"{info['partition_load']}; variants {','.join(args.only)}; result → {args.out}")
    variants: dict[str, Any] = {}
    for i, kind in enumerate(args.only, 1):
        log(f"variant {i}/{len(args.only)}: {kind}")
        try:
            variants[kind] = run_variant(kind, n, items, expected, plan.timeout_s)
        except Exception as exc:  # one broken variant must not lose the other's figures
            log(f"{kind}: FAILED: {type(exc).__name__}: {exc}")
            variants[kind] = {"error": f"{type(exc).__name__}: {exc}"[:4000]}
    mark_finished(info)
    report = assemble(info, variants)
    publish(report, args.out, table(report))
    return 0 if all("error" not in v for v in variants.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
