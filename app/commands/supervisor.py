"""`resontinex up`: the embedded broker (when no Kafka is configured), topics, workers.

Every port is checked before anything starts; a busy one is refused (exit 2). On the
embedded broker, workers keep their state in a directory of this run (app/rundir.py),
since the broker keeps nothing between runs; with a configured Kafka, in the data dir.
Workers are child processes in their own process groups, each told the run's id
(`RESONTINEX_RUN_ID`): `up` is ready once every worker's `/health` is ready for this run,
so another stack's worker answering on the same port never counts. One that dies is
restarted with exponential backoff (1 s doubling to 30 s, reset after a minute of good
health) and the reason is logged. SIGINT, SIGTERM and SIGHUP (terminal closed) stop the
workers (SIGTERM, then SIGKILL after a deadline) and then the broker, so nothing is left
behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Awaitable, Callable, Mapping

import orjson

from resontinex.topics import REGISTRY

from resontinex.app.commands.admin import create_topics
from resontinex.app.broker import EmbeddedBroker, port_free
from resontinex.app.exceptions import UsageError
from resontinex.app.rundir import fresh_run_dir
from resontinex.app.settings import EMBEDDED_BROKER_ENV, ROLES, Settings

log = logging.getLogger(__name__)

STOP_DEADLINE_S = 10.0
BACKOFF_MAX_S = 30.0
HEALTHY_RESET_S = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# The pages each role's worker serves (app/web.py), listed once `up` is ready.
PAGES = {
    "core": ("/ui", "/health", "/metrics", "/stats/trust", "/budget/status", "/router/status",
             "/coordination/status", "/enhancements/status"),
    "trajectory": ("/health", "/metrics", "/trajectory/health"),
    "gateway": ("/health", "/metrics", "/v1/openapi.json"),
}


@dataclass
class WorkerProcess:
    role: str
    web_port: int
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = 1.0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"


def role_ports(roles: list[str], web_port: int) -> dict[str, int]:
    """Each role's web port: a role keeps its place after `web_port` whichever roles run.

    >>> role_ports(["core", "gateway"], 6066)
    {'core': 6066, 'gateway': 6068}
    """
    return {role: web_port + ROLES.index(role) for role in roles}


def worker_argv(settings: Settings, role: str, web_port: int, log_level: str = "INFO",
                log_format: str = "auto") -> list[str]:
    argv = [sys.executable, "-m", "resontinex.app.cli", "worker", "--role", role, "--web-port", str(web_port),
            "--bootstrap", settings.bootstrap, "--log-level", log_level, "--log-format", log_format]
    if settings.config_dir is not None:
        argv += ["--config-dir", str(settings.config_dir)]
    return argv


def worker_env(settings: Settings, run_id: str, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """A worker's environment: `up`'s, with this run's id and data dir (and, on the embedded
    broker, word of it: `Settings.embedded_broker`)."""
    embedded = {EMBEDDED_BROKER_ENV: "1"} if settings.embedded else {}
    return {**base, "RESONTINEX_DATA_DIR": str(settings.data_dir), "RESONTINEX_RUN_ID": run_id, **embedded}


def where(settings: Settings, workers: list[WorkerProcess]) -> str:
    """What `up` prints once ready: the bootstrap, each worker's pages, the topics.

    >>> s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "RESONTINEX_TOPIC_PREFIX": "t."})
    >>> print(where(s, [WorkerProcess("core", 6066, [])]))
    bootstrap     k:9092
    core worker   http://127.0.0.1:6066/ui
                  http://127.0.0.1:6066/health
                  http://127.0.0.1:6066/metrics
                  http://127.0.0.1:6066/stats/trust
                  http://127.0.0.1:6066/budget/status
                  http://127.0.0.1:6066/router/status
                  http://127.0.0.1:6066/coordination/status
                  http://127.0.0.1:6066/enhancements/status
    publish to    t.decision-requests t.outcomes t.costs t.telemetry t.trajectory-requests t.coordination-requests t.enhancements t.control
    subscribe to  t.decisions t.alerts t.trajectory-results t.coordination-results t.enhancement-events t.audit t.dead-letters
    """
    rows = [("bootstrap", settings.bootstrap)]
    for w in workers:
        rows += [(f"{w.role} worker" if i == 0 else "", w.url(path)) for i, path in enumerate(PAGES[w.role])]
    for label, direction in (("publish to", "in"), ("subscribe to", "out")):
        rows.append((label, " ".join(settings.topic(t.id) for t in REGISTRY if t.direction == direction)))
    return "\n".join(f"{label:13} {value}" for label, value in rows)


class Supervisor:
    def __init__(self, settings: Settings, roles: list[str], web_port: int, run_id: str,
                 log_level: str = "INFO", log_format: str = "auto") -> None:
        self.settings = settings
        self.run_id = run_id
        self.env = worker_env(settings, run_id)
        self.workers = [
            WorkerProcess(role, port, worker_argv(settings, role, port, log_level, log_format))
            for role, port in role_ports(roles, web_port).items()
        ]
        self._stopping = asyncio.Event()

    async def run(self, on_ready: Callable[[], Awaitable[None]] | None = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._stopping.set)
        summary = await create_topics(self.settings)
        log.info("topics ready", extra={"topics": summary})
        watchers = [asyncio.create_task(self._watch(w)) for w in self.workers]
        extra: asyncio.Task | None = None
        try:
            if await self._wait_ready():
                print(f"READY bootstrap={self.settings.bootstrap}", flush=True)
                print(where(self.settings, self.workers), flush=True)
                if on_ready is not None:
                    extra = asyncio.create_task(on_ready())
            await self._stopping.wait()
        finally:
            log.info("stopping workers")
            for task in [*watchers, *([extra] if extra else [])]:
                task.cancel()
            await asyncio.gather(*watchers, *([extra] if extra else []), return_exceptions=True)
            await asyncio.gather(*(self._stop(w) for w in self.workers))
        return 0

    async def _wait_ready(self) -> bool:
        while not self._stopping.is_set():
            states = await asyncio.gather(*(asyncio.to_thread(_ready, w.url("/health"), self.run_id)
                                            for w in self.workers))
            if all(states):
                return True
            await asyncio.sleep(0.25)
        return False

    async def _watch(self, w: WorkerProcess) -> None:
        while not self._stopping.is_set():
            w.started_at = time.monotonic()
            try:
                w.process = await asyncio.create_subprocess_exec(
                    *w.argv, env=self.env, stdout=sys.stderr, stderr=sys.stderr, start_new_session=True
                )
                log.info("worker started", extra={"role": w.role, "pid": w.process.pid, "web_port": w.web_port})
                why = _why(await w.process.wait())
            except OSError as exc:
                why = f"could not start: {exc}"
            if self._stopping.is_set():
                return
            if time.monotonic() - w.started_at > HEALTHY_RESET_S:
                w.backoff_s = 1.0
            w.restarts += 1
            log.error(
                "worker died; restarting",
                extra={"role": w.role, "why": why, "restart": w.restarts, "backoff_s": w.backoff_s},
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), w.backoff_s)
            except asyncio.TimeoutError:
                pass
            w.backoff_s = min(BACKOFF_MAX_S, w.backoff_s * 2)

    async def _stop(self, w: WorkerProcess) -> None:
        proc = w.process
        if proc is None or proc.returncode is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_DEADLINE_S)
        except asyncio.TimeoutError:
            log.warning("worker did not stop in time; killing", extra={"pid": proc.pid})
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()


def run_up(settings: Settings, roles: list[str], port: int, web_port: int,
           on_ready: Callable[[Settings], Awaitable[None]] | None = None, *,
           log_level: str = "INFO", log_format: str = "auto") -> int:
    broker_port = [("--port (embedded broker)", "127.0.0.1", port)] if settings.embedded else []
    web_ports = [(f"--web-port ({role} worker)", "0.0.0.0", p) for role, p in role_ports(roles, web_port).items()]
    check_ports(broker_port + web_ports)
    for sig in STOP_SIGNALS[1:]:  # until the supervisor's loop takes them over, stop as Ctrl-C does
        signal.signal(sig, signal.default_int_handler)
    run_id = secrets.token_hex(8)
    with ExitStack() as stack:
        if settings.embedded:
            data_dir = stack.enter_context(fresh_run_dir(settings.data_dir, run_id))
            broker = stack.enter_context(EmbeddedBroker(port=port))
            settings = replace(settings.with_bootstrap(broker.bootstrap), data_dir=data_dir)
        supervisor = Supervisor(settings, roles, web_port, run_id, log_level, log_format)
        return asyncio.run(supervisor.run((lambda: on_ready(settings)) if on_ready else None))


def check_ports(wanted: list[tuple[str, str, int]]) -> None:
    """Refuse (UsageError) a port given twice or already in use; `wanted` holds (what, host, port).

    >>> check_ports([("--port", "127.0.0.1", 0), ("--web-port", "0.0.0.0", 0)])
    >>> check_ports([("--port", "127.0.0.1", 7000), ("--web-port", "0.0.0.0", 7000)])
    Traceback (most recent call last):
    resontinex.app.exceptions.UsageError: port 7000 is given for --port and --web-port
    """
    seen: dict[int, str] = {}
    for what, _, port in wanted:
        if port and port in seen:
            raise UsageError(f"port {port} is given for {seen[port]} and {what}")
        seen[port] = what
    for what, host, port in wanted:
        if not port_free(host, port):
            raise UsageError(f"port {port} is already in use ({what}): stop what holds it or choose another port")


def _ready(url: str, run_id: str) -> bool:
    """Whether the worker at `url` is ready and is this run's (503 until ready raises here)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            body = orjson.loads(resp.read())
    except Exception:
        return False
    return bool(body.get("ready")) and body.get("run_id") == run_id


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _why(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:  # real-time signals have no name
            return f"killed by signal {-code}"
    return f"exited with code {code}"
