"""The telemetry bench's pure helpers (issue 14): the load, the checks, parsing, the naive app's
update and partials, the monitor fixture, a tiny run of the (pure) monitor phase and the
report's shape. No broker, no timing assertions (performance is measured by
`python -m bench.telemetry`, never asserted in unit tests)."""

from __future__ import annotations

import doctest
import json
import math
import statistics
from collections import Counter
from pathlib import Path

import orjson
import pytest

import bench.naive_telemetry_app as naive
import bench.telemetry as bt
from bench.run import partition_of
from bench.telemetry import (METRICS, PHASES, REPORT_KEYS, SOURCES, assemble, batch_metrics, bench_monitor,
                             count_mismatches, expected_counts, feed_counts, folded_total, monitor_fixture,
                             parse_args, table, telemetry, window_counts)
from resontinex.agents.enhancement import WindowStats, window_start
from resontinex.schemas import Telemetry, decode, ts_to_ms

NOW = 1_767_225_630.123  # 2026-01-01T00:00:30.123Z


def test_module_doctests():
    assert doctest.testmod(bt).failed == 0
    assert doctest.testmod(naive).failed == 0


def test_load_is_deterministic_and_valid():
    items = telemetry(1000, now=NOW)
    assert telemetry(7, now=NOW) == items[:7]  # record i is the same whichever call makes it
    assert telemetry(1000, now=NOW) == items
    assert telemetry(10, now=NOW + 1) != items[:10]
    bodies = [decode(Telemetry, v) for _, v in items]
    assert all(b.source == k.decode() for (k, _), b in zip(items, bodies))
    assert len({b.event_id for b in bodies}) == 1000
    assert {ts_to_ms(b.ts) for b in bodies} == {round(NOW * 1000)}
    assert all(set(b.metrics) == set(METRICS) and all(math.isfinite(x) for x in b.metrics.values()) for b in bodies)
    assert 0 <= min(b.metrics["quality_score"] for b in bodies) and max(b.metrics["error_rate"] for b in bodies) <= 1
    assert len({b.source for b in bodies}) == SOURCES
    assert sorted(Counter(partition_of(k) for k, _ in items).values()) == [240, 240, 260, 260]  # 12/12/13/13 sources
    arms = [(b.enhancement_id, b.arm) for b in bodies if b.enhancement_id is not None]
    assert 0.15 <= len(arms) / len(bodies) <= 0.25
    assert len({e for e, _ in arms}) == 10 and {a for _, a in arms} == {"enhancement", "baseline"}
    assert all(b.arm is None for b in bodies if b.enhancement_id is None)


def test_expected_counts_of_the_load():
    items = telemetry(500, now=NOW)
    got = expected_counts(items)
    assert got["records"] == 500 and sum(got["sources"].values()) == 500
    assert set(got["sources"].values()) == {10}
    assert sum(got["arms"].values()) == got["with_enhancement"] == sum(b"enhancement_id" in v for _, v in items)
    assert all(k.rpartition("/")[2] in ("enhancement", "baseline") for k in got["arms"])


def test_metrics_parsing():
    text = ("# HELP resontinex_telemetry_folded_total Telemetry records folded into their windows\n"
            "# TYPE resontinex_telemetry_folded_total counter\n"
            "resontinex_telemetry_folded_total 40000.0\n"
            "resontinex_telemetry_folded_created 1.7e9\n"
            'resontinex_batch_size_count{agent="telemetry"} 12.0\n'
            'resontinex_batch_size_sum{agent="telemetry"} 40000.0\n'
            'resontinex_batch_size_count{agent="gate"} 3.0\n'
            'resontinex_batch_seconds_sum{agent="telemetry"} 1.23456\n')
    assert folded_total(text) == 40000.0 and folded_total("") is None
    assert batch_metrics(text) == {"batches": 12, "events": 40000, "mean_size": 3333.3, "handler_s": 1.235,
                                   "per_handler_s": 32400.2}
    assert batch_metrics("")["batches"] is None


