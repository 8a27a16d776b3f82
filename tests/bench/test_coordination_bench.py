"""The coordination bench (issue 13): its pure helpers, and the report of a real `--quick`
run (embedded broker, a core worker, the Messages-API stand-in). The targets are reported
by `python -m bench.coordination`, never asserted here: only that the run was whole."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import bench.coordination as bc
from bench.coordination import (AGENTS, REPORT_KEYS, assemble, calls_per_run, call_metrics, parse_args, plan_bounds,
                                rate_bound_s, table)

from .quick import run_quick

QUICK_DEADLINE_S = 150


def test_module_doctests():
    assert doctest.testmod(bc).failed == 0


def test_the_default_configuration_is_bound_by_the_rate_limit():
    args = parse_args([])
    assert (args.n, args.k, args.latency_ms, args.rpm, args.burst, args.concurrent_runs) == (100, 10, 200.0, 3000.0, 10, 8)
    b = plan_bounds(args.n, rpm=args.rpm, burst=args.burst, concurrent_runs=args.concurrent_runs,
                    latency_ms=args.latency_ms)
    assert b["binding"] == "rate_limit" and b["rate_bound_s"] > b["concurrency_bound_s"]
    assert b["rate_bound_s"] < 60  # a full run stays well under a minute of load
    assert b["concurrency_calls_per_s"] > b["rate_limit_calls_per_s"]
    quick = parse_args(["--quick", "--out", "/tmp/x.json"])
    assert (quick.n, quick.k, quick.latency_ms, quick.out) == (10, 2, 50.0, Path("/tmp/x.json"))
    assert parse_args(["--quick", "-k", "0"]).k == 0
    assert args.out.name.startswith("coordination-") and args.out.suffix == ".json"
    for bad in (["-n", "0"], ["--rpm", "0"], ["--burst", "0"], ["--concurrent-runs", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_bounds_and_calls():
    assert calls_per_run(AGENTS) == 11 and calls_per_run(AGENTS, cached=True) == 5
    assert rate_bound_s(1100, 10, 3000) == 21.8
    assert plan_bounds(100, rpm=60_000, burst=10, concurrent_runs=8, latency_ms=200)["binding"] == "concurrency"


def test_call_metrics_are_differences_of_two_scrapes():
    before = ('resontinex_coordination_call_seconds_sum{model="m"} 1.0\n'
              'resontinex_coordination_call_seconds_count{model="m"} 4.0\n'
              'resontinex_coordination_calls_total{model="m",outcome="ok"} 4.0\n')
    after = ('resontinex_coordination_call_seconds_sum{model="m"} 4.0\n'
             'resontinex_coordination_call_seconds_count{model="m"} 14.0\n'
             'resontinex_coordination_calls_total{model="m",outcome="ok"} 13.0\n'
             'resontinex_coordination_calls_total{model="m",outcome="rate_limited"} 1.0\n'
             'resontinex_coordination_baseline_cache_total{result="hit"} 2.0\n')
    got = call_metrics(before, after)
    assert (got["calls_ok"], got["calls_all_outcomes"], got["call_seconds_mean"]) == (9.0, 10.0, 0.3)
    assert (got["retries"], got["baseline_cache_hits"], got["baseline_cache_misses"]) == (0.0, 2.0, None)


def test_report_of_a_failed_phase_keeps_its_reason():
    args = parse_args(["--quick"])
    config = {"n": args.n, "k": args.k, "burst": args.burst, "rpm": args.rpm, "latency_ms": args.latency_ms,
              "concurrent_runs": args.concurrent_runs}
    bounds = plan_bounds(args.n, rpm=args.rpm, burst=args.burst, concurrent_runs=args.concurrent_runs,
                         latency_ms=args.latency_ms)
    report = assemble({}, config, bounds, {"throughput": {"error": "ProcessGone: worker exited"}})
    assert tuple(report) == REPORT_KEYS and report["ratios"]["elapsed_vs_rate_bound"] is None
    assert set(report["targets"].values()) == {None}
    assert "FAILED" in table(report) and json.loads(json.dumps(report)) == report


@pytest.mark.integration
def test_quick_run_writes_a_whole_report(tmp_path):
    out = tmp_path / "coordination.json"
    done = run_quick("bench.coordination", out, QUICK_DEADLINE_S)
    assert "elapsed ÷ rate-limit bound" in done.stdout
    report = json.loads(out.read_text())
    assert tuple(report) == REPORT_KEYS
    m, c, b, p, r, t = (report[k] for k in ("meta", "config", "bounds", "phases", "ratios", "targets"))
    assert m["quick"] and m["cpus"] >= 1 and m["platform"] and m["started_at"] and m["finished_at"]
    assert (c["n"], c["k"], c["agents"], c["latency_ms"], c["concurrent_runs"]) == (10, 2, 3, 50.0, 8)
    assert "requests_per_minute" in c["coordination_yaml"] and b["binding"] == "rate_limit"

    tp = p["throughput"]
    assert "error" not in tp, tp
    assert tp["results_ok"] == 10 and tp["baseline_cached"] == 0 and tp["duplicate_results"] == 0
    assert tp["calls_standin"] == tp["calls_results"] == 10 * calls_per_run(AGENTS)  # no retries, no cache hit
    assert tp["standin_statuses"] == {"200": tp["calls_standin"]}
    assert tp["elapsed_s"] > 0 and tp["rate_bound_s"] > 0 and tp["steady_calls_per_s"] > 0
    assert isinstance(r["elapsed_vs_rate_bound"], float) and r["elapsed_vs_rate_bound"] > 0
    assert r["elapsed_vs_rate_bound"] == pytest.approx(tp["elapsed_s"] / tp["rate_bound_s"], abs=1e-3)

    cache = p["cache"]
    assert "error" not in cache, cache
    assert cache["k"] == 2 and cache["firsts_cached"] == 0 and len(cache["pairs"]) == 2
    for pair in cache["pairs"]:
        assert pair["first"]["calls"] == pair["first"]["calls_standin"] > 0
        assert pair["repeat"]["calls"] == pair["repeat"]["calls_standin"] > 0
    for key in ("cut_whole_run", "cut_baselines"):
        assert 0.0 <= cache[key] <= 1.0 and r[f"cache_{key}"] == cache[key]
    assert set(t) == {"elapsed_le_1_5x_rate_bound", "cache_cut_whole_run_ge_80pct", "cache_cut_baselines_ge_80pct"}
    assert all(isinstance(v, bool) for v in t.values())  # reported, not asserted
    assert "5 calls" in report["notes"]["cache"]
