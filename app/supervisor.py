"""`resontinex up`: the embedded broker (when no Kafka is configured), topics, workers.

Workers are child processes in their own process groups. One that dies is restarted
with exponential backoff (1 s doubling to 30 s, reset after a minute of good health)
and the reason is logged. SIGINT/SIGTERM stop the workers (SIGTERM, then SIGKILL after
a deadline) and then the broker, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Awaitable, Callable

import orjson

from .admin import create_topics
from .broker import EmbeddedBroker
from .settings import Settings

log = logging.getLogger(__name__)

STOP_DEADLINE_S = 10.0
BACKOFF_MAX_S = 30.0
HEALTHY_RESET_S = 60.0


@dataclass
class WorkerProcess:
    role: str
    web_port: int
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = 1.0

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/health"


def worker_argv(settings: Settings, role: str, web_port: int) -> list[str]:
    argv = [sys.executable, "-m", "app.cli", "worker", "--role", role, "--web-port", str(web_port),
            "--bootstrap", settings.bootstrap]
    if settings.config_dir is not None:
        argv += ["--config-dir", str(settings.config_dir)]
    return argv


class Supervisor:
    def __init__(self, settings: Settings, roles: list[str], web_port: int) -> None:
        self.settings = settings
        self.workers = [
            WorkerProcess(role, web_port + i, worker_argv(settings, role, web_port + i)) for i, role in enumerate(roles)
        ]
        self._stopping = asyncio.Event()

    async def run(self, on_ready: Callable[[], Awaitable[None]] | None = None) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        summary = await create_topics(self.settings)
        log.info("topics ready", extra={"topics": summary})
        watchers = [asyncio.create_task(self._watch(w)) for w in self.workers]
        extra: asyncio.Task | None = None
        try:
            if await self._wait_ready():
                print(f"READY bootstrap={self.settings.bootstrap}", flush=True)
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
            states = await asyncio.gather(*(asyncio.to_thread(_ready, w.health_url) for w in self.workers))
            if all(states):
                return True
            await asyncio.sleep(0.25)
        return False

    async def _watch(self, w: WorkerProcess) -> None:
        while not self._stopping.is_set():
            w.started_at = time.monotonic()
            try:
                w.process = await asyncio.create_subprocess_exec(
                    *w.argv, stdout=sys.stderr, stderr=sys.stderr, start_new_session=True
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
           on_ready: Callable[[Settings], Awaitable[None]] | None = None) -> int:
    broker = EmbeddedBroker(port=port) if settings.embedded else None
    if broker is not None:
        broker.start()
        settings = settings.with_bootstrap(broker.bootstrap)
    try:
        supervisor = Supervisor(settings, roles, web_port)
        return asyncio.run(supervisor.run((lambda: on_ready(settings)) if on_ready else None))
    finally:
        if broker is not None:
            broker.stop()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return bool(orjson.loads(resp.read()).get("ready"))
    except Exception:
        return False


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
