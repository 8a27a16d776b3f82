"""Telemetry folding and the enhancement monitor (issue 14), each against a baseline of the same run.

    python -m bench.telemetry [--quick] [-n N] [--only fold,monitor] [--out bench/results/telemetry-<timestamp>.json]

Two phases, one JSON file with every figure, its baseline and the ratio:

* **fold**: records/s the project's telemetry agent folds, against a naive per-event Faust
  agent doing the same windowed updates (`bench/naive_telemetry_app.py`). Each variant gets
  a fresh embedded broker and data directory; N telemetry records (50 sources over the 4
  partitions, 5 metrics each, 20 % of them of one of 10 enhancements, arm `enhancement` or
  `baseline`, `ts` = the bench's start) are preloaded into `telemetry`, then the variant
  starts and drains them. The bench polls the folded count (the worker's
  `resontinex_telemetry_folded_total` on `/metrics`; the naive app's `/bench/count`):
  records/s = (N − count at the first poll that saw one) / (time of the first poll that saw
  N − time of that first poll), times being when each poll's answer arrived; `steady` does
  the same from the first poll at or past N/10. Afterwards (not timed) every source's and
  every enhancement arm's counts are checked against the load: the windows (`GET
  /telemetry/{source}`; `/bench/sums`) and the partials read back from `enhancement-feed`.
* **monitor**: `plan_tick` (pure) over 1,000 active enhancements (10 tenants × 100, half
  canaries at share 0.2) with realistic series, from an in-memory view holding the tables'
  values as JSON-shaped dicts, at a time when a window just closed for every enhancement
  and every canary's judge is due (the tick runs `canary.judges_per_tick` of them, 200 by
  default; the others wait for the next tick); best of `--repeats`. Baselines of the same
  run: the 1 s budget, and the same tick when nothing closed and no judge is due (the cost
  of looking). Beside it: the tick running every judge due (no bound), the tick when the
  windows close but no judge is due, the tick with the
  garbage collector off (its share), what reading (orjson-decoding the state and series
  values from bytes) and writing back (orjson-encoding the tick's table writes) cost on
  top, a lower bound of the real store; the tick's parts timed alone (`components`) and
  cProfile's shares (`breakdown`); in a full run, the same with a tenth of the telemetry
  (`light`).

Progress goes to stderr; a short table to stdout; every figure to one JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import random
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import orjson

from ._meta import checkout_commit, code_sha256
from .run import PARTITIONS, REPO, RESULTS, _fmt, balanced_tenants, log, partition_of, publish, ratio

SCHEMA = 1
PHASES = ("fold", "monitor")
REPORT_KEYS = ("schema", "meta", "fold", "monitor", "ratios", "targets")
FOLD_TARGET = 3.0
"""Issue 14: the project folds ≥ 3× the naive per-event agent's records/s."""
MONITOR_BUDGET_S = 1.0
"""Issue 14: the monitor evaluates 1,000 active enhancements in under a second per interval."""

SOURCES = 50
ENHANCEMENTS = 10
ENHANCEMENT_SHARE = 0.2
METRICS = ("quality_score", "response_time_ms", "accuracy", "throughput", "error_rate")
PROFILE: Mapping[str, tuple[float, float, float, float]] = {
    # metric: mean, sd, lowest, highest (values are clipped to [lowest, highest])
    "quality_score": (0.90, 0.04, 0.0, 1.0),
    "response_time_ms": (420.0, 80.0, 1.0, math.inf),
    "accuracy": (0.92, 0.03, 0.0, 1.0),
    "throughput": (100.0, 15.0, 0.0, math.inf),
    "error_rate": (0.02, 0.01, 0.0, 1.0),
}
FOLDED_LINE = re.compile(r"^resontinex_telemetry_folded_total\s+(\S+)\s*$", re.M)
SAMPLE_LINE = re.compile(r'^(resontinex_batch_(?:size|seconds)_(?:sum|count))\{([^}]*)\}\s+(\S+)\s*$', re.M)


# --------------------------------------------------------------------------- pure helpers: the load


def balanced_names(prefix: str, count: int, partitions: int = PARTITIONS) -> list[str]:
    """`count` names `<prefix>-NN` spread as evenly as murmur2 allows over `partitions`
    (`bench.run.balanced_tenants`): 50 sources → 13/13/12/12.

    >>> names = balanced_names("source", 6, 4)
    >>> len(names), sorted(Counter(partition_of(n.encode()) for n in names).values())
    (6, [1, 1, 2, 2])
    """
    return balanced_tenants(count, partitions, prefix)


