"""deploy/github/budget-gate.yml: a GitHub Actions workflow that runs the real budget gate.

No runner here, so: the structure is checked, and the gate's command line is taken from
the workflow, parsed by the real argparse parser and run against real reports.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from resontinex.app.cli import main, parser
from tests.agents.budget_gate import report, write

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "deploy" / "github" / "budget-gate.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def _step(steps: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    (found,) = [s for s in steps if all(s.get(k) == v for k, v in match.items())]
    return found


def _gate_argv(steps: list[dict[str, Any]]) -> list[str]:
    """The gate step's `resontinex budget-gate ...` command, up to the pipe."""
    words = shlex.split(_step(steps, id="gate")["run"])
    return words[: words.index("|")]


def test_triggers_and_permissions(workflow: dict[str, Any]) -> None:
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read", "actions": "read", "pull-requests": "write"}


def test_checkout_python_311_and_the_repo_installed(steps: list[dict[str, Any]]) -> None:
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    assert str(steps[1]["with"]["python-version"]) == "3.11"
    assert any(s.get("run", "").strip() == "python -m pip install ." for s in steps)


def test_the_report_producer_is_a_marked_placeholder_that_fails_until_replaced(steps: list[dict[str, Any]]) -> None:
    placeholder = _step(steps, name="Produce the budget report (PLACEHOLDER)")
    assert "::error" in placeholder["run"] and placeholder["run"].rstrip().endswith("exit 2")
    assert "PLACEHOLDER: replace this step" in WORKFLOW.read_text(encoding="utf-8")


def test_the_gate_runs_with_the_github_format_and_its_exit_code_fails_the_job(steps: list[dict[str, Any]]) -> None:
    gate = _step(steps, id="gate")
    assert gate["shell"] == "bash"  # bash -eo pipefail: `| tee` keeps the gate's exit code
    assert "continue-on-error" not in gate
    argv = _gate_argv(steps)
    assert argv[:2] == ["resontinex", "budget-gate"]
    args = parser().parse_args(argv[1:])
    assert args.command == "budget-gate" and args.output_format == "github"
    assert args.current == "$REPORT" and args.baseline == "baseline/report.json"


def test_the_baseline_is_the_artifact_of_the_base_branch(workflow: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    upload = _step(steps, uses="actions/upload-artifact@v4")
    assert upload["if"] == "github.event_name == 'push'" and upload["with"]["name"] == "budget-report"
    assert upload["with"]["path"] == "${{ env.REPORT }}" and workflow["env"]["REPORT"].endswith("/report.json")
    fetch = _step(steps, name="Fetch the baseline report of the base branch")
    assert "gh run download" in fetch["run"] and "--name budget-report --dir baseline" in fetch["run"]


def test_the_pull_request_comment_posts_the_table_without_the_annotations(steps: list[dict[str, Any]]) -> None:
    comment = _step(steps, uses="actions/github-script@v7")
    assert "steps.gate.outputs.budget_status" in comment["if"] and "!cancelled()" in comment["if"]
    script = comment["with"]["script"]
    assert "budget-gate.md" in script and "startsWith('::')" in script
    assert "createComment" in script and "updateComment" in script
    assert _step(steps, id="gate")["run"].rstrip().endswith("tee budget-gate.md")


def test_the_workflow_command_line_gates_real_reports(steps, tmp_path, monkeypatch, capsys) -> None:
    """The exact command, with $REPORT and the baseline path pointing at real files."""
    base = report(("refund_flow", [1000, 1010, 990], [800, 900, 1000]))
    files = {"$REPORT": write(tmp_path / "current.json", report(("refund_flow", [1300, 1310, 1290], [800, 900, 1000]))),
             "baseline/report.json": write(tmp_path / "baseline.json", base)}
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    argv = [files.get(word, word) for word in _gate_argv(steps)[1:]]
    assert main(argv) == 1
    assert (tmp_path / "github_output").read_text() == "budget_status=block\n"
    assert "### Budget gate: ⛔ block" in capsys.readouterr().out