def test_checks_of_windows_and_partials():
    windows = [{"start": 0, "metrics": {m: {"count": 3} for m in METRICS}},
               {"start": 60, "metrics": {m: {"count": 2} for m in METRICS}}]
    assert window_counts(windows) == {m: 5 for m in METRICS}
    assert count_mismatches({"s": 5}, {"s": window_counts(windows)}, "source") == []
    assert count_mismatches({"s": 6}, {"s": window_counts(windows)}, "source")[0] == "source s: quality_score 5 != 6"
    where = {"type": "telemetry", "enhancement_id": "enh-1", "arm": "baseline", "window_start": 0.0}
    feed = [{**where, "source": 0, "metrics": {"q": {"n": 1}}},
            {**where, "source": 0, "metrics": {"q": {"n": 2}, "r": {"n": 2}}},  # source 0's window so far
            {**where, "source": 1, "metrics": {"q": {"n": 1}}},
            {"type": "submission", "event_id": "x"}]
    assert feed_counts(feed) == {"partials": 3, "arms": {"enh-1/baseline": 3}}
    assert count_mismatches({"enh-1/baseline": 3}, feed_counts(feed)["arms"], "partials of") == []
    assert count_mismatches({"enh-1/baseline": 3, "enh-2/baseline": 1}, {"enh-1/baseline": 3}, "partials of") == [
        "partials of enh-2/baseline: missing"]


def test_naive_update_is_welford():
    xs = [0.91, 0.85, 0.97, 0.88, 0.9]
    value = None
    for x in xs:
        value = naive.updated(value, {"q": x})
    st = value["q"]
    assert st["n"] == 5 and st["min"] == min(xs) and st["max"] == max(xs)
    assert math.isclose(st["mean"], statistics.fmean(xs))
    assert math.isclose(st["m2"] / (st["n"] - 1), statistics.variance(xs))


def test_naive_partial_is_the_projects_format():
    key, value = telemetry(200, now=NOW)[next(i for i, (_, v) in enumerate(telemetry(200, now=NOW))
                                              if b"enhancement_id" in v)]
    event = decode(Telemetry, value)
    enhancement_id, raw = naive.partial(event, 2, 17, NOW, naive.updated(None, event.metrics))
    p = orjson.loads(raw)
    assert enhancement_id == event.enhancement_id
    assert p["type"] == "telemetry" and p["arm"] == event.arm and p["window_start"] == window_start(NOW, 60.0)
    assert (p["source"], p["upto"]) == (2, 17 + 1)
    for name, x in event.metrics.items():
        st = WindowStats.from_dict(p["metrics"][name])  # what the project's feed merges
        assert (st.count, st.mean, st.min, st.max) == (1, x, x, x)
        assert [v for _, v in p["samples"][name]] == [x]
    assert feed_counts([p])["arms"] == {f"{event.enhancement_id}/{event.arm}": 1}


def test_count_windows_of_the_naive_tables():
    items = [(("s", (0.0, 59.9)), {"q": {"n": 2}, "r": {"n": 2}}), (["s", [60.0, 119.9]], {"q": {"n": 1}, "r": {"n": 1}}),
             (("enh-1/enhancement", (0.0, 59.9)), {"q": {"n": 4}})]
    assert naive.count_windows(items) == {"s": {"q": 3, "r": 3}, "enh-1/enhancement": {"q": 4}}


def test_the_monitor_fixture_builds_1000_active_enhancements():
    f = monitor_fixture(10, 100, window_events=12)
    ids = [i for t in f.tenants for i in f.view.tenant_enhancements(t)]
    assert len(f.tenants) == 10 and len(ids) == len(set(ids)) == 1000
    records = [f.view.enhancement(i) for i in ids[:200:7]]
    assert all(e.state == "active" and e.mode == "automatic" for e in records)
    assert {e.phase for e in records} == {"canary", "full"}
    assert {e.share for e in records} == {0.2, 1.0}
    assert sum(f.kinds.values()) == 1000 and f.kinds["canary"] + f.kinds["canary_failing"] == 500
    s = f.view.series(ids[1])  # a canary: both arms, 5 metrics, 10 closed windows, a pool of up to 200
    assert set(s.arms) == {"enhancement", "baseline"}
    for arm in s.arms.values():
        assert set(arm) == set(METRICS)
        assert all(len(m.closed) == 10 and len(m.pool.sample) == min(200, m.pool.count) for m in arm.values())
    assert s.arms["baseline"]["quality_score"].pool.count == 10 * 12  # 80 % of 12 records a window, 12 windows
    assert set(f.view.series(ids[0]).arms) == {"enhancement"}
    assert set(f.raw["state"]) == set(f.raw["series"]) == set(ids)
    assert orjson.loads(f.raw["series"][ids[1]]) == f.view.series_values[ids[1]]
    assert f.now_idle < f.now_due


