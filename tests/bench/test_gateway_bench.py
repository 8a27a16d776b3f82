"""The gateway bench: its pure helpers (tenants, requests, tokens, percentiles, rounds,
ratios, the report), the closed-loop driver on a fake call, and (marked `integration`)
that a `--quick` run's report is whole with every answer a 200. Performance is measured
by `python -m bench.gateway`, never asserted here."""

from __future__ import annotations

import asyncio
import doctest
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

import bench.gateway as bg
from bench.gateway import (PROCESSES, REPORT_KEYS, VARIANTS, assemble, bench_tenants, compare, cpu_figures,
                           decision_request, drive, gateway_yaml, median_of_rounds, parse_args, status_counts,
                           summarize, table)
from bench.run import ProcessGone, partition_of
from resontinex.app.gateway import gateway_config_from, token_digest
from resontinex.schemas import DecisionRequest, decode

from .quick import run_quick

QUICK_DEADLINE_S = 240


def test_module_doctests():
    assert doctest.testmod(bg).failed == 0


@pytest.mark.parametrize("count, spread", [(8, [2, 2, 2, 2]), (12, [3, 3, 3, 3]), (6, [1, 1, 2, 2]), (4, [1, 1, 1, 1])])
def test_tenants_spread_evenly_over_the_four_partitions(count, spread):
    tenants = bench_tenants(count)
    assert len(tenants) == len(set(tenants)) == count
    assert sorted(Counter(partition_of(t.encode()) for t in tenants).values()) == spread
    assert bench_tenants(count) == tenants  # the same names in every run


def test_every_request_of_a_run_is_valid_and_has_its_own_event_id():
    args = parse_args([])
    tenants = bench_tenants(args.tenants)
    phases = ["warm"] + [f"r{r}" for r in range(1, args.rounds + 1)]
    ids = [decision_request(v, p, i, tenants)["event_id"] for v in VARIANTS for p in phases
           for i in range(args.warmup if p == "warm" else args.requests)]
    assert len(ids) == len(set(ids)) == 2 * (args.warmup + args.rounds * args.requests)
    for i in range(0, 40, 3):
        item = decision_request("gateway", "r1", i, tenants)
        event = decode(DecisionRequest, json.dumps(item).encode())
        assert (event.tenant, event.event_id) == (tenants[i % len(tenants)], item["event_id"])
    # both paths get the same signals in the same order: the same mix of verbs and alerts
    signals = [decision_request(v, p, 9, tenants)["signals"] for v, p in (("direct", "r2"), ("gateway", "r1"))]
    assert signals[0] == signals[1]


def test_gateway_yaml_gives_each_tenant_its_own_token():
    tokens = {t: f"tok-{t}" for t in bench_tenants(8)}
    text = gateway_yaml(tokens)
    assert all(tok not in text for tok in tokens.values())  # only digests are written
    cfg = gateway_config_from(yaml.safe_load(text))
    assert dict(cfg.tenants) == {token_digest(tok): t for t, tok in tokens.items()}
    for tenant, tok in tokens.items():
        assert cfg.tenant_of(f"Bearer {tok}") == tenant
    assert cfg.max_decide_timeout_s >= bg.DECIDE_TIMEOUT_S


def test_summary_uses_nearest_rank_percentiles_of_the_answered_requests():
    lat = [float(x) for x in range(100, 0, -1)]  # unordered input
    s = summarize(lat, 4.0, [200] * 100 + ["timeout"] * 2)
    assert (s["requests"], s["answered"], s["per_s"], s["wall_s"]) == (102, 100, 25.0, 4.0)
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"], s["mean_ms"]) == (50.0, 95.0, 99.0, 100.0, 50.5)
    assert s["statuses"]["other_codes"] == {"timeout": 2} and not s["statuses"]["all_200"]
    one = summarize([7.0], 0.5, [200])
    assert (one["p50_ms"], one["p99_ms"], one["per_s"]) == (7.0, 7.0, 2.0)
    empty = summarize([], 0.0, [])
    assert empty["per_s"] is None and empty["p99_ms"] is None and empty["mean_ms"] is None


