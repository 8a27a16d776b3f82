"""`resontinex up`: broker, topics, supervised worker, READY line, clean stop."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

import orjson
import pytest

from agents.trajectory import unavailable_reason
from app.broker import free_port

from .conftest import run
from .harness import REPO, alive, descendants, produce, read_all, stop_process

pytestmark = pytest.mark.integration


def _read_line_with(proc: subprocess.Popen, needle: str, timeout_s: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"up exited with {proc.returncode}")
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if needle in line:
                return line.strip()
    raise AssertionError(f"no {needle!r} line within {timeout_s}s")


def _start_up(tmp_path, *flags: str, data_dir=None) -> tuple[subprocess.Popen, int]:
    port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["RESONTINEX_DATA_DIR"] = str(data_dir or tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", *flags, "--port", str(port), "--web-port", str(web_port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(tmp_path / "up.log", "wb"),
        text=True, start_new_session=True,
    )
    return proc, port


def _stop_leaving_nothing(proc: subprocess.Popen, sig: signal.Signals) -> None:
    tree = descendants(proc.pid)
    assert tree, "up has no children"
    proc.send_signal(sig)
    assert proc.wait(30) == 0
    deadline = time.monotonic() + 10
    while any(alive(p) for p in tree):
        assert time.monotonic() < deadline, f"orphans left: {[p for p in tree if alive(p)]}"
        time.sleep(0.1)


def _request(i: int) -> tuple[bytes, bytes]:
    return b"acme", orjson.dumps({"event_id": f"u-{i}", "tenant": "acme",
                                  "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}})


def test_up_runs_supervises_and_stops_cleanly(tmp_path):
    proc, port = _start_up(tmp_path)
    try:
        line = _read_line_with(proc, "READY", 90)
        assert line == f"READY bootstrap=127.0.0.1:{port}"
        bootstrap = f"127.0.0.1:{port}"
        run(produce(bootstrap, "decision-requests", [_request(i) for i in range(10)]))
        assert len(run(read_all(bootstrap, "decisions", expect=10))) == 10

        # a worker that dies is restarted, and the restart is logged
        cmdlines = {p: open(f"/proc/{p}/cmdline", "rb").read().split(b"\0") for p in descendants(proc.pid)}
        roles = sorted(c[c.index(b"--role") + 1].decode() for c in cmdlines.values() if b"worker" in c)
        assert roles == (["core", "trajectory"] if unavailable_reason("smollm2") is None else ["core"])
        workers = [p for p, c in cmdlines.items() if b"worker" in c and b"core" in c]
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while b"worker died; restarting" not in (tmp_path / "up.log").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        run(produce(bootstrap, "decision-requests", [_request(i) for i in range(10, 20)]))
        assert len(run(read_all(bootstrap, "decisions", expect=20, timeout_s=90))) == 20

        _stop_leaving_nothing(proc, signal.SIGTERM)
    finally:
        stop_process(proc)


def test_up_demo_shows_live_figures_and_stops_on_ctrl_c(tmp_path):
    proc, _ = _start_up(tmp_path, "--demo", data_dir=tmp_path / "not" / "yet" / "there")
    try:
        _read_line_with(proc, "READY", 90)
        deadline = time.monotonic() + 60
        while True:
            line = _read_line_with(proc, "decisions/s=", 60)
            decided = int(line.split("decisions=")[1].split()[0])
            if decided > 0:
                break
            assert time.monotonic() < deadline, line
        assert "verbs[execute=" in line and "tiers[pass=" in line
        _stop_leaving_nothing(proc, signal.SIGINT)
    finally:
        stop_process(proc)


def test_up_with_a_configured_kafka_starts_no_broker(broker, tmp_path):
    proc, _ = _start_up(tmp_path, "--bootstrap", broker.bootstrap)
    try:
        assert _read_line_with(proc, "READY", 90) == f"READY bootstrap={broker.bootstrap}"
        children = [open(f"/proc/{p}/cmdline", "rb").read() for p in descendants(proc.pid)]
        assert children and not any(b"tansu" in c for c in children)
        _stop_leaving_nothing(proc, signal.SIGTERM)
    finally:
        stop_process(proc)