def test_a_tiny_monitor_run_completes():
    f = monitor_fixture(10, 4)  # 40 enhancements, 10 of them planted to fail
    pools = f.view.series(f.view.tenant_enhancements(f.tenants[0])[1]).pooled
    assert {len(p.sample) for arm in ("enhancement", "baseline") for p in pools(arm).values()} == {200}
    got = bench_monitor(f, repeats=1, profile=True)
    assert got["enhancements"] == 40 and got["same_effects_every_run"]
    tick, idle = got["tick"]["effects"], got["idle_tick"]["effects"]
    assert tick["writes"]["enhancement-state"] == 40  # every monitor ran (its upto moved)
    judged = tick["counts"]["ENHANCEMENT_CANARY_JUDGEMENTS"]
    assert sum(judged.values()) == 20  # every canary's judge was due (fewer than judges_per_tick)
    assert got["every_judge_tick"]["effects"] == tick and got["judges_per_tick"] == 200
    assert judged.get("fail", 0) >= 10 and tick["counts"]["ENHANCEMENT_TRIGGERS"]
    assert idle == {"outputs": 0, "audit": 0, "writes_total": 0, "writes": {}, "counts": {}}  # nothing due: the tick only looked
    closing = got["close_only_tick"]["effects"]
    assert "ENHANCEMENT_CANARY_JUDGEMENTS" not in closing["counts"] and closing["writes"]["enhancement-series"] == 40
    assert got["decode"]["values"] == 2 * 40 + 10 and got["encode_writes"]["values"] > 0
    assert set(got["breakdown"]["shares"]) and got["breakdown"]["profiled_total_s"] > 0
    report = assemble({"quick": True}, {}, got)
    assert tuple(report) == REPORT_KEYS and json.loads(json.dumps(report)) == report
    assert report["targets"]["fold_ge_3x_naive"] is None and report["targets"]["monitor_tick_lt_1s"] is not None
    assert "plan_tick" in table(report)


def _fold_result(per_s: float, steady: float, verified: bool = True) -> dict:
    return {"per_s": per_s, "steady": {"per_s": steady}, "elapsed_s": 2.0, "verified": verified, "partials": 7}


def test_report_ratios_and_targets():
    fold = {"project": _fold_result(20_000.0, 21_000.0), "naive": _fold_result(2_000.0, 2_100.0)}
    monitor = {"tick": {"best_s": 2.5, "first_s": 3.0}, "idle_tick": {"best_s": 0.5}, "decode": {"best_s": 0.25},
               "close_only_tick": {"best_s": 1.5}, "every_judge_tick": {"best_s": 3.5}, "judges_per_tick": 200,
               "sizes": {"series": {"mean_bytes": 100}},
               "tick_plus_decode_s": 2.75, "enhancements": 1000, "encode_writes": {"best_s": 0.1, "values": 9, "bytes": 1e6}}
    monitor["decode"]["bytes"] = 1e8
    r = assemble({}, fold, monitor)
    assert r["ratios"]["fold_project_vs_naive"] == 10.0 and r["ratios"]["fold_project_vs_naive_steady"] == 10.0
    assert r["ratios"]["monitor_tick_vs_budget_1s"] == 2.5 and r["ratios"]["monitor_tick_vs_idle_tick"] == 5.0
    assert r["targets"] == {"fold_ge_3x_naive": True, "fold_every_record_folded_both": True,
                            "monitor_tick_lt_1s": False, "monitor_tick_plus_decode_lt_1s": False}
    text = table(r)
    assert "10.00× naive" in text and "2.50× 1 s" in text and "NOT met" in text
    failed = assemble({}, {"project": {"error": "TimeoutError: boom"}, "naive": _fold_result(1.0, 1.0)}, {})
    assert failed["ratios"]["fold_project_vs_naive"] is None and failed["targets"]["fold_ge_3x_naive"] is None
    assert failed["targets"]["fold_every_record_folded_both"] is False and "FAILED" in table(failed)


def test_arguments():
    args = parse_args([])
    assert (args.n, args.quick, args.only, args.repeats, args.enhancements) == (40_000, False, list(PHASES), 5, 1000)
    assert args.out.name.startswith("telemetry-") and args.out.suffix == ".json"
    args = parse_args(["--quick", "--only", "monitor", "--out", "/tmp/x.json"])
    assert (args.n, args.only, args.repeats, args.out) == (5_000, ["monitor"], 3, Path("/tmp/x.json"))
    assert parse_args(["-n", "1234", "--only", "fold,monitor"]).n == 1234
    for bad in (["--only", "gate"], ["-n", "10"], ["--enhancements", "15"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