def test_status_counts():
    assert status_counts([200] * 3) == {"200": 3, "202": 0, "other": 0, "other_codes": {}, "all_200": True}
    s = status_counts([200, 202, 202, 503, "error:ClientOSError"])
    assert (s["200"], s["202"], s["other"], s["all_200"]) == (1, 2, 2, False)
    assert s["other_codes"] == {"503": 1, "error:ClientOSError": 1}


def test_median_of_rounds_and_ratio():
    cpu = lambda b, g: {"us_per_request": {"bench": b, "gateway": g}}  # noqa: E731
    rounds = [{"per_s": 100.0, "p50_ms": 10.0, "p99_ms": 30.0, "cpu": cpu(400.0, 900.0)},
              {"per_s": 140.0, "p50_ms": 20.0, "p99_ms": 50.0, "cpu": cpu(600.0, None)}]
    m = median_of_rounds(rounds)
    assert (m["per_s"], m["p50_ms"], m["p99_ms"], m["rounds"]) == (120.0, 15.0, 40.0, 2)  # two rounds: their mean
    assert m["cpu_us_per_request"] == {"bench": 500.0, "gateway": 900.0}
    assert median_of_rounds(rounds + [{"per_s": 90.0}])["per_s"] == 100.0
    assert median_of_rounds([])["per_s"] is None
    assert compare({"per_s": 200.0, "p50_ms": 10.0, "p99_ms": 40.0}, {"per_s": 150.0, "p50_ms": 12.0, "p99_ms": 60.0}) \
        == {"per_s": 0.75, "p50_ms": 1.2, "p99_ms": 1.5}
    assert compare({"per_s": 0.0}, {"per_s": 1.0})["per_s"] is None


def test_cpu_figures():
    f = cpu_figures({"bench": 10.0, "worker": 1.0}, {"bench": 12.0, "worker": None}, 4.0, 2000)
    assert f["seconds"] == {"bench": 2.0, "worker": None}
    assert f["cores"] == {"bench": 0.5, "worker": None} and f["us_per_request"] == {"bench": 1000.0, "worker": None}
    assert cpu_figures({"bench": 1.0}, {"bench": 2.0}, 0.0, 0) == {
        "seconds": {"bench": 1.0}, "cores": {"bench": None}, "us_per_request": {"bench": None}}


def _figures(per_s: float, p99: float, statuses: list) -> dict:
    out = summarize([p99 / 2] * (len(statuses) - 1) + [p99], len(statuses) / per_s, statuses)
    out["cpu"] = cpu_figures({p: 0.0 for p in PROCESSES}, {p: 1.0 for p in PROCESSES}, 1.0, out["answered"])
    return out


def test_report_shape_ratios_and_statuses():
    config = {"requests": 10, "concurrency": 2}
    rounds = [{"round": 1, "direct": _figures(100.0, 40.0, [200] * 10), "gateway": _figures(80.0, 60.0, [200] * 10)},
              {"round": 2, "direct": _figures(120.0, 50.0, [200] * 10), "gateway": _figures(90.0, 80.0, [200] * 10)}]
    report = assemble({"quick": True}, config, {}, rounds)
    assert tuple(report) == REPORT_KEYS and report["ok"]
    assert report["median"]["direct"]["per_s"] == 110.0 and report["median"]["gateway"]["per_s"] == 85.0
    r = report["ratios"]
    assert r["gateway_vs_direct_per_s"] == round(85 / 110, 3) and r["gateway_vs_direct_p99"] == round(70 / 45, 3)
    assert r["per_round"][0] == {"per_s": 0.8, "p50_ms": 1.5, "p99_ms": 1.5}
    assert report["gateway_status"] == {"200": 20, "202": 0, "other": 0, "other_codes": {}, "all_200": True}
    assert json.loads(json.dumps(report)) == report
    text = table(report)
    assert "median gateway" in text and "all 200" in text and "0.77×" in text


