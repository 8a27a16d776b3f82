"""The bench's pure helpers: rate, percentile, report shape. No broker, no timing assertions
(performance is measured by `python -m bench.run`, never asserted in unit tests)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import profile
from bench.run import (E2E_VARIANTS, REPORT_KEYS, assemble, balanced_tenants, latency_summary, partition_of,
                       percentile, rate, ratio, requests, table)
from resontinex.schemas import DecisionRequest, decode


def test_rate_counts_outputs_after_the_warmup_th_over_the_window():
    stamps = [1000 + 10 * i for i in range(101)]  # 101 outputs, one per 10 ms
    r = rate(stamps, 1)
    assert r == {"per_s": 100.0, "counted": 100, "window_s": 1.0, "outputs": 101, "warmup": 1}
    r = rate(list(reversed(stamps)), 51)  # order does not matter; t0 is the 51st output
    assert (r["counted"], r["window_s"], r["per_s"]) == (50, 0.5, 100.0)


def test_rate_excludes_outputs_sharing_t0_and_honours_not_before():
    assert rate([0, 0, 0, 500, 1000], 2)["counted"] == 2  # the third 0 ms output is not after t0
    r = rate([0, 100, 200, 300, 400], 1, not_before_ms=200)
    assert (r["counted"], r["window_s"], r["per_s"]) == (2, 0.2, 10.0)


def test_rate_without_a_window_is_none():
    assert rate([], 10)["per_s"] is None
    assert rate([5, 5, 5], 1)["per_s"] is None
    assert rate([7], 0)["per_s"] is None


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (1, 50, 95, 99, 100)] == [1, 50, 95, 99, 100]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 99) is None
    with pytest.raises(ValueError):
        percentile([1], 0)


def test_latency_summary_and_ratio():
    s = latency_summary([10, 20, 30, 40])
    assert (s["n"], s["p50_ms"], s["p99_ms"], s["max_ms"], s["mean_ms"]) == (4, 20, 40, 40, 25.0)
    assert latency_summary([])["p99_ms"] is None
    assert ratio(3.0, 2.0) == 1.5 and ratio(None, 2.0) is None and ratio(1.0, 0) is None


def test_load_is_spread_evenly_and_decodes():
    tenants = balanced_tenants()
    assert len(tenants) == len(set(tenants)) == 12
    assert sorted(Counter(partition_of(t.encode()) for t in tenants).values()) == [3, 3, 3, 3]
    items = requests(200)
    assert len({json.loads(v)["event_id"] for _, v in items}) == 200
    for key, value in items[:20]:
        assert decode(DecisionRequest, value).tenant == key.decode()
    assert requests(5, start=100) == requests(105)[100:]


def _fake_report() -> dict:
    e2e = {name: {"rate": {"per_s": per_s}} for name, per_s in
           zip(E2E_VARIANTS, (3000.0, 4500.0, 800.0, 8000.0, 10000.0))}
    latency = {"rate_per_s": 1500.0, "p50_ms": 40, "p95_ms": 70, "p99_ms": 90,
               "baselines": {"c_forward": {"p99_ms": 60}, "a_fetch_wait_1500ms": {"p99_ms": 1600},
                             "fetch_probe_1500ms": {"p99_ms": 750}, "fetch_probe_10ms": {"p99_ms": 10}}}
    return assemble({"quick": True}, {"scalar_ns_per_eval": 1000.0, "batch_ns_per_eval": 100.0}, e2e, latency)


def test_report_shape_ratios_and_targets():
    report = _fake_report()
    assert tuple(report) == REPORT_KEYS
    r, t = report["ratios"], report["targets"]
    assert r["scalar_vs_target_500ns"] == 2.0 and r["batch_vs_scalar"] == 0.1
    assert r["a_vs_c_forward"] == 0.375 and r["a_vs_b_naive"] == 3.75 and r["a_two_workers_vs_one"] == 1.5
    assert r["p99_vs_target_100ms"] == 0.9 and r["p99_a_vs_c_forward"] == 1.5
    assert r["p99_fetch_probe_1500ms_vs_10ms"] == 75.0 and r["p99_a_vs_a_fetch_wait_1500ms"] == 0.056
    assert t == {"scalar_le_500ns": False, "a_ge_75pct_of_c_forward": False, "a_ge_3x_b_naive": True,
                 "two_workers_ge_1_3x_one": True, "p99_lt_100ms_at_half_max": True}
    assert json.loads(json.dumps(report)) == report
    text = table(report)
    assert "(a) project worker" in text and "NOT met" in text and "3,000 /s" in text


def test_report_with_missing_figures_has_none_not_errors():
    report = assemble({}, {}, {"a_worker": {"error": "boom"}}, {"error": "no rate"})
    assert set(report["ratios"].values()) == {None}
    assert set(report["targets"].values()) == {None}
    assert "—" in table(report)


def test_profile_breakdown_attributes_the_innermost_known_frame():
    raw = [
        "main;handle (app/wiring/gate.py:95);_audit (agents/gate/_plan.py:200);canonical_json (agents/audit/_canonical.py:43) 6",
        "main;getmany (aiokafka/consumer/consumer.py:1) 3",
        "main;_run_once (asyncio/base_events.py:1) 1",
        "garbage line",
    ]
    stacks = profile.parse_collapsed(raw)
    out = profile.breakdown(stacks)
    assert out["samples"] == 10
    assert out["share"]["audit sealing (RFC 8785 + SHA-256)"] == 0.6
    assert out["share"]["aiokafka client (fetch, records, protocol)"] == 0.3
