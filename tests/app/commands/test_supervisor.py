import json
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from resontinex.app.exceptions import UsageError
from resontinex.app.settings import Settings
from resontinex.app.commands.supervisor import _ready, _why, check_ports, worker_argv, worker_env


def test_why_names_signals_including_unnamed_ones():
    assert _why(-signal.SIGKILL) == "killed by SIGKILL"
    assert _why(-35) == "killed by signal 35"
    assert _why(70) == "exited with code 70"


def test_workers_get_the_bootstrap_config_dir_and_log_flags_of_up(tmp_path):
    s = Settings.from_env({}, bootstrap="k:1", config_dir=str(tmp_path))
    argv = worker_argv(s, "core", 6070, "WARNING", "console")
    assert argv[1:4] == ["-m", "resontinex.app.cli", "worker"]
    assert argv[argv.index("--bootstrap") + 1] == "k:1" and argv[argv.index("--config-dir") + 1] == str(tmp_path)
    assert argv[argv.index("--web-port") + 1] == "6070"
    assert argv[argv.index("--log-level") + 1] == "WARNING" and argv[argv.index("--log-format") + 1] == "console"


def test_workers_get_the_run_id_and_the_data_dir_of_the_run():
    s = Settings.from_env({"RESONTINEX_DATA_DIR": "/tmp/run-1-x"})
    env = worker_env(s, "abc", {"PATH": "/bin", "RESONTINEX_DATA_DIR": ".resontinex"})
    assert env == {"PATH": "/bin", "RESONTINEX_DATA_DIR": "/tmp/run-1-x", "RESONTINEX_RUN_ID": "abc",
                   "RESONTINEX_EMBEDDED_BROKER": "1"}  # `up` started the broker: its workers probe ListOffsets
    on_kafka = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"})
    assert "RESONTINEX_EMBEDDED_BROKER" not in worker_env(on_kafka, "abc", {})


@pytest.fixture
def health_server():
    """A real HTTP server answering /health with the body the test sets."""
    body: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", body
    finally:
        server.shutdown()
        server.server_close()


def test_a_ready_worker_of_another_run_is_not_ready_for_this_one(health_server):
    url, body = health_server
    body.update(ready=True, run_id="other-stack")
    assert not _ready(url, "mine")
    body.update(run_id="mine")
    assert _ready(url, "mine")
    body.update(ready=False)
    assert not _ready(url, "mine")


def test_a_port_in_use_is_refused_by_number():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} is already in use \\(--web-port \\(core worker\\)\\)"):
            check_ports([("--port (embedded broker)", "127.0.0.1", 0), ("--web-port (core worker)", "0.0.0.0", port)])
    check_ports([("--web-port (core worker)", "0.0.0.0", port)])  # free again