def test_report_of_a_202_or_a_failed_round_is_not_ok():
    config = {"requests": 10}
    late = [{"round": 1, "direct": _figures(100.0, 40.0, [200] * 10),
             "gateway": _figures(80.0, 60.0, [200] * 9 + [202])}]
    report = assemble({}, config, {}, late)
    assert not report["ok"] and report["gateway_status"]["202"] == 1 and not report["gateway_status"]["all_200"]
    assert "NOT all 200" in table(report)
    broken = [{"round": 1, "direct": _figures(100.0, 40.0, [200] * 10), "gateway": {"error": "ProcessGone: gone"}}]
    report = assemble({}, config, {}, broken, {"failed": "ProcessGone: gone"})
    assert not report["ok"] and report["ratios"]["gateway_vs_direct_per_s"] is None
    assert report["median"]["gateway"]["per_s"] is None and report["notes"]["failed"]
    assert "FAILED" in table(report) and json.loads(json.dumps(report)) == report
    assert not assemble({}, config, {}, [])["ok"]


def test_arguments():
    args = parse_args([])
    assert (args.requests, args.concurrency, args.rounds, args.tenants, args.warmup) == (3000, 32, 2, 8, 300)
    assert args.out.name.startswith("gateway-") and args.out.suffix == ".json"
    quick = parse_args(["--quick", "--out", "/tmp/g.json"])
    assert (quick.requests, quick.concurrency, quick.warmup, quick.out) == (300, 16, 32, Path("/tmp/g.json"))
    assert parse_args(["--requests", "100", "--concurrency", "64"]).warmup == 128
    assert parse_args(["--warmup", "0"]).warmup == 0
    for bad in (["--requests", "0"], ["--concurrency", "0"], ["--rounds", "0"], ["--warmup", "-1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_drive_keeps_concurrency_in_flight_and_times_each_request():
    in_flight, most = 0, 0

    async def call(item: dict) -> int | str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return 200 if item["i"] % 10 else 202

    items = [{"i": i} for i in range(50)]
    lat, statuses, wall = asyncio.run(drive("fake", call, items, 4, lambda: None))
    assert most == 4 and len(statuses) == 50 and Counter(statuses) == {200: 45, 202: 5}
    assert len(lat) == 45 and all(x >= 1.5 for x in lat) and wall > 0


def test_drive_stops_when_a_process_is_gone():
    async def slow(item: dict) -> int:
        await asyncio.sleep(10)
        return 200

    with pytest.raises(ProcessGone):
        asyncio.run(drive("fake", slow, [{}] * 4, 2, lambda: "process 1 exited with 1"))


@pytest.mark.integration
def test_quick_run_writes_a_whole_report(tmp_path):
    out = tmp_path / "gateway.json"
    done = run_quick("bench.gateway", out, QUICK_DEADLINE_S)
    assert "gateway ÷ direct" in done.stdout
    report = json.loads(out.read_text())
    assert tuple(report) == REPORT_KEYS and report["ok"]
    c = report["config"]
    assert (c["requests"], c["concurrency"], c["rounds"]) == (300, 16, 2)
    assert sorted(Counter(c["tenant_partitions"].values()).values()) == [2, 2, 2, 2]
    assert report["gateway_status"] == {"200": 600, "202": 0, "other": 0, "other_codes": {}, "all_200": True}
    assert report["warmup"]["mismatched_answers"] == 0
    for r in report["rounds"]:
        for v in VARIANTS:
            f = r[v]
            assert f["answered"] == 300 and f["per_s"] > 0 and 0 < f["p50_ms"] <= f["p99_ms"] <= f["max_ms"]
            assert set(f["cpu"]["seconds"]) == set(PROCESSES)
        assert r["gateway"]["server_mean_ms"] is not None
    for key in ("gateway_vs_direct_per_s", "gateway_vs_direct_p99"):
        assert isinstance(report["ratios"][key], float) and report["ratios"][key] > 0