def _ts(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _value(rng: random.Random, metric: str, shift: float = 0.0) -> float:
    mean, sd, lo, hi = PROFILE[metric]
    return round(min(max(rng.gauss(mean * (1.0 + shift), sd), lo), hi), 5)


def telemetry(n: int, *, now: float, seed: int = 14, sources: Sequence[str] | None = None,
              enhancements: int = ENHANCEMENTS, share: float = ENHANCEMENT_SHARE) -> list[tuple[bytes, bytes]]:
    """Telemetry records 0..n−1 as (key, value), keyed by their source; record i is the same
    in every call with the same `now` (every record's `ts` is `now`, to the millisecond).

    Record i comes from source i mod 50; a `share` of them (chosen by a seeded draw) carry
    one of `enhancements` enhancement ids and an arm (`enhancement` or `baseline`).
    """
    names = list(sources or balanced_names("source", SOURCES))
    ts = _ts(round(now * 1000))
    out = []
    for i in range(n):
        rng = random.Random((seed << 32) | i)
        source = names[i % len(names)]
        body: dict[str, Any] = {"event_id": f"tm-{i}", "source": source, "ts": ts,
                                "metrics": {m: _value(rng, m) for m in METRICS}}
        if rng.random() < share:
            body["enhancement_id"] = f"enh-{rng.randrange(enhancements)}"
            body["arm"] = rng.choice(("enhancement", "baseline"))
        out.append((source.encode(), orjson.dumps(body)))
    return out


def expected_counts(items: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """What folding `items` must give: records per source and per `enhancement_id/arm` key."""
    sources: Counter[str] = Counter()
    arms: Counter[str] = Counter()
    for _key, value in items:
        body = orjson.loads(value)
        sources[body["source"]] += 1
        if body.get("enhancement_id") is not None:
            arms[f"{body['enhancement_id']}/{body.get('arm') or 'enhancement'}"] += 1
    return {"records": len(items), "with_enhancement": sum(arms.values()),
            "sources": dict(sorted(sources.items())), "arms": dict(sorted(arms.items()))}


def folded_total(metrics_text: str) -> float | None:
    """`resontinex_telemetry_folded_total` from a Prometheus text exposition (None if absent).

    >>> folded_total("# HELP x\\nresontinex_telemetry_folded_total 40000.0\\n")
    40000.0
    """
    m = FOLDED_LINE.search(metrics_text)
    return float(m.group(1)) if m else None


def batch_metrics(metrics_text: str, agent: str = "telemetry") -> dict[str, Any]:
    """The agent's batches from the worker's histograms: how many, their mean size, and the
    seconds spent handling them (plan + apply, outputs acknowledged)."""
    got: dict[str, float] = {}
    for name, labels, value in SAMPLE_LINE.findall(metrics_text):
        if f'agent="{agent}"' in labels.split(","):
            got[name] = float(value)
    batches = got.get("resontinex_batch_size_count")
    events = got.get("resontinex_batch_size_sum")
    return {"batches": None if batches is None else int(batches), "events": None if events is None else int(events),
            "mean_size": round(events / batches, 1) if batches and events is not None else None,
            "handler_s": None if "resontinex_batch_seconds_sum" not in got else round(got["resontinex_batch_seconds_sum"], 3),
            "per_handler_s": round(events / got["resontinex_batch_seconds_sum"], 1)
            if events and got.get("resontinex_batch_seconds_sum") else None}


def window_counts(windows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each metric's count summed over the windows `GET /telemetry/{source}` shows.

    >>> window_counts([{"metrics": {"q": {"count": 2}}}, {"metrics": {"q": {"count": 3}, "r": {"count": 1}}}])
    {'q': 5, 'r': 1}
    """
    out: dict[str, int] = {}
    for w in windows:
        for name, st in w["metrics"].items():
            out[name] = out.get(name, 0) + int(st["count"])
    return out


def feed_counts(values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The telemetry partials on `enhancement-feed`: how many, and the records they carry per
    `enhancement_id/arm`: each partial holds its source's window so far, so the newest of a
    (window, source) counts (by the count of its first metric)."""
    newest: dict[tuple[str, float, int], int] = {}
    partials = 0
    for v in values:
        if v.get("type") != "telemetry":
            continue
        partials += 1
        counts = {st["n"] for st in v["metrics"].values()}
        key = (f"{v['enhancement_id']}/{v['arm']}", v["window_start"], v["source"])
        newest[key] = max(newest.get(key, 0), max(counts) if counts else 0)
    arms: Counter[str] = Counter()
    for (arm, _, _), n in newest.items():
        arms[arm] += n
    return {"partials": partials, "arms": dict(sorted(arms.items()))}


def count_mismatches(want: Mapping[str, int], got: Mapping[str, Mapping[str, int] | int], what: str,
                     metrics: Sequence[str] = METRICS) -> list[str]:
    """Keys whose counts differ from `want` (`got` per key: one count, or one per metric).

    >>> count_mismatches({"a": 2}, {"a": {"q": 2, "r": 2}}, "source", ("q", "r"))
    []
    >>> count_mismatches({"a": 2, "b": 1}, {"a": {"q": 2, "r": 1}, "c": 4}, "source", ("q", "r"))
    ['source a: r 1 != 2', 'source b: missing', 'source c: 4 != 0']
    """
    bad = []
    for key in sorted(set(want) | set(got)):
        w, g = want.get(key, 0), got.get(key)
        if g is None:
            bad.append(f"{what} {key}: missing")
        elif isinstance(g, int):
            if g != w:
                bad.append(f"{what} {key}: {g} != {w}")
        else:
            bad.extend(f"{what} {key}: {m} {g.get(m)} != {w}" for m in metrics if g.get(m) != w)
    return bad


# --------------------------------------------------------------------------- pure helpers: the monitor fixture

T0 = 1_767_225_600.0
"""2026-01-01T00:00:00Z, a minute boundary: the window [T0 − 60, T0) is the one that closes."""
WINDOW_S, GRACE_S = 60.0, 5.0
CLOSED = 10
"""Closed windows kept per metric: max(stability.window, quality.window) of the defaults."""
LIGHT_WINDOW_EVENTS = 12
"""The full run's second fixture: a tenth of the telemetry (0.2 records/s an arm)."""
GOOD_THRESHOLDS = {"mandatory": 1.0, "proxy": 0.8, "alpha": 0.96, "sigma": 0.1, "governance": 0.9}


class DictView:
    """`EnhancementView` over plain dicts holding the tables' values as JSON-shaped dicts
    (what the worker's `TablesView` gets from Faust), decoded per read as `TablesView` does."""

    def __init__(self, state: dict[str, Any], series: dict[str, Any], index: dict[str, list[str]],
                 pools: dict[str, Any] | None = None) -> None:
        self.state, self.series_values, self.index, self.pools = state, series, index, pools or {}

    def enhancement(self, enhancement_id: str) -> Any:
        from resontinex.agents import enhancement as en

        d = self.state.get(enhancement_id)
        return en.Enhancement.from_dict(d) if d else None

    def series(self, enhancement_id: str, *, pools: bool | None = None) -> Any:
        """As the plan asks (`pools`), or with the pools for the bench's own look (None)."""
        from resontinex.agents import enhancement as en

        d = self.series_values.get(enhancement_id)
        stored = self.pools.get(enhancement_id) if pools is not False else None
        return en.EnhancementSeries.from_dict(d, pools=stored) if d else None

    def tenant_enhancements(self, tenant: str) -> list[str]:
        return list(self.index.get(tenant) or [])

    def directory(self, enhancement_id: str) -> dict[str, Any] | None:
        return None


class JudgedView(DictView):
    """The same values, each record read as judged at `at` (so no canary judge is due then):
    a tick where the windows close but no judge runs. The `replace` costs ~3 µs a read."""

    def __init__(self, base: DictView, at: float) -> None:
        super().__init__(base.state, base.series_values, base.index)
        self.at = at

    def enhancement(self, enhancement_id: str) -> Any:
        e = super().enhancement(enhancement_id)
        return None if e is None else replace(e, judged_at=self.at)


@dataclass
class MonitorFixture:
    tenants: list[str]
    view: DictView
    raw: dict[str, dict[str, bytes]]
    """The same values as bytes (orjson), per table: what a store holds."""
    now_due: float
    """A window closed for every enhancement (grace passed) and every canary's judge is due."""
    now_idle: float
    """Nothing closed since the last round, no judge due: the tick only looks."""
    kinds: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, Any] = field(default_factory=dict)


def _stats(rng: Any, metric: str, count: int, k: int, shift: float = 0.0) -> Any:
    """A `WindowStats` of `count` values of `metric` (mean shifted by `shift`, relative) with
    its bottom-k sample, hashes drawn uniformly below 2**53 as the real ones are."""
    import numpy as np

    from resontinex.agents.enhancement._stats import EMPTY, HASH_BITS, WindowStats

    if count <= 0:
        return EMPTY
    mean, sd, lo, hi = PROFILE[metric]
    x = np.clip(rng.normal(mean * (1.0 + shift), sd, count), lo, hi)
    h = rng.integers(0, 1 << HASH_BITS, count)
    keep = np.argsort(h)[:k]
    d = x - x.mean()
    return WindowStats(count, float(x.mean()), float(d @ d), float(x.min()), float(x.max()),
                       tuple(zip(h[keep].tolist(), x[keep].tolist())))


def monitor_fixture(tenants: int = 10, per_tenant: int = 100, *, seed: int = 14, window_events: int = 120,
                    degraded_every: int = 20, failing_every: int = 10) -> MonitorFixture:
    """See `_monitor_fixture` (built with the garbage collector off: its millions of small
    lists and tuples would make every collection on the way walk all of the ones before)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _monitor_fixture(tenants, per_tenant, seed=seed, window_events=window_events,
                                degraded_every=degraded_every, failing_every=failing_every)
    finally:
        if enabled:
            gc.enable()


def _monitor_fixture(tenants: int, per_tenant: int, *, seed: int, window_events: int, degraded_every: int,
                     failing_every: int) -> MonitorFixture:
    """`tenants × per_tenant` active automatic enhancements with their series.

    Enhancement j of a tenant is a canary at share 0.2 when j is odd, full (share 1.0) when
    even. Per arm and metric (`enhancement` only for a full one; both arms for a canary) its
    series holds 10 closed windows (their means), the window [T0 − 60, T0) still open (it
    closes at T0 + grace), the current window [T0, T0 + 60) 6 s in, and the pool since
    activation (T0 − 12 min), a bottom-200 sample. A full enhancement's arm gets
    `window_events` records a window; a canary's enhancement arm 20 % of that, its baseline
    80 %; a window's sample keeps up to `canary.sample_size` (200) values, as partials merge.
    Each open window holds the statistics of 4 sources (telemetry partitions), with the
    offsets they reach.

    Outcomes planted (the rest are healthy and, for canaries, pass and are promoted): every
    `degraded_every`-th full enhancement's quality falls to 0.74 in the closing window
    (critical: deactivated); every `failing_every`-th canary's enhancement arm has 11 %
    lower quality than its baseline arm (the canary judge fails it).
    """
    import numpy as np

    from resontinex.agents import enhancement as en
    from resontinex.agents.enhancement._series import EnhancementSeries, MetricSeries
    from resontinex.schemas import payload_json_schema

    cfg = en.EnhancementConfig()
    k = cfg.canary.sample_size
    now_due, now_idle = T0 + GRACE_S + 1.0, T0 + GRACE_S - 1.0
    activated = T0 - (CLOSED + 2) * WINDOW_S
    closed_starts = [T0 - (CLOSED + 1 - i) * WINDOW_S for i in range(CLOSED)]  # T0 − 660 … T0 − 120
    baseline = {m: PROFILE[m][0] for m in METRICS}
    try:
        preflight = en.preflight({"name": "x"}, payload_json_schema("prompt"), ["numpy>=2"], GOOD_THRESHOLDS,
                                 cfg.preflight).evidence()
    except Exception:  # the preflight's signature is not what is measured here
        preflight = {"schema": {"passed": True, "score": 1.0}, "requirements": {"passed": True, "score": 1.0},
                     "thresholds": {"passed": True, "score": 1.0}}
    judgement = None
    state: dict[str, Any] = {}
    series: dict[str, Any] = {}
    pools: dict[str, Any] = {}
    index: dict[str, list[str]] = {}
    kinds: Counter[str] = Counter()
    names = [f"tenant-{t:02d}" for t in range(tenants)]
    for t, tenant in enumerate(names):
        ids = index[tenant] = []
        for j in range(per_tenant):
            rng = np.random.default_rng([seed, t, j])
            eid = f"enh-{t:02d}-{j:03d}"
            ids.append(eid)
            canary = j % 2 == 1
            degraded = not canary and degraded_every and (j // 2) % degraded_every == 0
            failing = canary and failing_every and (j // 2) % failing_every == 0
            kinds["canary_failing" if failing else "canary" if canary else "full_degraded" if degraded else "full"] += 1
            arms = {"enhancement": window_events * (ENHANCEMENT_SHARE if canary else 1.0)}
            if canary:
                arms["baseline"] = window_events * (1 - ENHANCEMENT_SHARE)
            metrics_of: dict[str, dict[str, MetricSeries]] = {}
            for arm, per_window in arms.items():
                per_window = max(1, round(per_window))
                metrics_of[arm] = {}
                for metric in METRICS:
                    shift = -0.11 if failing and arm == "enhancement" and metric == "quality_score" else 0.0

                    def path(i: int, metric: str = metric, shift: float = shift) -> float:
                        if degraded and metric == "quality_score":
                            return 0.74 / 0.90 - 1.0 if i == CLOSED else -0.001 * i
                        return shift

                    mean, sd, _, _ = PROFILE[metric]
                    closed = tuple((start, float(mean * (1 + path(i)) + rng.normal(0, sd / math.sqrt(per_window))),
                                    per_window) for i, start in enumerate(closed_starts))
                    # as the agent keeps them: open windows without a sample, a pool only for a canary's judge
                    per_source = max(1, per_window // PARTITIONS)
                    open_ = {T0 - WINDOW_S: {p: _stats(rng, metric, per_source, 0, path(CLOSED))
                                             for p in range(PARTITIONS)},
                             T0: {p: _stats(rng, metric, max(1, per_source // 10), 0, path(CLOSED + 1))
                                  for p in range(PARTITIONS)}}
                    pool = _stats(rng, metric, per_window * (CLOSED + 2), k, shift) if canary else en.EMPTY
                    metrics_of[arm][metric] = MetricSeries(open_, closed, pool)
            uptos = {(arm, start, p): 1000 + 37 * p for arm in arms for start in (T0 - WINDOW_S, T0)
                     for p in range(PARTITIONS)}
            s = EnhancementSeries(activated, metrics_of, uptos)
            if canary and judgement is None:
                judgement = en.judge_canary({m: s.pooled("enhancement")[m].values for m in METRICS},
                                            {m: s.pooled("baseline")[m].values for m in METRICS},
                                            cfg.canary.metrics, cfg.canary.judge).as_dict()
            submission = {
                "event_id": f"sub-{eid}", "enhancement_id": eid, "tenant": tenant, "kind": "prompt",
                "description": f"{eid}: a shorter system prompt for the summariser",
                "payload": {"name": eid, "template": "Summarise the text below in three sentences."},
                "requirements": ["numpy>=2"], "thresholds": GOOD_THRESHOLDS, "baseline": baseline,
                "canary_share": ENHANCEMENT_SHARE if canary else 1.0, "mode": "automatic"}
            e = replace(en.Enhancement.new(eid, tenant, "prompt", "automatic", now=activated - 120.0,
                                           submission=submission),
                        state="active", phase="canary" if canary else "full",
                        share=ENHANCEMENT_SHARE if canary else 1.0, activated_at=activated, transitions=3,
                        monitored_upto=closed_starts[-1], judged_at=now_due - cfg.canary.interval_s,
                        closes_at=T0 + GRACE_S,  # the window T0 − 60 s closes then
                        judgement=judgement if canary else None, preflight=preflight)
            state[eid] = e.as_dict()
            series[eid] = s.as_dict()
            if canary:
                pools[eid] = s.pools_dict()
    raw = {"state": {i: orjson.dumps(d) for i, d in state.items()},
           "series": {i: orjson.dumps(d) for i, d in series.items()},
           "pools": {i: orjson.dumps(d) for i, d in pools.items()},
           "index": {t: orjson.dumps(ids) for t, ids in index.items()}}
    view = DictView({i: orjson.loads(b) for i, b in raw["state"].items()},
                    {i: orjson.loads(b) for i, b in raw["series"].items()},
                    {t: orjson.loads(b) for t, b in raw["index"].items()},
                    {i: orjson.loads(b) for i, b in raw["pools"].items()})
    sizes = {name: {"values": len(values), "bytes": sum(map(len, values.values())),
                    "mean_bytes": round(sum(map(len, values.values())) / max(1, len(values)))}
             for name, values in raw.items()}
    sizes["window_events"] = window_events
    return MonitorFixture(names, view, raw, now_due, now_idle, dict(kinds), sizes)


def context(now: float, judges_per_tick: int | None = None) -> Any:
    """The tick's context: the default configuration, with room for 100 active enhancements a
    tenant (the default allows 5; the tick's cost is per enhancement, not per tenant), and
    `canary.judges_per_tick` when given."""
    from resontinex.agents import enhancement as en

    cfg = replace(en.EnhancementConfig(), max_concurrent=100)
    if judges_per_tick is not None:
        cfg = replace(cfg, canary=replace(cfg.canary, judges_per_tick=judges_per_tick))
    return en.Context(cfg, PARTITIONS, "bench", now)


def effects_summary(effects: Any) -> dict[str, Any]:
    """What a tick decided: outputs, audit items, table writes per table, counts by metric and label."""
    counts: dict[str, dict[str, float]] = {}
    for c in effects.counts:
        counts.setdefault(c.metric, {})[",".join(c.labels) or "-"] = c.amount
    writes = (*effects.early_writes, *effects.late_writes)
    return {"outputs": len(effects.outputs), "audit": len(effects.audit), "writes_total": len(writes),
            "writes": dict(Counter(w.table for w in writes)), "counts": counts}


def _best(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """`fn`'s times over `repeats` runs, each from a collected heap with the previous run's
    result dropped (a worker drops a tick's effects once applied, ticks 30 s apart), and
    the last run's result."""
    times, result = [], None
    for _ in range(repeats):
        result = None
        gc.collect()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def _timing(times: Sequence[float]) -> dict[str, Any]:
    return {"best_s": round(min(times), 4), "median_s": round(statistics.median(times), 4),
            "runs_s": [round(t, 4) for t in times]}


PROFILED = (
    # label, file, function: cumulative time of that function in a profiled tick
    ("read state (Enhancement.from_dict)", "_lifecycle.py", "from_dict"),
    ("read series (EnhancementSeries.from_dict)", "_series.py", "from_dict"),
    ("close windows (EnhancementSeries.close)", "_series.py", "close"),
    ("monitor rules (assess)", "_monitor.py", "assess"),
    ("canary judge (judge_canary)", "_canary.py", "judge_canary"),
    ("  of which Mann-Whitney U (scipy)", "_mannwhitneyu.py", "mannwhitneyu"),
    ("  of which medians (np.median, incl. the 100 × 100 Hodges-Lehmann shifts)", "_function_base_impl.py", "median"),
    ("transitions (move, events, alerts, audit items)", "_plan.py", "emit"),
    ("write-back values (_Plan.effects: as_dict)", "_plan.py", "effects"),
)


def profile_breakdown(fn: Callable[[], Any]) -> dict[str, Any]:
    """Where one call of `fn` spends its time, by cProfile's cumulative times of the
    functions in `PROFILED` (the profiler slows pure Python more than numpy: shares, not seconds)."""
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    st = pstats.Stats(prof)
    total = 0.0
    found: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if name == "plan_tick" and filename.endswith("_plan.py"):
            total = max(total, ct)
        for label, file, func in PROFILED:
            if name == func and filename.endswith(file):
                found[label] = max(found.get(label, 0.0), ct)  # the outermost of same-named functions
    return {"profiled_total_s": round(total, 4),
            "shares": {label: round(found.get(label, 0.0) / total, 3) if total else None for label, *_ in PROFILED}}


def components(fixture: MonitorFixture, repeats: int = 3) -> dict[str, Any]:
    """The tick's parts timed on their own over the whole fixture (best of `repeats`), as
    `plan_tick` does them when everything is due: read every record and series (from the
    JSON-shaped dicts), close the window, the monitor's rules on the enhancement arm's
    means, the canary judge on every canary's pools, and the write-back values (`as_dict`
    of every record and series). Their sum leaves out the transitions and the bookkeeping."""
    from resontinex.agents import enhancement as en

    cfg = context(fixture.now_due).cfg
    ids = [i for t in fixture.tenants for i in fixture.view.tenant_enhancements(t)]
    view = fixture.view

    def read() -> list[tuple[Any, Any]]:
        return [(view.enhancement(i), view.series(i)) for i in ids]

    pairs = read()
    keep = max(cfg.monitor.stability.window, cfg.monitor.quality.window)

    def close() -> list[Any]:
        return [s.close(fixture.now_due, cfg.telemetry.window_s, cfg.telemetry.grace_s, keep)[0] for _, s in pairs]

    closed = close()
    canaries = [(e, s) for (e, _), s in zip(pairs, closed) if e.phase == "canary"]

    def assess() -> list[Any]:
        return [en.assess(s.means("enhancement"), e.submission.get("baseline"), cfg.monitor)
                for (e, _), s in zip(pairs, closed)]

    def judge() -> list[Any]:
        return [en.judge_canary({m: p.values for m, p in s.pooled("enhancement").items()},
                                {m: p.values for m, p in s.pooled("baseline").items()},
                                cfg.canary.metrics, cfg.canary.judge) for _, s in canaries]

    def write_back() -> int:
        return len([e.as_dict() for e, _ in pairs]) + len([s.as_dict() for s in closed])

    out: dict[str, Any] = {}
    for name, fn in (("read_s", read), ("close_s", close), ("assess_s", assess), ("judge_s", judge),
                     ("write_back_s", write_back)):
        times, _ = _best(fn, repeats)
        out[name] = round(min(times), 4)
    out["sum_s"] = round(sum(out.values()), 4)
    out["canaries"] = len(canaries)
    out["judge_ms_per_canary"] = round(1000 * out["judge_s"] / len(canaries), 3) if canaries else None
    return out


def bench_monitor(fixture: MonitorFixture, repeats: int = 5, *, profile: bool = True,
                  component_repeats: int = 3) -> dict[str, Any]:
    """Time `plan_tick` over the fixture when everything is due and when nothing is, and the
    orjson decode (state + series) and encode (the tick's writes) around it.

    The fixture is moved out of the garbage collector's reach first (`gc.freeze`): a worker
    keeps these values in RocksDB, not on its heap, so its collections do not walk them;
    here they would make every full collection walk ~10 million objects.
    """
    gc.collect()
    gc.freeze()
    try:
        return _bench_monitor(fixture, repeats, profile=profile, component_repeats=component_repeats)
    finally:
        gc.unfreeze()


def _bench_monitor(fixture: MonitorFixture, repeats: int, *, profile: bool, component_repeats: int) -> dict[str, Any]:
    from resontinex.agents import enhancement as en

    due, idle = context(fixture.now_due), context(fixture.now_idle)

    def tick(ctx: Any) -> Callable[[], Any]:
        return lambda: en.plan_tick(fixture.tenants, fixture.view, ctx)

    (first_s,), first = _best(tick(due), 1)  # reported apart: the first run warms caches (and imports scipy)
    first_summary = effects_summary(first)
    del first
    due_times, effects = _best(tick(due), repeats)
    summary = effects_summary(effects)
    writes = [w.value for w in (*effects.early_writes, *effects.late_writes)]
    del effects
    encode_times, encoded = _best(lambda: sum(len(orjson.dumps(v)) for v in writes), repeats)
    del writes
    idle_times, idle_effects = _best(tick(idle), repeats)
    gc.disable()  # not what a worker does: how much of the tick is the collector walking the tick's own objects
    try:
        gc_off_times, _ = _best(tick(due), min(repeats, component_repeats))
    finally:
        gc.enable()
    enhancements = sum(len(v) for v in fixture.view.index.values())
    every_judge = context(fixture.now_due, judges_per_tick=enhancements)  # no bound: every judge due in this tick
    all_times, all_effects = _best(tick(every_judge), repeats)
    all_summary = effects_summary(all_effects)
    del all_effects
    judged = JudgedView(fixture.view, fixture.now_due)
    close_times, close_effects = _best(lambda: en.plan_tick(fixture.tenants, judged, due), repeats)
    close_summary = effects_summary(close_effects)
    del close_effects

    def decode() -> int:
        n = 0
        for tenant in fixture.tenants:
            for i in orjson.loads(fixture.raw["index"][tenant]):
                n += len(orjson.loads(fixture.raw["state"][i])) + len(orjson.loads(fixture.raw["series"][i]))
        return n

    decode_times, _ = _best(decode, repeats)
    tick_s, idle_s, decode_s = min(due_times), min(idle_times), min(decode_times)
    out = {
        "enhancements": enhancements, "tenants": len(fixture.tenants), "repeats": repeats,
        "judges_per_tick": due.cfg.canary.judges_per_tick,
        "kinds": fixture.kinds, "sizes": fixture.sizes,
        "now_due": fixture.now_due, "now_idle": fixture.now_idle,
        "tick": {**_timing(due_times), "first_s": round(first_s, 4),
                 "per_enhancement_ms": round(1000 * tick_s / enhancements, 3), "effects": summary},
        "idle_tick": {**_timing(idle_times), "effects": effects_summary(idle_effects)},
        "every_judge_tick": {**_timing(all_times), "effects": all_summary},
        "close_only_tick": {**_timing(close_times), "effects": close_summary},
        "tick_gc_off": _timing(gc_off_times),
        "decode": {**_timing(decode_times), "values": 2 * enhancements + len(fixture.tenants),
                   "bytes": fixture.sizes["state"]["bytes"] + fixture.sizes["series"]["bytes"]},
        "encode_writes": {**_timing(encode_times), "values": summary["writes_total"], "bytes": encoded},
        "tick_plus_decode_s": round(tick_s + decode_s, 4),
        "tick_plus_io_s": round(tick_s + decode_s + min(encode_times), 4),
        "same_effects_every_run": first_summary == summary,
        "gc": "fixture frozen (gc.freeze); each run starts from a collected heap, the previous run's effects dropped",
    }
    out["components"] = components(fixture, component_repeats)
    if profile:
        out["breakdown"] = profile_breakdown(tick(due))
    return out


# --------------------------------------------------------------------------- the report


def _rate(fold: Mapping[str, Any], name: str, steady: bool = False) -> float | None:
    v = fold.get(name) or {}
    return (v.get("steady") or {}).get("per_s") if steady else v.get("per_s")


def assemble(meta: dict[str, Any], fold: dict[str, Any], monitor: dict[str, Any]) -> dict[str, Any]:
    """The report: every figure, each ratio against its same-run baseline, the targets."""
    a, b = _rate(fold, "project"), _rate(fold, "naive")
    tick = (monitor.get("tick") or {}).get("best_s")
    idle = (monitor.get("idle_tick") or {}).get("best_s")
    decode = (monitor.get("decode") or {}).get("best_s")
    with_io = monitor.get("tick_plus_decode_s")
    verified = all((fold.get(k) or {}).get("verified") for k in ("project", "naive")) if fold else None
    ratios = {
        "fold_project_vs_naive": ratio(a, b),
        "fold_project_vs_naive_steady": ratio(_rate(fold, "project", True), _rate(fold, "naive", True)),
        "monitor_tick_vs_budget_1s": ratio(tick, MONITOR_BUDGET_S),
        "monitor_tick_vs_idle_tick": ratio(tick, idle),
        "monitor_decode_vs_tick": ratio(decode, tick),
        "monitor_tick_plus_decode_vs_budget_1s": ratio(with_io, MONITOR_BUDGET_S),
    }

    def met(r: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if r is None else ok(r)

    targets = {
        "fold_ge_3x_naive": met(ratios["fold_project_vs_naive"], lambda r: r >= FOLD_TARGET),
        "fold_every_record_folded_both": verified,
        "monitor_tick_lt_1s": met(tick, lambda s: s < MONITOR_BUDGET_S),
        "monitor_tick_plus_decode_lt_1s": met(with_io, lambda s: s < MONITOR_BUDGET_S),
    }
    return {"schema": SCHEMA, "meta": meta, "fold": fold, "monitor": monitor, "ratios": ratios, "targets": targets}


def table(report: dict[str, Any]) -> str:
    """A short human table of the report."""
    f, m, r, t = report["fold"], report["monitor"], report["ratios"], report["targets"]

    def mark(key: str) -> str:
        return {True: "met", False: "NOT met", None: "—"}[t.get(key)]

    rows = [("figure", "value", "note")]
    titles = {"project": "fold: telemetry agent (app.cli worker)", "naive": "fold: naive per-event Faust agent"}
    for name in ("project", "naive") if f else ():
        x = f.get(name) or {}
        if "error" in x:
            rows.append((titles[name], "—", f"FAILED: {x['error'][:70]}"))
            continue
        if name == "naive":
            note = f"baseline; {x.get('partials', '—'):,} partials sent" if isinstance(x.get("partials"), int) else "baseline"
        else:
            note = (f"{_fmt(r['fold_project_vs_naive'], '× naive', 2)} (steady "
                    f"{_fmt(r['fold_project_vs_naive_steady'], '×', 2)}); target ≥ 3 ({mark('fold_ge_3x_naive')})")
        folded = "all folded" if x.get("verified") else "NOT all folded"
        rows.append((titles[name], _fmt(x.get("per_s"), " /s"),
                     f"{note}; {folded}, {_fmt(x.get('elapsed_s'), ' s', 2)}"))
    if m and "error" not in m:
        tick, idle = m["tick"], m["idle_tick"]
        rows += [
            (f"monitor: plan_tick, {m['enhancements']:,} due", _fmt(tick["best_s"], " s", 3),
             f"{_fmt(r['monitor_tick_vs_budget_1s'], '× 1 s', 2)} ({mark('monitor_tick_lt_1s')}); "
             f"{_fmt(r['monitor_tick_vs_idle_tick'], '× idle', 1)}; first run {tick['first_s']:.3f} s"),
            ("monitor: plan_tick, every judge due in it", _fmt(m["every_judge_tick"]["best_s"], " s", 3),
             f"{_fmt(ratio(m['every_judge_tick']['best_s'], MONITOR_BUDGET_S), '× 1 s', 2)}: without "
             f"canary.judges_per_tick ({m['judges_per_tick']} a tick)"),
            ("monitor: plan_tick, windows closed, no judge due", _fmt(m["close_only_tick"]["best_s"], " s", 3),
             _fmt(ratio(m["close_only_tick"]["best_s"], MONITOR_BUDGET_S), "× 1 s", 2)),
            ("monitor: plan_tick, nothing due (looking only)", _fmt(idle["best_s"], " s", 3), "baseline"),
            ("monitor: plan_tick, 1,000 due, collector off", _fmt((m.get("tick_gc_off") or {}).get("best_s"), " s", 3),
             "not a worker setting: the rest of the tick is the collector walking its own new objects"),
            ("monitor: orjson decode of state + series", _fmt(m["decode"]["best_s"], " s", 3),
             f"{m['decode']['bytes'] / 1e6:.1f} MB; {_fmt(r['monitor_decode_vs_tick'], '× tick', 2)}"),
            ("monitor: orjson encode of the tick's writes", _fmt(m["encode_writes"]["best_s"], " s", 3),
             f"{m['encode_writes']['values']:,} values, {m['encode_writes']['bytes'] / 1e6:.1f} MB"),
            ("monitor: tick + decode", _fmt(m["tick_plus_decode_s"], " s", 3),
             f"{_fmt(r['monitor_tick_plus_decode_vs_budget_1s'], '× 1 s', 2)} ({mark('monitor_tick_plus_decode_lt_1s')})"),
        ]
        if light := m.get("light"):
            rows.append((f"monitor: plan_tick, {light['window_events']} records a window", _fmt(light["tick_best_s"], " s", 3),
                         f"{_fmt(ratio(light['tick_best_s'], MONITOR_BUDGET_S), '× 1 s', 2)}; series "
                         f"{light['series_mean_bytes']:,} bytes each (vs {m['sizes']['series']['mean_bytes']:,}); "
                         f"no judge {light['close_only_best_s']:.3f} s, idle {light['idle_best_s']:.3f} s"))
        if c := m.get("components"):
            rows.append(("monitor: the tick's parts, timed alone", _fmt(c["sum_s"], " s", 3),
                         f"judge {c['judge_s']:.3f} s ({c['judge_ms_per_canary']} ms a canary), write-back "
                         f"{c['write_back_s']:.3f} s, read {c['read_s']:.3f} s, close + rules "
                         f"{c['close_s'] + c['assess_s']:.3f} s"))
    elif m:
        rows.append(("monitor", "—", f"FAILED: {m['error'][:70]}"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c}" for a, b, c in rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller load (N=5,000; monitor best of 3) for a fast check")
    ap.add_argument("-n", type=int, help="telemetry records per fold variant (default 40,000; quick 5,000)")
    ap.add_argument("--only", default=",".join(PHASES), help="comma-separated phases (default: fold,monitor)")
    ap.add_argument("--enhancements", type=int, default=1000, help="active enhancements in the monitor phase (default 1,000)")
    ap.add_argument("--repeats", type=int, help="monitor timings: best of this many (default 5; quick 3)")
    ap.add_argument("--out", type=Path, help="the JSON result (default bench/results/telemetry-<timestamp>.json)")
    args = ap.parse_args(argv)
    args.n = args.n or (5_000 if args.quick else 40_000)
    args.repeats = (3 if args.quick else 5) if args.repeats is None else args.repeats
    if args.n < 100:
        ap.error("-n must be at least 100")
    if args.enhancements < 10 or args.enhancements % 10:
        ap.error("--enhancements must be a positive multiple of 10 (10 tenants)")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    if unknown := set(args.only) - set(PHASES):
        ap.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    args.out = args.out or RESULTS / f"telemetry-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    return args


def meta(args: argparse.Namespace) -> dict[str, Any]:
    return {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "timestamp": time.time(),
            "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(), "git_commit": checkout_commit(),
            "code_sha256": code_sha256(CODE_MEASURED), "code_hashed": list(CODE_MEASURED),
            "quick": args.quick, "phases": args.only, "n": args.n, "sources": SOURCES, "metrics": list(METRICS),
            "enhancement_ids": ENHANCEMENTS, "enhancement_share": ENHANCEMENT_SHARE, "partitions": PARTITIONS,
            "monitor_enhancements": args.enhancements, "monitor_repeats": args.repeats}


CODE_MEASURED = ("agents/enhancement", "agents/effects.py", "app/wiring/enhancements.py", "app/wiring/hot.py",
                 "app/engine/applier.py", "app/engine/record_source.py", "schemas")


def _mark_finished(info: dict[str, Any]) -> None:
    info["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- measurement: fold


def _get(port: int, path: str, timeout: float = 5.0) -> bytes | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.read()
    except OSError:  # not listening yet, or an HTTP error
        return None


def drain(n: int, count: Callable[[], int | None], *, spawned: float, watch: Any, alive: Callable[[], str | None],
          timeout_s: float, label: str) -> dict[str, Any]:
    """Poll the folded count until it reaches `n`; the figures (see the module's docstring)."""
    from .budget import poll_interval, throughput
    from .run import _check_alive, cpu_use

    warmup = max(1, n // 10)
    first = warm = None
    cpu0: dict[str, Any] | None = None
    polls, last_log = 0, time.monotonic()
    while True:
        _check_alive(alive)
        got = count()
        now = time.monotonic()
        polls += 1
        if got:
            if first is None:
                first, cpu0 = (now, got), watch.snapshot()
                log(f"{label}: first records folded ({got:,}) {now - spawned:.2f}s after start")
            if warm is None and got >= warmup:
                warm = (now, got)
            if got >= n:
                break
        if now - spawned > timeout_s:
            raise TimeoutError(f"{label}: {got or 0:,}/{n:,} records folded after {timeout_s:.0f}s")
        if now - last_log >= 2.0:
            log(f"{label}: {got or 0:,}/{n:,} records folded")
            last_log = now
        time.sleep(poll_interval(n, first, (now, got or 0)))
    cpu1 = watch.snapshot()
    result = throughput(n, spawned, first, warm, now)
    cores = cpu_use(cpu0 or cpu1, cpu1, now - first[0]) if first else {}
    result.update(polls=polls, warmup=warmup, final_count=got, cpu_cores=cores)
    busy = next((v for k, v in cores.items() if k not in ("broker", "bench")), None)
    result["cpu_us_per_record"] = round(busy * 1e6 / result["per_s"], 1) if busy and result["per_s"] else None
    log(f"{label}: {_fmt(result['per_s'], ' records/s')} ({result['events']:,} in {result['elapsed_s']:.2f}s; "
        f"steady {_fmt(result['steady']['per_s'], '/s')})")
    return result


def _read_feed(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    from tests.integration.harness import read_all

    return [v for *_, v in asyncio.run(read_all(bootstrap, topic, settle_s=1.5, timeout_s=60))]


def run_fold_variant(kind: str, items: Sequence[tuple[bytes, bytes]], expected: dict[str, Any],
                     timeout_s: float) -> dict[str, Any]:
    """One variant on a fresh broker and data directory: preload, start, drain, verify, stop."""
    from resontinex.app.broker import free_port
    from resontinex.app.settings import Settings
    from tests.integration.harness import start_worker

    from .run import Procs, _gone, _session, _spawn, preload

    label = {"project": "project worker", "naive": "naive agent"}[kind]
    s = Settings.from_env()
    topic, feed = s.topic("telemetry"), s.topic("enhancement_feed")
    n = len(items)
    with _session(f"telemetry-{kind}") as (broker, tmp, procs):
        log(f"{label}: preloading {n:,} telemetry records")
        asyncio.run(preload(broker.bootstrap, items, topic=topic))
        if kind == "project":
            spawned = time.monotonic()
            worker = start_worker(broker.bootstrap, tmp / "w0")
            procs.append(worker.proc)
            proc, log_path, port = worker.proc, worker.log_path, worker.web_port

            def count() -> int | None:
                body = _get(port, "/metrics")
                value = None if body is None else folded_total(body.decode())
                return None if value is None else int(value)
        else:
            port = free_port()
            log_path = tmp / "naive.log"
            spawned = time.monotonic()
            proc = _spawn(["-m", "bench.naive_telemetry_app", broker.bootstrap, str(tmp), str(port)], log_path)
            procs.append(proc)

            def count() -> int | None:
                body = _get(port, "/bench/count")
                return None if body is None else json.loads(body)["events"]
        log(f"{label}: started pid {proc.pid}, web port {port}")
        result = drain(n, count, spawned=spawned, watch=Procs({"broker": broker.pid, kind: proc.pid}),
                       alive=_gone([(proc, log_path)]), timeout_s=timeout_s, label=label)
        # --- not timed: did it fold every record, and send the partials?
        bad: list[str] = []
        if kind == "project":
            text = (_get(port, "/metrics") or b"").decode()
            result["batches"] = batch_metrics(text)
            got: dict[str, Any] = {}
            for source in expected["sources"]:
                body = _get(port, f"/telemetry/{source}?local=1&windows=30")
                got[source] = window_counts(json.loads(body)["windows"]) if body else None
            bad += count_mismatches(expected["sources"], {k: v for k, v in got.items() if v is not None}, "source")
        else:
            body = _get(port, "/bench/sums")
            sums = json.loads(body) if body else {"sources": {}, "arms": {}}
            bad += count_mismatches(expected["sources"], sums.get("sources", {}), "source")
            bad += count_mismatches(expected["arms"], sums.get("arms", {}), "arm")
        fed = feed_counts(_read_feed(broker.bootstrap, feed))
        bad += count_mismatches(expected["arms"], fed["arms"], "partials of")
        result.update(partials=fed["partials"], partials_per_enhancement_record=round(
            fed["partials"] / expected["with_enhancement"], 4) if expected["with_enhancement"] else None,
            verified=result["final_count"] == n and not bad, mismatches=bad[:20])
        log(f"{label}: {'every record folded' if result['verified'] else 'NOT every record folded: ' + '; '.join(bad[:4])}"
            f"; {fed['partials']:,} partials on {feed}")
    return result


# --------------------------------------------------------------------------- main


def run_monitor(enhancements: int, repeats: int, quick: bool = False) -> dict[str, Any]:
    started = t = time.perf_counter()
    fixture = monitor_fixture(10, enhancements // 10)
    build_s = time.perf_counter() - t
    log(f"monitor: fixture of {enhancements:,} active enhancements built in {build_s:.1f}s "
        f"({fixture.kinds}; series {fixture.sizes['series']['mean_bytes']:,} bytes each)")
    out = bench_monitor(fixture, repeats, component_repeats=1 if quick else 3)
    out["fixture_build_s"] = round(build_s, 2)
    log(f"monitor: plan_tick {out['tick']['best_s']:.3f}s (windows closed, no judge "
        f"{out['close_only_tick']['best_s']:.3f}s; idle {out['idle_tick']['best_s']:.3f}s), "
        f"decode {out['decode']['best_s']:.3f}s, encode {out['encode_writes']['best_s']:.3f}s")
    del fixture
    if not quick:  # how much the figure owes to the fixture's telemetry rate
        light = monitor_fixture(10, enhancements // 10, window_events=LIGHT_WINDOW_EVENTS)
        got = bench_monitor(light, 3, profile=False, component_repeats=1)
        out["light"] = {"window_events": LIGHT_WINDOW_EVENTS, "series_mean_bytes": light.sizes["series"]["mean_bytes"],
                        "tick_best_s": got["tick"]["best_s"], "close_only_best_s": got["close_only_tick"]["best_s"],
                        "idle_best_s": got["idle_tick"]["best_s"], "decode_best_s": got["decode"]["best_s"],
                        "components": got["components"]}
        log(f"monitor, {LIGHT_WINDOW_EVENTS} records a window: plan_tick {got['tick']['best_s']:.3f}s "
            f"(series {light.sizes['series']['mean_bytes']:,} bytes each)")
    out["phase_s"] = round(time.perf_counter() - started, 1)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = meta(args)
    fold: dict[str, Any] = {}
    monitor: dict[str, Any] = {}
    ok = True
    if "fold" in args.only:
        items = telemetry(args.n, now=info["timestamp"])
        expected = expected_counts(items)
        from .run import _partition_counts

        info.update(with_enhancement=expected["with_enhancement"], partition_load=_partition_counts(items),
                    fold_timeout_s=90 + args.n / 250)
        log(f"fold: N={args.n:,} ({expected['with_enhancement']:,} of an enhancement), partitions "
            f"{info['partition_load']}; result → {args.out}")
        for kind in ("project", "naive"):
            try:
                fold[kind] = run_fold_variant(kind, items, expected, info["fold_timeout_s"])
            except Exception as exc:  # one broken variant must not lose the other's figures
                log(f"{kind}: FAILED: {type(exc).__name__}: {exc}")
                fold[kind] = {"error": f"{type(exc).__name__}: {exc}"[:4000]}
                ok = False
    if "monitor" in args.only:
        try:
            monitor = run_monitor(args.enhancements, args.repeats, args.quick)
        except Exception as exc:
            log(f"monitor: FAILED: {type(exc).__name__}: {exc}")
            monitor = {"error": f"{type(exc).__name__}: {exc}"[:4000]}
            ok = False
    _mark_finished(info)
    report = assemble(info, fold, monitor)
    publish(report, args.out, table(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
