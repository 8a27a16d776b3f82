"""Loading and validating budget reports: every error names the file and the field."""

from __future__ import annotations

import pytest

from resontinex.agents.budget_gate import ReportError, load_report_file, load_run

from . import report, write

GOOD = report(("refund_flow", [1210, 1185, 1302], [840, 910, 1990]), ("search", [400], [120.5]))


def test_a_good_report_loads_in_order(tmp_path):
    run = load_run(write(tmp_path / "b.json", GOOD))
    assert run.source == str(tmp_path / "b.json")
    assert [s.name for s in run.scenarios] == ["refund_flow", "search"]
    assert run.scenarios[0].tokens.tolist() == [1210, 1185, 1302]
    assert run.scenarios[1].latency_ms.tolist() == [120.5]


def test_a_combined_report_holds_both_runs(tmp_path):
    baseline, current = load_report_file(write(tmp_path / "r.json", {"baseline": GOOD, "current": GOOD}))
    assert [s.field for s in baseline.scenarios] == ["baseline.scenarios[0]", "baseline.scenarios[1]"]
    assert current.scenarios[0].field == "current.scenarios[0]"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "not JSON"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[]", 'expected a JSON object with "scenarios"'),
    (b"{}", "scenarios: missing"),
    (b'{"scenarios": []}', "scenarios: expected a non-empty list"),
    (b'{"scenarios": {}}', "scenarios: expected a non-empty list"),
    (b'{"scenarios": [1]}', "scenarios[0]: expected an object"),
    (b'{"scenarios": [{"tokens": [1], "latency_ms": [1]}]}', "scenarios[0].name: expected a non-blank string"),
    (b'{"scenarios": [{"name": " ", "tokens": [1], "latency_ms": [1]}]}', "scenarios[0].name"),
    (b'{"scenarios": [{"name": "a", "latency_ms": [1]}]}', "scenarios[0].tokens: missing"),
    (b'{"scenarios": [{"name": "a", "tokens": [1]}]}', "scenarios[0].latency_ms: missing"),
    (b'{"scenarios": [{"name": "a", "tokens": [], "latency_ms": [1]}]}',
     "scenarios[0].tokens: expected a non-empty list of non-negative numbers"),
    (b'{"scenarios": [{"name": "a", "tokens": 5, "latency_ms": [1]}]}', "scenarios[0].tokens: expected a non-empty"),
    (b'{"scenarios": [{"name": "a", "tokens": [1, -1], "latency_ms": [1]}]}', "scenarios[0].tokens[1]: expected a finite"),
    (b'{"scenarios": [{"name": "a", "tokens": [NaN], "latency_ms": [1]}]}', "scenarios[0].tokens[0]: expected a finite"),
    (b'{"scenarios": [{"name": "a", "tokens": [1], "latency_ms": [Infinity]}]}', "scenarios[0].latency_ms[0]"),
    (b'{"scenarios": [{"name": "a", "tokens": ["12"], "latency_ms": [1]}]}', "(got '12')"),
    (b'{"scenarios": [{"name": "a", "tokens": [true], "latency_ms": [1]}]}', "scenarios[0].tokens[0]"),
    (b'{"scenarios": [{"name": "a", "tokens": [1e999], "latency_ms": [1]}]}', "scenarios[0].tokens[0]"),
    (b'{"scenarios": [{"name": "a", "tokens": [1], "latency_ms": [1]}, {"name": "a", "tokens": [1], '
     b'"latency_ms": [1]}]}', "scenarios[1].name: duplicate scenario 'a'"),
])
def test_bad_reports_name_the_file_and_the_field(tmp_path, content, message):
    path = tmp_path / "baseline.json"
    path.write_bytes(content)
    with pytest.raises(ReportError) as caught:
        load_run(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert caught.value.source == str(path)


def test_a_huge_integer_sample_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"scenarios": [{"name": "a", "tokens": [1' + "0" * 400 + '], "latency_ms": [1]}]}')
    with pytest.raises(ReportError, match=r"scenarios\[0\]\.tokens\[0\]"):
        load_run(path)


def test_a_missing_file_and_a_directory_are_named(tmp_path):
    with pytest.raises(ReportError, match=r"nope\.json: file not found"):
        load_run(tmp_path / "nope.json")
    with pytest.raises(ReportError, match="cannot read"):
        load_run(tmp_path)


@pytest.mark.parametrize(("obj", "message"), [
    ([], 'expected a JSON object with "baseline" and "current"'),
    ({"baseline": GOOD}, "current: missing"),
    ({"current": GOOD}, "baseline: missing"),
    ({"baseline": GOOD, "current": {}}, "current.scenarios: missing"),
    ({"baseline": GOOD, "current": []}, 'current: expected a JSON object with "scenarios"'),
    ({"baseline": report(("a", [1], [-5])), "current": GOOD}, "baseline.scenarios[0].latency_ms[0]"),
])
def test_a_bad_combined_report_names_the_run_and_the_field(tmp_path, obj, message):
    path = write(tmp_path / "report.json", obj)
    with pytest.raises(ReportError) as caught:
        load_report_file(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
