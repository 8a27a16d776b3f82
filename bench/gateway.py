"""The HTTP gateway against the Python client, end to end, in one run.

    python -m bench.gateway [--quick] [--requests N] [--concurrency C] [--rounds R]
                            [--out bench/results/gateway-<timestamp>.json]

One fresh embedded broker (`topics create`), one core worker (`python -m
resontinex.app.cli worker --role core`) and one gateway (`worker --role gateway`, its
`gateway.yaml` in a temporary RESONTINEX_CONFIG_DIR with one token per tenant). This
process drives both paths, closed-loop, C requests in flight at a time:

* **direct** (the baseline): `resontinex.client.Client.decide`, one call per request
  (publish on `decision-requests`, wait for the decision on `decisions`);
* **gateway**: `POST /v1/decide?timeout_s=30` with `Authorization: Bearer <token>`
  through one aiohttp `ClientSession` (keep-alive, connector limit C), the tenant's own
  token for each request.

Both paths send the same kind of requests (`bench.run.requests`' shape: three uniform
random signals, a workflow, a ts) over the same tenants, chosen so that murmur2 spreads
them evenly over the 4 partitions; every request has an event id of its own (the
processor drops a repeated one). A warm-up batch of each path comes first and is not
counted; then R rounds of direct, gateway (alternating, because two shared cores are
noisy). Per round and path: requests/s = answered ÷ (first request sent → last answer),
latency p50/p95/p99 (each request timed around its own call), the gateway's HTTP
statuses (every one must be 200: a 202 is a decision not read back in 30 s), the
gateway's own time per request (its `resontinex_gateway_request_seconds` histogram) and
the CPU seconds of this process, the broker, the worker and the gateway (from /proc).
The headline ratios (gateway ÷ direct, requests/s and p99) are of the rounds' medians;
each round's own ratios are reported too.

Progress goes to stderr; a short table to stdout; every figure to one JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence

import orjson

from ._meta import checkout_commit, code_sha256
from .run import (PARTITIONS, REPO, RESULTS, WORKFLOWS, Procs, _check_alive, _fmt, _gone, _session,
                  balanced_tenants, log, mark_finished, partition_of, percentile, publish, ratio)

SCHEMA = 1
REPORT_KEYS = ("schema", "meta", "config", "warmup", "rounds", "median", "ratios", "gateway_status", "ok", "notes")
VARIANTS = ("direct", "gateway")
DEFAULTS = {"requests": 3000, "concurrency": 32, "rounds": 2, "tenants": 8}
QUICK = {"requests": 300, "concurrency": 16, "rounds": 2, "tenants": 8}
DECIDE_TIMEOUT_S = 30.0
"""Both paths wait this long for a decision (the gateway's `max_decide_timeout_s`)."""
HTTP_TIMEOUT_S = DECIDE_TIMEOUT_S + 15.0
CODE_MEASURED = ("app/gateway", "client", "schemas")
PROCESSES = ("bench", "broker", "worker", "gateway")
FIGURES = ("per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "wall_s")
"""The figures of a round whose median over the rounds is reported."""


# --------------------------------------------------------------------------- pure helpers


def bench_tenants(count: int = DEFAULTS["tenants"], partitions: int = PARTITIONS) -> list[str]:
    """`count` tenants `gw-NN` spread as evenly as murmur2 allows over `partitions` (as
    `bench.run.balanced_tenants` picks its 12): 8 tenants → 2 on each of 4 partitions.

    >>> names = bench_tenants(8)
    >>> len(names), sorted(Counter(partition_of(n.encode()) for n in names).values())
    (8, [2, 2, 2, 2])
    """
    return balanced_tenants(count, partitions, prefix="gw")


def event_id(variant: str, phase: str, i: int) -> str:
    """A request's event id, distinct across paths, phases and requests (the processor
    drops a repeated event id, so no two requests of a run may share one).

    >>> event_id("gateway", "r1", 7), event_id("direct", "warm", 0)
    ('gateway-r1-000007', 'direct-warm-000000')
    """
    return f"{variant}-{phase}-{i:06d}"


def decision_request(variant: str, phase: str, i: int, tenants: Sequence[str], *, seed: int = 3) -> dict[str, Any]:
    """Request i of a phase, as a JSON-able dict; its signals depend on i only (so both
    paths get the same mix of verbs), its event id on the path and the phase too.

    >>> a, b = decision_request("direct", "r1", 5, ["t"]), decision_request("gateway", "r1", 5, ["t"])
    >>> a["signals"] == b["signals"], a["event_id"] != b["event_id"], a["tenant"]
    (True, True, 't')
    """
    rng = random.Random((seed << 32) | i)
    tenant = tenants[i % len(tenants)]
    ms = 1_767_225_600_000 + i  # 2026-01-01T00:00:00Z
    return {"event_id": event_id(variant, phase, i), "tenant": tenant, "workflow": WORKFLOWS[i % len(WORKFLOWS)],
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z",
            "signals": {"alignment_score": rng.random(), "epistemic_risk": rng.random(),
                        "confidence_band": rng.random()}}


def gateway_yaml(tokens: Mapping[str, str]) -> str:
    """The gateway's `gateway.yaml`: one token per tenant (stored as its SHA-256, as
    `resontinex.app.gateway.token_digest` makes it), and a 30 s wait allowed.

    >>> import yaml
    >>> from resontinex.app.gateway import gateway_config_from
    >>> cfg = gateway_config_from(yaml.safe_load(gateway_yaml({"gw-00": "tok-a", "gw-01": "tok-b"})))
    >>> cfg.tenant_of("Bearer tok-b"), cfg.max_decide_timeout_s
    ('gw-01', 30.0)
    """
    from resontinex.app.gateway import token_digest

    lines = ["# bench/gateway.py: one token per bench tenant", "tokens:"]
    lines += [f"  - {{tenant: {tenant}, sha256: {token_digest(token)}, name: bench}}"
              for tenant, token in tokens.items()]
    lines += [f"max_decide_timeout_s: {DECIDE_TIMEOUT_S:g}", "decide_timeout_s: 5.0"]
    return "\n".join(lines) + "\n"


def status_counts(statuses: Sequence[int | str]) -> dict[str, Any]:
    """HTTP statuses (or the direct path's `ok` / `timeout` / `error`) counted: `200`,
    `202`, `other`, and each other one by name; `all_200` when every one was a 200.

    >>> status_counts([200, 200, 202, 500, "error"])
    {'200': 2, '202': 1, 'other': 2, 'other_codes': {'500': 1, 'error': 1}, 'all_200': False}
    >>> status_counts([200])["all_200"], status_counts([])["all_200"]
    (True, False)
    """
    counts = Counter(str(s) for s in statuses)
    others = {k: v for k, v in sorted(counts.items()) if k not in ("200", "202")}
    return {"200": counts.get("200", 0), "202": counts.get("202", 0), "other": sum(others.values()),
            "other_codes": others, "all_200": bool(statuses) and counts.get("200", 0) == len(statuses)}


def summarize(latencies_ms: Sequence[float], wall_s: float, statuses: Sequence[int | str]) -> dict[str, Any]:
    """One path's figures for one batch: answered requests/s over the batch's wall time and
    nearest-rank percentiles of the answered requests' latencies (a request that got no
    decision is counted in `statuses`, not in the figures).

    >>> s = summarize([float(x) for x in range(1, 101)], 2.0, [200] * 100)
    >>> s["requests"], s["answered"], s["per_s"], s["p50_ms"], s["p99_ms"], s["max_ms"], s["mean_ms"]
    (100, 100, 50.0, 50.0, 99.0, 100.0, 50.5)
    >>> summarize([], 1.0, ["timeout"])["per_s"] is None
    True
    """
    n = len(latencies_ms)
    return {"requests": len(statuses), "answered": n,
            "per_s": round(n / wall_s, 1) if n and wall_s > 0 else None, "wall_s": round(wall_s, 3),
            **{f"p{q}_ms": _r(percentile(latencies_ms, q)) for q in (50, 95, 99)},
            "max_ms": _r(max(latencies_ms)) if n else None,
            "mean_ms": round(sum(latencies_ms) / n, 2) if n else None,
            "statuses": status_counts(statuses)}


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def cpu_figures(before: Mapping[str, float | None], after: Mapping[str, float | None], wall_s: float,
                requests: int) -> dict[str, Any]:
    """CPU seconds of each process between two snapshots, the cores that is (1.0 = one
    core busy over the wall time) and µs per answered request.

    >>> f = cpu_figures({"bench": 1.0, "gateway": 2.0, "broker": None}, {"bench": 1.5, "gateway": 3.0, "broker": 4.0},
    ...                 2.0, 1000)
    >>> f["seconds"]
    {'bench': 0.5, 'gateway': 1.0, 'broker': None}
    >>> f["cores"], f["us_per_request"]
    ({'bench': 0.25, 'gateway': 0.5, 'broker': None}, {'bench': 500.0, 'gateway': 1000.0, 'broker': None})
    """
    seconds: dict[str, float | None] = {}
    for name, b in before.items():
        a = after.get(name)
        seconds[name] = None if a is None or b is None else round(a - b, 3)
    return {"seconds": seconds,
            "cores": {k: None if v is None or wall_s <= 0 else round(v / wall_s, 3) for k, v in seconds.items()},
            "us_per_request": {k: None if v is None or not requests else round(v * 1e6 / requests, 1)
                               for k, v in seconds.items()}}


def histogram_mean_ms(before: str, after: str, name: str, **labels: str) -> float | None:
    """The mean of a Prometheus histogram's observations between two scrapes, in ms.

    >>> t0 = 'h_sum{route="decide"} 1.0\\nh_count{route="decide"} 10.0\\n'
    >>> t1 = 'h_sum{route="decide"} 3.0\\nh_count{route="decide"} 110.0\\n'
    >>> histogram_mean_ms(t0, t1, "h", route="decide"), histogram_mean_ms("", "", "h")
    (20.0, None)
    """
    from .coordination import metric_sum

    s1, c1 = metric_sum(after, f"{name}_sum", **labels), metric_sum(after, f"{name}_count", **labels)
    if s1 is None or c1 is None:
        return None
    s0, c0 = metric_sum(before, f"{name}_sum", **labels) or 0.0, metric_sum(before, f"{name}_count", **labels) or 0.0
    return round((s1 - s0) / (c1 - c0) * 1000, 2) if c1 > c0 else None


def median_of_rounds(figures: Sequence[Mapping[str, Any]], keys: Sequence[str] = FIGURES) -> dict[str, Any]:
    """Each figure's median over the rounds (those that have it), and each process's CPU
    µs per request likewise; `rounds` = how many rounds had figures.

    >>> median_of_rounds([{"per_s": 100.0, "p99_ms": 30.0}, {"per_s": 120.0, "p99_ms": 50.0},
    ...                   {"per_s": 90.0, "p99_ms": None}], keys=("per_s", "p99_ms"))
    {'per_s': 100.0, 'p99_ms': 40.0, 'rounds': 3}
    """
    out: dict[str, Any] = {}
    for key in keys:
        values = [f[key] for f in figures if f.get(key) is not None]
        out[key] = round(statistics.median(values), 3) if values else None
    cpu = [f["cpu"]["us_per_request"] for f in figures if (f.get("cpu") or {}).get("us_per_request")]
    if cpu:
        out["cpu_us_per_request"] = {}
        for name in cpu[0]:
            values = [c[name] for c in cpu if c.get(name) is not None]
            out["cpu_us_per_request"][name] = round(statistics.median(values), 1) if values else None
    out["rounds"] = len(figures)
    return out


def compare(direct: Mapping[str, Any], gateway: Mapping[str, Any]) -> dict[str, float | None]:
    """gateway ÷ direct for requests/s and the latencies (above 1: the gateway answers
    more a second, or slower, respectively).

    >>> compare({"per_s": 400.0, "p50_ms": 50.0, "p99_ms": 100.0}, {"per_s": 300.0, "p50_ms": 60.0, "p99_ms": 150.0})
    {'per_s': 0.75, 'p50_ms': 1.2, 'p99_ms': 1.5}
    >>> compare({}, {"per_s": 1.0})["per_s"] is None
    True
    """
    return {k: ratio(gateway.get(k), direct.get(k)) for k in ("per_s", "p50_ms", "p99_ms")}


def assemble(meta: dict[str, Any], config: dict[str, Any], warmup: dict[str, Any],
             rounds: Sequence[dict[str, Any]], notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report: each round's figures and its own ratios, the medians over the rounds and
    their ratios (the headline), and the gateway's statuses over every counted request."""
    done = [r for r in rounds if all(isinstance(r.get(v), dict) and "error" not in r[v] for v in VARIANTS)]
    for r in rounds:
        if r in done:
            r["ratios"] = compare(r["direct"], r["gateway"])
    median = {v: median_of_rounds([r[v] for r in done]) for v in VARIANTS}
    headline = compare(median["direct"], median["gateway"])
    ratios = {"gateway_vs_direct_per_s": headline["per_s"], "gateway_vs_direct_p99": headline["p99_ms"],
              "gateway_vs_direct_p50": headline["p50_ms"],
              "per_round": [r.get("ratios") for r in rounds]}
    gw: Counter[str] = Counter()
    for r in rounds:
        for code, count in (((r.get("gateway") or {}).get("statuses") or {}).get("other_codes") or {}).items():
            gw[code] += count
    statuses = {"200": sum(((r.get("gateway") or {}).get("statuses") or {}).get("200", 0) for r in rounds),
                "202": sum(((r.get("gateway") or {}).get("statuses") or {}).get("202", 0) for r in rounds),
                "other": sum(gw.values()), "other_codes": dict(sorted(gw.items()))}
    want = config.get("requests", 0) * len(rounds)
    statuses["all_200"] = bool(done) and len(done) == len(rounds) and statuses["200"] == want
    direct_ok = all(((r.get("direct") or {}).get("statuses") or {}).get("all_200") for r in rounds) and bool(rounds)
    ok = bool(done) and len(done) == len(rounds) and statuses["all_200"] and direct_ok
    return {"schema": SCHEMA, "meta": meta, "config": config, "warmup": warmup, "rounds": list(rounds),
            "median": median, "ratios": ratios, "gateway_status": statuses, "ok": ok,
            "notes": {"ratios": "gateway / direct of the medians over the rounds: per_s below 1 = the gateway answers "
                                "fewer requests a second; p99 above 1 = its tail is slower",
                      "direct_statuses": "the direct path's '200' is a decision received, 'timeout' none in 30 s",
                      **(notes or {})}}


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    rows = [("", "requests/s", "p50 / p95 / p99 ms", "CPU µs a request (bench/broker/worker/gateway)")]

    def line(label: str, f: Mapping[str, Any]) -> tuple[str, str, str, str]:
        if "error" in f:
            return label, "FAILED", f["error"][:60].replace("\n", " "), ""
        cpu = (f.get("cpu") or {}).get("us_per_request") or f.get("cpu_us_per_request") or {}
        return (label, _fmt(f.get("per_s"), "", 0),
                " / ".join(_fmt(f.get(k), "", 1) for k in ("p50_ms", "p95_ms", "p99_ms")),
                " / ".join(_fmt(cpu.get(p), "", 0) for p in PROCESSES))

    for r in report["rounds"]:
        for v in VARIANTS:
            if isinstance(r.get(v), dict):
                rows.append(line(f"round {r['round']} {v}", r[v]))
    for v in VARIANTS:
        rows.append(line(f"median {v}", report["median"][v]))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    text = "\n".join(f"{a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}  {d}" for a, b, c, d in rows)
    r, s = report["ratios"], report["gateway_status"]
    per_round = ", ".join(f"{_fmt((x or {}).get('per_s'), '×', 2)}/{_fmt((x or {}).get('p99_ms'), '×', 2)}"
                          for x in r["per_round"])
    text += (f"\ngateway ÷ direct (medians): {_fmt(r['gateway_vs_direct_per_s'], '×', 2)} requests/s, "
             f"{_fmt(r['gateway_vs_direct_p99'], '×', 2)} p99, {_fmt(r['gateway_vs_direct_p50'], '×', 2)} p50"
             f"  (each round, requests/s / p99: {per_round})")
    server = [(x.get("gateway") or {}).get("server_mean_ms") for x in report["rounds"]]
    text += (f"\ngateway statuses: 200 {s['200']:,}, 202 {s['202']:,}, other {s['other']:,} {s['other_codes'] or ''}"
             f"  ({'all 200' if s['all_200'] else 'NOT all 200'}); gateway's own mean time a request "
             f"{', '.join(_fmt(x, ' ms', 1) for x in server)}")
    return text


# --------------------------------------------------------------------------- arguments, meta


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"a smoke run: {QUICK['requests']} requests, {QUICK['concurrency']} in flight")
    ap.add_argument("--requests", "-n", type=int,
                    help=f"requests per path and round (default {DEFAULTS['requests']:,}; quick {QUICK['requests']})")
    ap.add_argument("--concurrency", "-c", type=int,
                    help=f"requests in flight (default {DEFAULTS['concurrency']}; quick {QUICK['concurrency']})")
    ap.add_argument("--rounds", type=int, help=f"direct, gateway rounds (default {DEFAULTS['rounds']})")
    ap.add_argument("--tenants", type=int, help=f"tenants, one token each (default {DEFAULTS['tenants']})")
    ap.add_argument("--warmup", type=int, help="warm-up requests per path, not counted (default max(2 C, N/10))")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/gateway-<timestamp>.json)")
    args = ap.parse_args(argv)
    pick = QUICK if args.quick else DEFAULTS
    for key in ("requests", "concurrency", "rounds", "tenants"):
        if getattr(args, key) is None:
            setattr(args, key, pick[key])
    if args.warmup is None:
        args.warmup = max(2 * args.concurrency, args.requests // 10)
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.tenants < 1 or args.warmup < 0:
        ap.error("--requests, --concurrency, --rounds and --tenants ≥ 1 and --warmup ≥ 0 are needed")
    args.out = args.out or RESULTS / f"gateway-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return args


def meta(args: argparse.Namespace) -> dict[str, Any]:

    try:
        import aiohttp
        aiohttp_version = aiohttp.__version__
    except ImportError:  # pragma: no cover - the gateway needs it
        aiohttp_version = None
    return {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "timestamp": time.time(),
            "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(), "aiohttp": aiohttp_version,
            "git_commit": checkout_commit(), "code_sha256": code_sha256(CODE_MEASURED), "code_hashed": list(CODE_MEASURED),
            "quick": args.quick}


# --------------------------------------------------------------------------- measurement


Call = Callable[[dict[str, Any]], Awaitable[int | str]]


async def drive(label: str, call: Call, items: Sequence[dict[str, Any]], concurrency: int,
                alive: Callable[[], str | None]) -> tuple[list[float], list[int | str], float]:
    """`items` through `call`, `concurrency` at a time (closed loop: each lane sends its next
    request when its last is answered); each request's latency (ms, answered ones only),
    every status, and the wall time from the first send to the last answer. A process the
    run depends on that exits stops the batch (`ProcessGone`)."""
    latencies: list[float] = []
    statuses: list[int | str] = []
    queue = iter(items)

    async def lane() -> None:
        for item in queue:  # one iterator shared by the lanes: each takes the next request
            t = time.perf_counter()
            status = await call(item)
            if status == 200:
                latencies.append((time.perf_counter() - t) * 1000.0)
            statuses.append(status)

    t0 = time.perf_counter()
    lanes = asyncio.gather(*(lane() for _ in range(min(concurrency, len(items)))))
    last_log = t0
    try:
        while True:
            done, _ = await asyncio.wait({lanes}, timeout=0.5)
            if done:
                break
            _check_alive(alive)
            if time.perf_counter() - last_log >= 2.0:
                log(f"{label}: {len(statuses):,}/{len(items):,} answered")
                last_log = time.perf_counter()
        wall = time.perf_counter() - t0
        lanes.result()
    finally:
        if not lanes.done():
            lanes.cancel()
            await asyncio.gather(lanes, return_exceptions=True)
    return latencies, statuses, wall


def _get(port: int, path: str, timeout: float = 5.0) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return ""


class Paths:
    """The two ways in: the Python client (one `Client` for the run) and the gateway (one
    aiohttp session, keep-alive, at most `concurrency` connections)."""

    def __init__(self, bootstrap: str, gateway_port: int, tokens: Mapping[str, str], concurrency: int) -> None:
        self.bootstrap, self.port, self.concurrency = bootstrap, gateway_port, concurrency
        self.auth = {tenant: f"Bearer {token}" for tenant, token in tokens.items()}
        self.url = f"http://127.0.0.1:{gateway_port}/v1/decide?timeout_s={DECIDE_TIMEOUT_S:g}"
        self.mismatched = 0

    async def __aenter__(self) -> "Paths":
        import aiohttp

        from resontinex.client import Client

        self.client = Client(self.bootstrap)
        await self.client.start()
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency,
                                         keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector,
                                             timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.session.close()
        finally:
            await self.client.close()

    async def direct(self, item: dict[str, Any]) -> int | str:
        from resontinex.client import ClientError, ResultTimeout

        try:
            decision = await self.client.decide(item, timeout=DECIDE_TIMEOUT_S)
        except ResultTimeout:
            return "timeout"
        except ClientError as exc:
            return f"error:{type(exc).__name__}"
        if decision.request_id != item["event_id"]:
            self.mismatched += 1
            return "mismatch"
        return 200

    async def gateway(self, item: dict[str, Any]) -> int | str:
        import aiohttp

        try:
            async with self.session.post(self.url, data=orjson.dumps(item),
                                         headers={"Authorization": self.auth[item["tenant"]],
                                                  "Content-Type": "application/json"}) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return f"error:{type(exc).__name__}"
        if status == 200 and orjson.loads(body).get("request_id") != item["event_id"]:
            self.mismatched += 1
            return "mismatch"
        return status


async def batch(paths: Paths, variant: str, phase: str, n: int, tenants: Sequence[str], concurrency: int,
                watch: Procs, alive: Callable[[], str | None]) -> dict[str, Any]:
    """One path's batch of `n` requests: its figures, CPU, and (gateway) the server's own time."""
    items = [decision_request(variant, phase, i, tenants) for i in range(n)]
    call = paths.direct if variant == "direct" else paths.gateway
    label = f"{variant} {phase}"
    scrape0 = _get(paths.port, "/metrics") if variant == "gateway" else ""
    cpu0 = watch.snapshot()
    latencies, statuses, wall = await drive(label, call, items, concurrency, alive)
    cpu1 = watch.snapshot()
    out = summarize(latencies, wall, statuses)
    out["cpu"] = cpu_figures(cpu0, cpu1, wall, len(latencies))
    if variant == "gateway":
        out["server_mean_ms"] = histogram_mean_ms(scrape0, _get(paths.port, "/metrics"),
                                                  "resontinex_gateway_request_seconds", route="decide")
    log(f"{label}: {_fmt(out['per_s'], '/s')}, p50 {_fmt(out['p50_ms'], ' ms', 1)}, p99 {_fmt(out['p99_ms'], ' ms', 1)}"
        f" ({out['answered']:,}/{n:,} answered in {wall:.2f}s; statuses {dict(Counter(map(str, statuses)))})")
    return out


async def measure(args: argparse.Namespace, bootstrap: str, gateway_port: int, tokens: Mapping[str, str],
                  tenants: Sequence[str], watch: Procs, alive: Callable[[], str | None],
                  warmup: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
    """Warm-up of each path, then the rounds (direct, gateway), into `warmup` and `rounds`."""
    async with Paths(bootstrap, gateway_port, tokens, args.concurrency) as paths:
        if args.warmup:
            for v in VARIANTS:
                log(f"warm-up: {args.warmup:,} requests through the {v} path (not counted)")
                warmup[v] = await batch(paths, v, "warm", args.warmup, tenants, args.concurrency, watch, alive)
        for r in range(1, args.rounds + 1):
            row: dict[str, Any] = {"round": r}
            rounds.append(row)
            for v in VARIANTS:
                log(f"round {r}/{args.rounds}: {v}, {args.requests:,} requests, {args.concurrency} in flight")
                row[v] = await batch(paths, v, f"r{r}", args.requests, tenants, args.concurrency, watch, alive)
        warmup["mismatched_answers"] = paths.mismatched


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tests.integration.harness import start_worker

    tenants = bench_tenants(args.tenants)
    tokens = {t: "rtx_bench_" + secrets.token_urlsafe(24) for t in tenants}
    config = {"requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
              "warmup": args.warmup, "tenants": tenants,
              "tenant_partitions": {t: partition_of(t.encode()) for t in tenants},
              "order": [v for _ in range(args.rounds) for v in VARIANTS], "decide_timeout_s": DECIDE_TIMEOUT_S,
              "http": "aiohttp ClientSession, keep-alive, connector limit = concurrency; POST /v1/decide?timeout_s=30",
              "direct": "resontinex.client.Client.decide, one call per request"}
    info = meta(args)
    log(f"{args.requests:,} requests per path and round, {args.concurrency} in flight, {args.rounds} rounds, "
        f"warm-up {args.warmup:,}; {len(tenants)} tenants; load {info['loadavg_before']}; result → {args.out}")
    warmup: dict[str, Any] = {}
    rounds: list[dict[str, Any]] = []
    failed: str | None = None
    try:
        with _session("gateway") as (broker, tmp, procs):
            cdir = tmp / "config"
            cdir.mkdir()
            (cdir / "gateway.yaml").write_text(gateway_yaml(tokens))
            spawned = time.monotonic()
            worker = start_worker(broker.bootstrap, tmp / "core", role="core")
            procs.append(worker.proc)
            gateway = start_worker(broker.bootstrap, tmp / "gateway", role="gateway",
                                   env={"RESONTINEX_CONFIG_DIR": str(cdir)})
            procs.append(gateway.proc)
            log(f"core worker pid {worker.proc.pid} (web {worker.web_port}), gateway pid {gateway.proc.pid} "
                f"(port {gateway.web_port})")
            worker.wait_ready(120)
            info["worker_ready_s"] = round(time.monotonic() - spawned, 2)
            gateway.wait_ready(60)
            info["gateway_ready_s"] = round(time.monotonic() - spawned, 2)
            log(f"ready: worker {info['worker_ready_s']}s, gateway {info['gateway_ready_s']}s after start")
            alive = _gone([(worker.proc, worker.log_path), (gateway.proc, gateway.log_path)])
            watch = Procs({"broker": broker.pid, "worker": worker.proc.pid, "gateway": gateway.proc.pid})
            asyncio.run(measure(args, broker.bootstrap, gateway.web_port, tokens, tenants, watch, alive,
                                warmup, rounds))
            _check_alive(alive)
    except Exception as exc:  # the report still says what was measured, and why it stopped
        failed = f"{type(exc).__name__}: {exc}"[:4000]
        log(f"FAILED: {failed}")
        if rounds and not all(v in rounds[-1] for v in VARIANTS):
            rounds[-1][next(v for v in VARIANTS if v not in rounds[-1])] = {"error": failed}
    mark_finished(info)
    report = assemble(info, config, warmup, rounds, {"failed": failed} if failed else None)
    publish(report, args.out, table(report))
    return 0 if report["ok"] and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
