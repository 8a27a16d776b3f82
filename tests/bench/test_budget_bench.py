"""The budget bench's pure helpers: the load, the exact sums, parsing, report shape. No broker,
no timing assertions (performance is measured by `python -m bench.budget`, never asserted
in unit tests)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from bench.budget import (DUP_EVERY, REPORT_KEYS, VARIANTS, assemble, costs, dup_source, events_total,
                          expected_spend, parse_args, poll_interval, spend_mismatches, status_mismatches, table, throughput)
from bench.naive_budget_app import sum_windows
from bench.run import partition_of
from resontinex.schemas import Cost, decode


def test_load_decodes_spreads_evenly_and_repeats_one_in_a_hundred():
    items = costs(1200)  # 100 per tenant
    assert costs(5) == items[:5]  # record i is the same whichever call makes it
    bodies = [decode(Cost, v) for _, v in items]
    assert all(b.tenant == k.decode() for (k, _), b in zip(items, bodies))
    assert len({b.event_id for b in bodies}) == 1200 - 1200 // DUP_EVERY
    assert sorted(Counter(partition_of(k) for k, _ in items).values()) == [300, 300, 300, 300]
    assert len({b.tenant for b in bodies}) == 12
    assert len({(b.tenant, b.workflow) for b in bodies}) == 48  # every tenant uses every workflow
    for i in range(DUP_EVERY - 1, 1200, DUP_EVERY):  # a repeat is its original, byte for byte
        assert items[i] == items[dup_source(i)] and dup_source(i) != i


def test_expected_spend_counts_each_event_id_once():
    def cost(event_id: str, tenant: str, usd: float, tokens: int, workflow: str = "chat") -> tuple[bytes, bytes]:
        return tenant.encode(), orjson.dumps({"event_id": event_id, "tenant": tenant, "workflow": workflow,
                                              "cost_usd": usd, "input_tokens": tokens, "output_tokens": 1})
    items = [cost("a", "t1", 0.1, 10), cost("b", "t1", 0.2, 20, "code"), cost("a", "t1", 0.1, 10),
             cost("c", "t2", 1.5, 5)]
    got = expected_spend(items)
    assert (got["records"], got["distinct"]) == (4, 3)
    assert got["tenants"] == {"t1": {"micros": 300_000, "tokens": 32, "n": 2},
                              "t2": {"micros": 1_500_000, "tokens": 6, "n": 1}}
    assert got["workflows"]["t1/code"] == {"micros": 200_000, "tokens": 21, "n": 1}
    assert set(got["workflows"]) == {"t1/chat", "t1/code", "t2/chat"}


def test_expected_spend_of_the_load_matches_its_parts():
    got = expected_spend(costs(2000))
    assert got["distinct"] == 1980
    assert sum(t["n"] for t in got["tenants"].values()) == sum(w["n"] for w in got["workflows"].values()) == 1980
    assert sum(t["micros"] for t in got["tenants"].values()) == sum(w["micros"] for w in got["workflows"].values())


def test_events_total_reads_the_costs_counter_only():
    text = ("# HELP resontinex_events_total Input events consumed\n"
            'resontinex_events_total{topic="decision-requests"} 7.0\n'
            'resontinex_events_total{topic="costs"} 60000.0\n'
            'resontinex_events_created{topic="costs"} 1.7e9\n')
    assert events_total(text) == 60000.0
    assert events_total(text, "decision-requests") == 7.0
    assert events_total(text, "control") is None and events_total("") is None


def test_mismatches_of_status_rows_and_naive_sums():
    expected = expected_spend(costs(300))
    rows = [{"scope": t, "spent_usd": v["micros"] / 1_000_000, "tokens": v["tokens"]}
            for t, v in expected["tenants"].items()]
    assert status_mismatches(expected, rows) == []
    rows[0] = {**rows[0], "spent_usd": rows[0]["spent_usd"] + 0.000001}
    assert len(status_mismatches(expected, rows)) == 1
    assert len(status_mismatches(expected, rows[2:])) == 2  # a missing row is a mismatch

    scopes = {**expected["tenants"], **expected["workflows"]}
    spend = {p: dict(scopes) for p in ("hour", "day", "month")}
    assert spend_mismatches(expected, spend) == []
    spend["day"] = {**scopes, "ghost": {"micros": 1, "tokens": 1, "n": 1}}
    del spend["month"]
    bad = spend_mismatches(expected, spend)
    assert bad[0].startswith("day ghost") and len(bad) == 1 + len(scopes)


def test_sum_windows_adds_every_window_of_a_scope():
    items = [(["t", [0.0, 3599.9]], {"micros": 5, "tokens": 2, "n": 1}),
             (("t", (3600.0, 7199.9)), {"micros": 7, "tokens": 1, "n": 2}),
             (["t/chat", [0.0, 3599.9]], {"micros": 5, "tokens": 2, "n": 1})]
    assert sum_windows(items) == {"t": {"micros": 12, "tokens": 3, "n": 3},
                                  "t/chat": {"micros": 5, "tokens": 2, "n": 1}}


def test_throughput_counts_from_the_first_and_the_warmup_polls():
    r = throughput(60_000, 10.0, (18.0, 4000), (19.0, 8000), 30.0)
    assert (r["per_s"], r["elapsed_s"], r["events"], r["first_count"]) == (4666.7, 12.0, 56_000, 4000)
    assert (r["steady"]["per_s"], r["steady"]["window_s"]) == (4727.3, 11.0)
    assert (r["startup_s"], r["wall_s"]) == (8.0, 20.0)
    none = throughput(100, 0.0, None, None, None)
    assert none["per_s"] is None and none["steady"]["per_s"] is None and none["wall_s"] is None


def test_polls_are_fine_at_the_start_and_near_the_end_only():
    assert poll_interval(60_000, None, (5.0, 0)) == 0.05  # waiting for the first event
    assert poll_interval(60_000, (5.0, 100), (6.0, 3100)) == 0.5  # 3,000/s: ~19 s to go
    assert poll_interval(60_000, (5.0, 100), (25.0, 58_000)) == 0.05  # ~0.7 s to go
    assert poll_interval(60_000, (5.0, 100), (5.0, 100)) == 0.05  # no rate yet


def _fake_report() -> dict:
    variants = {"project": throughput(60_000, 0.0, (8.0, 4000), (9.0, 6000), 20.0),
                "naive": throughput(60_000, 0.0, (7.0, 10), (30.0, 6000), 127.0)}
    return assemble({"quick": False, "n": 60_000}, variants)


def test_report_shape_and_ratio():
    report = _fake_report()
    assert tuple(report) == REPORT_KEYS and tuple(report["variants"]) == VARIANTS
    assert report["variants"]["project"]["per_s"] == 4666.7
    assert report["variants"]["naive"]["per_s"] == 499.9
    assert report["ratios"] == {"project_vs_naive": 9.335, "project_vs_naive_steady": 8.818}
    assert json.loads(json.dumps(report)) == report
    text = table(report)
    assert "4,667 /s" in text and "9.34× naive" in text and "baseline" in text


def test_report_with_a_failed_variant_has_none_not_errors():
    report = assemble({}, {"project": {"error": "TimeoutError: boom"}, "naive": throughput(10, 0, None, None, None)})
    assert set(report["ratios"].values()) == {None}
    assert "FAILED" in table(report)


def test_arguments():
    args = parse_args([])
    assert (args.n, args.quick, args.only) == (60_000, False, ["project", "naive"])
    assert args.out.name.startswith("budget-") and args.out.suffix == ".json"
    args = parse_args(["--quick", "--only", "naive", "--out", "/tmp/x.json"])
    assert (args.n, args.only, args.out) == (5_000, ["naive"], Path("/tmp/x.json"))
    assert parse_args(["--quick", "-n", "1234"]).n == 1234
    for bad in (["--only", "gate"], ["-n", "10"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
