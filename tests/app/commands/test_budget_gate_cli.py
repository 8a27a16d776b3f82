"""`resontinex budget-gate` from the command line: exit codes 0/1/2, formats, GitHub files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resontinex.app.commands.budget_gate import parse_range
from resontinex.app.cli import main
from resontinex.app.exceptions import UsageError
from tests.agents.budget_gate import report, write

REPO = Path(__file__).resolve().parents[2]
BASE = report(("refund_flow", [1000, 1010, 990, 1005, 995], [800, 900, 950, 1000, 1200]),
              ("search", [400, 410, 390], [100, 120, 110]))


def _current(factor: float, slow_ms: float = 1200.0):
    return report(("refund_flow", [t * factor for t in (1000, 1010, 990, 1005, 995)], [800, 900, 950, 1000, slow_ms]),
                  ("search", [t * factor for t in (400, 410, 390)], [100, 120, 110]))


@pytest.fixture(autouse=True)
def _no_github_env(monkeypatch):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _gate(tmp_path, current, *flags):
    return main(["budget-gate", "--baseline", write(tmp_path / "baseline.json", BASE),
                 "--current", write(tmp_path / "current.json", current), *flags])


@pytest.mark.parametrize(("factor", "code", "status"), [(1.0, 0, "pass"), (1.15, 0, "warn"), (1.3, 1, "block")])
def test_exit_code_and_json(tmp_path, capsys, factor, code, status):
    assert _gate(tmp_path, _current(factor), "--output-format", "json") == code
    out = json.loads(capsys.readouterr().out)
    assert out["budget_status"] == status and out["token_delta_pct"] == pytest.approx((factor - 1) * 100)
    assert out["p95_latency_ms"] == 1200.0


def test_thresholds_and_no_stats_flags(tmp_path, capsys):
    assert _gate(tmp_path, _current(1.3), "--token-block-threshold", "31", "--output-format", "json") == 0
    assert json.loads(capsys.readouterr().out)["budget_status"] == "warn"
    assert _gate(tmp_path, _current(1.0, slow_ms=900), "--latency-warn", "1000", "--latency-block", "1001") == 0
    assert _gate(tmp_path, _current(1.0, slow_ms=900), "--latency-warn", "999", "--latency-block", "1000") == 1
    capsys.readouterr()
    assert _gate(tmp_path, _current(1.0, slow_ms=5000), "--no-stats", "--output-format", "json") == 1
    assert json.loads(capsys.readouterr().out)["thresholds"]["statistics"] is False


def test_a_report_file_holds_both_runs(tmp_path, capsys):
    path = write(tmp_path / "report.json", {"baseline": BASE, "current": _current(1.3)})
    assert main(["budget-gate", "--report-file", path]) == 1
    assert capsys.readouterr().out.startswith("budget gate: BLOCK")


def test_github_format_writes_the_output_and_the_summary(tmp_path, capsys, monkeypatch):
    (tmp_path / "out").write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert _gate(tmp_path, _current(1.3), "--output-format", "github") == 1
    out = capsys.readouterr().out
    assert out.startswith("::error title=Budget gate tokens::token delta +30.0 %25 is at or above the block")
    assert "### Budget gate: ⛔ block" in out and "| refund_flow |" in out
    assert (tmp_path / "out").read_text() == "earlier=1\nbudget_status=block\n"
    assert (tmp_path / "summary.md").read_text().startswith("### Budget gate: ⛔ block")


def test_other_formats_leave_the_github_output_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    assert _gate(tmp_path, _current(1.0), "--output-format", "json") == 0
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("current", "message"), [
    (b"", "current.json: not JSON"),
    (b"{}", "current.json: scenarios: missing"),
    (b'{"scenarios": []}', "current.json: scenarios: expected a non-empty list"),
    (b'{"scenarios": [{"name": "search", "tokens": [1, "x"], "latency_ms": [1]}]}',
     "current.json: scenarios[0].tokens[1]: expected a finite non-negative number"),
    (b'{"scenarios": [{"name": "other", "tokens": [1], "latency_ms": [1]}]}',
     "current.json: scenarios: no scenario in common with"),
])
def test_bad_input_is_exit_2_naming_the_file_and_the_field(tmp_path, capsys, current, message):
    (tmp_path / "current.json").write_bytes(current)
    code = main(["budget-gate", "--baseline", write(tmp_path / "baseline.json", BASE),
                 "--current", str(tmp_path / "current.json")])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_a_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["budget-gate", "--baseline", str(tmp_path / "nope.json"), "--current", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: file not found" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    ([], "give --baseline FILE and --current FILE"),
    (["--baseline", "b.json"], "give --baseline FILE and --current FILE"),
    (["--report-file", "r.json", "--current", "c.json"], "--report-file holds both runs"),
    (["--baseline", "b.json", "--current", "c.json", "--tenant", "acme"], "--tenant only apply with --from-kafka"),
    (["--from-kafka", "--baseline-range", "1,2"], "--from-kafka needs --current-range"),
    (["--from-kafka", "--report-file", "r.json", "--baseline-range", "1,2", "--current-range", "3,4"],
     "drop --report-file"),
    (["--from-kafka", "--baseline-range", "1,2", "--current-range", "2024-05-01,3"], "'2024-05-01' is neither"),
    (["--from-kafka", "--baseline-range", "1,2", "--current-range", "5,4"], "START must be before END"),
    (["--report-file", "r.json", "--token-warn-threshold", "30"], "token warn threshold (30.0) is above"),
    (["--report-file", "r.json", "--alpha", "2"], "alpha must be between 0 and 1"),
])
def test_bad_usage_is_exit_2(capsys, argv, message):
    assert main(["budget-gate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_flag_value_is_an_argparse_error():
    with pytest.raises(SystemExit) as caught:
        main(["budget-gate", "--report-file", "r.json", "--output-format", "yaml"])
    assert caught.value.code == 2


def test_time_ranges_take_rfc_3339_with_an_offset_or_epoch_ms():
    assert parse_range("2024-05-01T02:00:00+02:00, 2024-05-01T00:00:01.5Z", "--baseline-range") == (
        1714521600000, 1714521601500)
    assert parse_range("0,1", "--current-range") == (0, 1)
    with pytest.raises(UsageError, match="expected START,END"):
        parse_range("1,2,3", "--current-range")


def test_the_installed_command_line_exits_with_the_gate_status(tmp_path):
    args = [sys.executable, "-m", "resontinex.app.cli", "budget-gate", "--baseline", write(tmp_path / "b.json", BASE)]
    blocked = subprocess.run([*args, "--current", write(tmp_path / "c.json", _current(1.3)), "--output-format", "json"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert blocked.returncode == 1 and json.loads(blocked.stdout)["budget_status"] == "block"
    bad = subprocess.run([*args, "--current", str(tmp_path / "missing.json")], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "missing.json: file not found" in bad.stderr and bad.stdout == ""


def test_an_unreachable_broker_is_a_failed_check_not_a_pass(capsys):
    code = main(["budget-gate", "--from-kafka", "--bootstrap", "127.0.0.1:1", "--baseline-range", "1,2",
                 "--current-range", "3,4"])
    assert code == 1
    assert "127.0.0.1:1" in capsys.readouterr().err
