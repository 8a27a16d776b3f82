"""`resontinex up`: broker, topics, supervised worker, READY line, clean stop."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest

from resontinex.agents.trajectory import unavailable_reason
from resontinex.app.broker import port_free
from resontinex.topics import REGISTRY

from .conftest import run
from .harness import REPO, STOP_DEADLINE_S, alive, descendants, listen_ports, produce, read_all, stop_process

pytestmark = pytest.mark.integration


# Time to READY is dominated by the trajectory worker loading its model (about 35 s here, more on a
# loaded CI machine); the tests check that READY comes, not how fast.
READY_S = 240


class Stdout:
    """A child's stdout read line by line with a deadline (os.read, so no line waits in a buffer)."""

    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.pending = b""

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else "(no log)"

    def lines_until(self, needle: str, timeout_s: float) -> list[str]:
        """Lines up to and including the first one containing `needle`."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                lines.append(line.decode())
                if needle in lines[-1]:
                    return lines
            if self.proc.poll() is not None:
                raise AssertionError(f"up exited with {self.proc.returncode}; its log ends:\n{self._log_tail()}")
            if select.select([self.proc.stdout], [], [], 0.5)[0]:
                self.pending += os.read(self.proc.stdout.fileno(), 65536)
        raise AssertionError(f"no {needle!r} line within {timeout_s}s; up's log ends:\n{self._log_tail()}")

    def line_with(self, needle: str, timeout_s: float) -> str:
        return self.lines_until(needle, timeout_s)[-1].strip()


class Up(NamedTuple):
    proc: subprocess.Popen
    out: Stdout
    port: int
    web_port: int


def _start_up(tmp_path: Path, *flags: str, data_dir: Path | None = None, port: int | None = None,
              web_port: int | None = None, cwd: Path = REPO, env: dict[str, str] | None = None) -> Up:
    if port is None or web_port is None:
        base = listen_ports(4)  # one call: two calls could hand out overlapping ports
        port, web_port = port or base, web_port or base + 1
    full_env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    full_env.update(PYTHONPATH=str(REPO), RESONTINEX_DATA_DIR=str(data_dir or tmp_path), **(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "resontinex.app.cli", "up", *flags, "--port", str(port), "--web-port", str(web_port)],
        cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=open(tmp_path / "up.log", "ab"),
        start_new_session=True,
    )
    return Up(proc, Stdout(proc, tmp_path / "up.log"), port, web_port)


def _stop_leaving_nothing(up: Up, sig: signal.Signals, embedded: bool = True) -> None:
    """`sig` stops `up` with exit 0, and with it every process it started; its broker's port is free."""
    tree = descendants(up.proc.pid)
    assert tree, "up has no children"
    up.proc.send_signal(sig)
    try:
        assert up.proc.wait(30) == 0
        deadline = time.monotonic() + 10
        while any(alive(p) for p in tree):
            assert time.monotonic() < deadline, f"orphans left: {[p for p in tree if alive(p)]}"
            time.sleep(0.1)
        assert not embedded or port_free("127.0.0.1", up.port), f"port {up.port} still held"
    finally:
        for pid in tree:  # what a failure left behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _request(i: int) -> tuple[bytes, bytes]:
    return b"acme", orjson.dumps({"event_id": f"u-{i}", "tenant": "acme",
                                  "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}})


def _expected_roles() -> list[str]:
    return ["core", "trajectory", "gateway"] if unavailable_reason("smollm2") is None else ["core", "gateway"]


def test_up_is_quiet_until_ready_says_where_everything_is_supervises_and_stops_cleanly(tmp_path):
    """One start of every role (the trajectory model's load is most of a start): READY
    first, the pages it lists, decisions on prefixed topics, a killed worker restarted, a
    clean stop."""
    up = _start_up(tmp_path, env={"RESONTINEX_TOPIC_PREFIX": "t1."})
    try:
        before = up.out.lines_until("READY", READY_S)
        assert before == [f"READY bootstrap=127.0.0.1:{up.port}"]  # the first line on stdout, exactly
        logged = (tmp_path / "up.log").read_bytes().count(b"\n")
        # ~28 lines: each process's start (core, trajectory, gateway) and the model's load; a
        # loaded machine adds Faust's "Task timed out" warnings. Quiet means dozens, not the
        # hundreds of a DEBUG start.
        assert logged < 45, (tmp_path / "up.log").read_text(errors="replace")

        after = "\n".join(up.out.lines_until("subscribe to", 10))
        assert f"bootstrap     127.0.0.1:{up.port}" in after
        urls = re.findall(r"http://\S+", after)
        pages = {"core": {"/ui", "/health", "/metrics", "/stats/trust", "/budget/status", "/router/status",
                          "/coordination/status", "/enhancements/status"},
                 "trajectory": {"/health", "/metrics", "/trajectory/health"},
                 "gateway": {"/health", "/metrics", "/v1/openapi.json"}}
        offsets = {"core": 0, "trajectory": 1, "gateway": 2}  # a role's port is the same whichever roles run
        expected = {f"http://127.0.0.1:{up.web_port + offsets[role]}{page}"
                    for role in _expected_roles() for page in pages[role]}
        assert set(urls) == expected
        for url in urls:
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert resp.status == 200, url
        topics = {d: " ".join(f"t1.{t.name}" for t in REGISTRY if t.direction == d) for d in ("in", "out")}
        assert f"publish to    {topics['in']}" in after and f"subscribe to  {topics['out']}" in after

        bootstrap = f"127.0.0.1:{up.port}"
        run(produce(bootstrap, "t1.decision-requests", [_request(i) for i in range(10)]))
        assert len(run(read_all(bootstrap, "t1.decisions", expect=10))) == 10

        # a worker that dies is restarted, and the restart is logged
        cmdlines = {p: open(f"/proc/{p}/cmdline", "rb").read().split(b"\0") for p in descendants(up.proc.pid)}
        roles = sorted(c[c.index(b"--role") + 1].decode() for c in cmdlines.values() if b"worker" in c)
        assert roles == sorted(_expected_roles())
        workers = [p for p, c in cmdlines.items() if b"worker" in c and b"core" in c]
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while b"worker died; restarting" not in (tmp_path / "up.log").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        run(produce(bootstrap, "t1.decision-requests", [_request(i) for i in range(10, 20)]))
        assert len(run(read_all(bootstrap, "t1.decisions", expect=20, timeout_s=90))) == 20

        _stop_leaving_nothing(up, signal.SIGTERM)
        assert not list(tmp_path.glob("run-*")), "the run's state directory is left"
    finally:
        stop_process(up.proc)


def test_a_second_up_in_the_same_folder_starts_on_fresh_state_and_a_closed_terminal_stops_it(tmp_path):
    """Two starts in one folder, the second stopped as a closed terminal stops it (SIGHUP)."""
    port = listen_ports(3)
    web_port = port + 1
    for attempt in range(2):
        # the default data dir (.resontinex/ in the working directory), the same ports each time
        up = _start_up(tmp_path, "--roles", "core", port=port, web_port=web_port, cwd=tmp_path,
                       data_dir=Path(".resontinex"))
        try:
            assert up.out.line_with("READY", READY_S) == f"READY bootstrap=127.0.0.1:{port}", attempt
            # the new broker is empty: so is every worker's state (no tenant seen yet)
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/stats/trust", timeout=5) as resp:
                assert orjson.loads(resp.read())["tenants"] == {}, attempt
            bootstrap = f"127.0.0.1:{port}"
            run(produce(bootstrap, "decision-requests", [_request(i) for i in range(10)]))
            assert len(run(read_all(bootstrap, "decisions", expect=10))) == 10
            _stop_leaving_nothing(up, (signal.SIGTERM, signal.SIGHUP)[attempt])
        finally:
            stop_process(up.proc)
        assert not list((tmp_path / ".resontinex").glob("run-*")), "the run's state directory is left"


@pytest.mark.parametrize("held", ["--port", "--web-port"])
def test_a_port_in_use_is_refused_before_anything_starts(tmp_path, held):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        busy = other.getsockname()[1]
        ports = {"port": busy} if held == "--port" else {"web_port": busy}
        up = _start_up(tmp_path, "--roles", "core", data_dir=tmp_path / "data", **ports)
        try:
            assert up.proc.wait(STOP_DEADLINE_S * 3) == 2
        finally:
            stop_process(up.proc)
    err = (tmp_path / "up.log").read_text()
    assert f"port {busy} is already in use ({held}" in err
    assert "embedded broker ready" not in err and "worker started" not in err
    assert not (tmp_path / "data").exists()


def test_up_with_a_configured_kafka_starts_no_broker(broker, tmp_path):
    up = _start_up(tmp_path, "--bootstrap", broker.bootstrap, "--roles", "core")
    try:
        assert up.out.line_with("READY", READY_S) == f"READY bootstrap={broker.bootstrap}"
        children = [open(f"/proc/{p}/cmdline", "rb").read() for p in descendants(up.proc.pid)]
        assert children and not any(b"tansu" in c for c in children)
        # state that outlives `up` stays where the data dir says, beside the Kafka that keeps it
        assert (tmp_path / f"core-{up.web_port}").is_dir() and not list(tmp_path.glob("run-*"))
        _stop_leaving_nothing(up, signal.SIGTERM, embedded=False)
        assert (tmp_path / f"core-{up.web_port}").is_dir()
    finally:
        stop_process(up.proc)


def test_up_demo_shows_live_figures_in_a_readable_terminal_and_stops_on_ctrl_c(tmp_path):
    up = _start_up(tmp_path, "--demo", "--log-format", "console", data_dir=tmp_path / "not" / "yet" / "there")
    try:
        up.out.line_with("READY", READY_S)
        deadline = time.monotonic() + 90
        while True:  # until the demo's bad events have made a few dozen dead letters
            line = up.out.line_with("decisions/s=", 60)
            if int(line.split("dead_letters=")[1].split()[0]) >= 30:
                break
            assert time.monotonic() < deadline, line
        assert int(line.split("decisions=")[1].split()[0]) > 0
        assert "verbs[execute=" in line and "tiers[pass=" in line
        line = up.out.line_with("enhancements[demo-concise-prompt=active canary 20%]", 30)  # its canary runs
        _stop_leaving_nothing(up, signal.SIGINT)
    finally:
        stop_process(up.proc)
    logged = (tmp_path / "up.log").read_text(errors="replace").splitlines()
    assert not [entry for entry in logged if entry.startswith("{")], "workers logged JSON to the console"
    warnings = Counter(entry.split(" WARNING ", 1)[1].split(" event_id=")[0] for entry in logged if " WARNING " in entry)
    # dozens of dead letters, each logged: a warning kind is shown once a minute at most
    dead_letters = [kind for kind in warnings if kind.endswith(": dead letter")]  # logger: the core that found it
    assert dead_letters and 1 <= sum(warnings[k] for k in dead_letters) <= 2 * len(dead_letters), warnings
    assert max(warnings.values()) <= 2, warnings
