"""A command that cannot go on says so in one line and exits 1: Kafka unreachable or
silent, or its stdout closed early. Never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resontinex.agents.router import export_q_table, load_routing_config, make_policy
from resontinex.app.broker import free_port
from resontinex.app.cli import main
from resontinex.app.engine.connect import CONNECT_TIMEOUT_S
from tests.agents.budget_gate import report, write
from tests.integration.harness import REPO, stop_process

REFUSED = "127.0.0.1:1"


def _router_table(tmp_path: Path) -> str:
    path = tmp_path / "table.json"
    path.write_text(json.dumps(export_q_table(make_policy(load_routing_config(REPO / "config" / "routing.yaml")))))
    return str(path)


COMMANDS = {
    "topics create": lambda tmp_path: ["topics", "create"],
    "up": lambda tmp_path: ["up", "--roles", "core", "--web-port", str(free_port())],
    "audit verify": lambda tmp_path: ["audit", "verify", "--quiet"],
    "audit replay": lambda tmp_path: ["audit", "replay", "--quiet"],
    "audit reproduce": lambda tmp_path: ["audit", "reproduce", "--quiet"],
    "audit archive": lambda tmp_path: ["audit", "archive", "--quiet", "--out", str(tmp_path / "a.jsonl")],
    "router export": lambda tmp_path: ["router", "export", "--tenant", "acme"],
    "router import": lambda tmp_path: ["router", "import", "--tenant", "acme", "--file", _router_table(tmp_path),
                                       "--operator", "ops-1", "--reason", "restore"],
    "router evaluate": lambda tmp_path: ["router", "evaluate", "--policy", str(REPO / "config" / "routing.yaml")],
    "budget reset": lambda tmp_path: ["budget", "reset", "--tenant", "acme", "--operator", "ops-1", "--reason", "ok"],
    "budget-gate": lambda tmp_path: ["budget-gate", "--from-kafka", "--baseline-range", "0,1",
                                     "--current-range", "1,2"],
}


def _one_line(err: str, bootstrap: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("resontinex: ") and bootstrap in lines[0]
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreachable_broker_is_one_line_and_exit_1(tmp_path, capsys, command):
    argv = [*COMMANDS[command](tmp_path), "--bootstrap", REFUSED, "--log-level", "ERROR"]
    assert main(argv) == 1
    _one_line(capsys.readouterr().err, REFUSED)


def test_a_broker_that_never_answers_is_given_up_on_within_seconds(capsys):
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:  # accepts, never speaks Kafka
        bootstrap = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        assert main(["topics", "create", "--bootstrap", bootstrap, "--log-level", "ERROR"]) == 1
    assert time.monotonic() - started < 3 * CONNECT_TIMEOUT_S
    assert f"{CONNECT_TIMEOUT_S:g} s" in _one_line(capsys.readouterr().err, bootstrap)


def test_a_closed_stdout_ends_quietly_with_exit_1(tmp_path):
    """As `resontinex budget-gate … | head -1` when head has gone: Python's own exit on a
    broken pipe would be 120 with an 'Exception ignored … BrokenPipeError' message."""
    runs = report(("refund_flow", [1000.0] * 50, [800.0] * 50))
    path = write(tmp_path / "report.json", {"baseline": runs, "current": runs})
    proc = subprocess.Popen([sys.executable, "-m", "resontinex.app.cli", "budget-gate", "--report-file", path,
                             "--output-format", "json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        proc.stdout.close()  # the reader is gone before the first byte is written
        err = proc.stderr.read().decode()
        assert proc.wait(60) == 1
    finally:
        stop_process(proc)
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_a_worker_on_a_web_port_in_use_is_refused_in_one_line(capsys):
    with socket.create_server(("127.0.0.1", 0)) as other:
        busy = other.getsockname()[1]
        argv = ["worker", "--role", "core", "--web-port", str(busy), "--bootstrap", REFUSED, "--log-level", "ERROR"]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"port {busy} is already in use (--web-port)" in err
