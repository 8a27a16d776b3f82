"""Rendering: the documented JSON object, text, Markdown and GitHub workflow commands."""

from __future__ import annotations

import json
import re

import pytest

from resontinex.agents.budget_gate import FORMATS, Thresholds, annotations, compare, markdown, render, to_dict

from . import run

FLAT = [100.0] * 3


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def blocked():
    return compare(run("b.json", ("refund|flow", [1000] * 5, FLAT), ("gone", [1], FLAT)),
                   run("c.json", ("refund|flow", [1300] * 5, [6000.0] * 3), ("new\nline", [1], FLAT)))


def test_the_json_object_is_the_documented_one(blocked):
    obj = _strict(render(blocked, "json"))
    assert list(obj) == ["schema_version", "budget_status", "token_delta_pct", "p95_latency_ms", "tokens", "latency",
                         "scenarios", "only_in_baseline", "only_in_current", "thresholds", "method"]
    assert obj["schema_version"] == 1
    assert (obj["budget_status"], obj["token_delta_pct"], obj["p95_latency_ms"]) == ("block", 30.0, 6000.0)
    assert obj["tokens"] == {"status": "block", "delta_pct": 30.0, "ci_pct": [30.0, 30.0], "significant": True,
                             "note": ""}
    assert set(obj["latency"]) == {"status", "p95_ms", "baseline_p95_ms", "increase_ci_ms", "significant", "note"}
    (row,) = obj["scenarios"]
    assert row == {"name": "refund|flow", "baseline_n": 5, "current_n": 5, "baseline_mean_tokens": 1000.0,
                   "current_mean_tokens": 1300.0, "delta_pct": 30.0, "ci_pct": [30.0, 30.0], "significant": True,
                   "baseline_p95_ms": 100.0, "current_p95_ms": 6000.0, "note": ""}
    assert obj["only_in_baseline"] == ["gone"] and obj["only_in_current"] == ["new\nline"]
    assert obj["thresholds"] == {"token_warn_pct": 12.0, "token_block_pct": 25.0, "latency_warn_ms": 2000.0,
                                 "latency_block_ms": 5000.0, "alpha": 0.05, "statistics": True}
    assert to_dict(blocked) == obj


def test_infinite_interval_bounds_are_null_in_json():
    result = compare(run("b", ("s", [0, 0, 0, 0, 1], FLAT)), run("c", ("s", [1] * 5, FLAT)))
    assert _strict(render(result, "json"))["scenarios"][0]["ci_pct"][1] is None
    assert "inf" in render(result, "text")


def test_markdown_tables_escape_names_and_end_before_the_lists(blocked):
    text = markdown(blocked)
    lines = text.splitlines()
    assert lines[0] == "### Budget gate: ⛔ block"
    assert "| refund\\|flow | 1,000 (5) | 1,300 (5) | +30.0 % |" in text
    table_end = max(i for i, line in enumerate(lines) if line.startswith("|"))
    assert lines[table_end + 1] == "" and lines[table_end + 2] == "Only in the baseline: gone (not compared)"
    assert "Only in the current run: new line (not compared)" in lines
    for line in lines:
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 9  # eight cells in every row


def test_annotations_are_workflow_commands_with_escaped_messages(blocked):
    assert annotations(blocked) == [
        "::error title=Budget gate tokens::token delta +30.0 %25 is at or above the block threshold 25 %25",
        "::error title=Budget gate latency::P95 latency 6,000 ms is at or above the block threshold 5,000 ms",
    ]
    github = render(blocked, "github")
    assert github.startswith("::error ") and github.split("\n\n", 1)[1] == markdown(blocked)


def test_a_noise_warning_says_so_and_a_pass_has_no_annotation():
    noisy = compare(run("b", ("s", [400, 1600, 700, 1300, 1000], FLAT)), run("c", ("s", [600, 2200, 900, 1700, 1100], FLAT)))
    (warning,) = annotations(noisy)
    assert warning.startswith("::warning title=Budget gate tokens::token delta +30.0 %25 is at or above the warn")
    assert "within noise" in warning
    calm = compare(run("b", ("s", [10] * 3, FLAT)), run("c", ("s", [10] * 3, FLAT)))
    assert annotations(calm) == [] and render(calm, "github").startswith("### Budget gate: ✅ pass")


def test_text_names_every_figure(blocked):
    text = render(blocked, "text")
    assert text.splitlines()[0] == "budget gate: BLOCK"
    for fragment in ("token delta (mean of 1 scenario)", "+30.0 %", "P95 latency (baseline 100 ms)", "6,000 ms",
                     "≥ 12 %", "≥ 25 %", "≥ 2,000 ms", "≥ 5,000 ms", "refund|flow", "Only in the baseline: gone"):
        assert fragment in text


def test_every_format_renders_without_statistics():
    result = compare(run("b", ("s", [1000] * 2, FLAT)), run("c", ("s", [1300] * 2, FLAT)), Thresholds(statistics=False))
    assert _strict(render(result, "json"))["tokens"]["ci_pct"] is None
    assert "n/a" in render(result, "text") and "| n/a | n/a |" in render(result, "github")
    assert FORMATS == ("text", "json", "github")
