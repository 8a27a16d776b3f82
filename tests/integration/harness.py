"""Real processes for integration tests: the embedded broker, workers, a Kafka client.

Every process started here is stopped by pid with a deadline (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from resontinex.app.broker import port_free
from resontinex.app.settings import EMBEDDED_BROKER_ENV

REPO = Path(__file__).resolve().parents[2]
STOP_DEADLINE_S = 10.0


def stop_process(proc: subprocess.Popen, deadline_s: float = STOP_DEADLINE_S) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(deadline_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(deadline_s)


@dataclass
class Worker:
    proc: subprocess.Popen
    web_port: int
    log_path: Path

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=1) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                return json.loads(e.read())
            except ValueError:
                return None
        except Exception:
            return None

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            h = self.health()
            if h and h.get("ready"):
                return h
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_DEADLINE_S)

    def stop(self) -> None:
        stop_process(self.proc)


def listen_ports(n: int = 1) -> int:
    """The first of `n` consecutive ports free now, below the kernel's ephemeral range.

    For a server a child process starts later: a port from bind(0) lies in the ephemeral
    range, where a client connection opened meanwhile (a worker's own, to the broker) can
    take it first.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        first = random.randrange(10_000, low - n)
        if all(port_free("0.0.0.0", p) and port_free("127.0.0.1", p) for p in range(first, first + n)):
            return first
    raise AssertionError(f"no {n} consecutive free ports below {low}")


def start_worker(bootstrap: str, data_dir: Path, *, env: dict[str, str] | None = None, web_port: int | None = None,
                 role: str = "core") -> Worker:
    port = web_port or listen_ports()
    log_path = data_dir / f"worker-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "RESONTINEX_DATA_DIR": str(data_dir), EMBEDDED_BROKER_ENV: "1", **(env or {})}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "resontinex.app.cli", "worker", "--role", role, "--bootstrap", bootstrap, "--web-port", str(port)],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return Worker(proc, port, log_path)


async def produce(bootstrap: str, topic: str, items: Iterable[tuple[bytes | None, bytes]], **kw: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=16 * 1024 * 1024, **kw)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, *, expect: int | None = None, timeout_s: float = 60.0,
                   settle_s: float = 2.0) -> list[Any]:
    """Every record of `topic` (all partitions) as (partition, offset, key, decoded value).

    Reads until at least `expect` records arrived and then nothing new came for `settle_s`,
    never trusting end offsets alone (the embedded broker under-reports them).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata for a new topic
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                for m in msgs:
                    out.append((tp.partition, m.offset, m.key, orjson.loads(m.value)))
            if batch:
                quiet_since = time.monotonic()
            # past `expect`, keep reading until quiet so that extra (duplicate) records show up
            if (expect is None or len(out) >= expect) and time.monotonic() - quiet_since >= settle_s:
                break
        return out
    finally:
        await consumer.stop()


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def system_tool(name: str, apt_package: str) -> tuple[str | None, str]:
    """The path of command `name`, installing Debian's `apt_package` first where it is
    missing and this runs as root; else (None, why not) for a skip reason."""
    found = shutil.which(name)
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found, f"needs {name}: `apt-get install {apt_package}` (as root) puts it on PATH"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", apt_package]):
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return None, f"needs {name}: `{' '.join(step)}` took over 300 s"
        if done.returncode != 0:
            return None, f"needs {name}: `{' '.join(step)}` failed: {done.stderr.strip()[-300:]}"
    return shutil.which(name), f"needs {name}: installing {apt_package} did not put it on PATH"
