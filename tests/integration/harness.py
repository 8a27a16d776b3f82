"""Real processes for integration tests: the embedded broker, workers, a Kafka client.

Every process started here is stopped by pid with a deadline (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
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
    host: str = "127.0.0.1"

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.web_port}/health", timeout=1) as r:
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
            with urllib.request.urlopen(f"http://{self.host}:{self.web_port}{path}", timeout=2) as r:
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


# ----------------------------------------------------------------------------- hosts in network namespaces

class NetnsError(RuntimeError):
    """A namespace, link or address could not be made (not root, no `ip`, no CAP_NET_ADMIN...)."""


class NetnsHosts:
    """Separate "hosts" on this machine: one Linux network namespace per name, each with a
    veth to a bridge in the root namespace and its own address on a private /24 (never
    loopback: each namespace's `lo` is up, as on any host, but peers see only the /24). The
    root namespace reaches every host through the bridge's address in the same /24.

    Names are tagged with this process's pid so a parallel run does not clash; `destroy`
    removes what `create` made (also after a partial `create`) and returns what it could not.
    """

    def __init__(self, names: Iterable[str], tag: str | None = None) -> None:
        tag = tag or str(os.getpid())
        self.names = list(names)
        if len(self.names) > 9 or len(tag) > 9:
            raise ValueError("at most 9 hosts and a tag of at most 9 characters (interface names ≤ 15)")
        self.bridge = f"rxb{tag}"
        self.netns = {name: f"rx{tag}-{name}" for name in self.names}
        self._root_end = {name: f"rx{tag}h{i}" for i, name in enumerate(self.names)}
        self._ns_end = {name: f"rx{tag}n{i}" for i, name in enumerate(self.names)}
        self.subnet = _free_subnet(int(tag) if tag.isdigit() else sum(map(ord, tag)))
        hosts = list(self.subnet.hosts())
        self.address = {name: str(hosts[10 + i]) for i, name in enumerate(self.names)}
        self.gateway = str(hosts[-1])  # the bridge's address: the root namespace's on this /24

    def create(self) -> None:
        self.destroy()  # leftovers of a killed run that had the same pid
        prefix = self.subnet.prefixlen
        self._ip("link", "add", self.bridge, "type", "bridge")
        self._ip("addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        for name, ns in self.netns.items():
            self._ip("netns", "add", ns)
            self._ip("link", "add", self._root_end[name], "type", "veth", "peer", "name", self._ns_end[name], "netns", ns)
            self._ip("link", "set", self._root_end[name], "master", self.bridge)
            self._ip("link", "set", self._root_end[name], "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "addr", "add", f"{self.address[name]}/{prefix}", "dev", self._ns_end[name])
            self._ip("-n", ns, "link", "set", self._ns_end[name], "up")
        deadline = time.monotonic() + 10  # the bridge forwards once its ports leave the listening state
        for name in self.names:
            while not _pings(self.address[name]):
                if time.monotonic() > deadline:
                    raise NetnsError(f"{name} ({self.address[name]} in {self.netns[name]}) does not answer a ping")
                time.sleep(0.1)

    def destroy(self) -> list[str]:
        """Remove the veths, namespaces and bridge; what could not be removed (empty: all gone).
        Stop the processes inside first: a namespace outlives its name while one runs there."""
        for name in self.names:
            _quiet(["ip", "link", "del", self._root_end[name]])  # its peer goes with it
            _quiet(["ip", "netns", "del", self.netns[name]])
        _quiet(["ip", "link", "del", self.bridge])
        left = [f"namespace {ns}" for ns in self.netns.values() if Path(f"/run/netns/{ns}").exists()]
        left += [f"link {link}" for link in (self.bridge, *self._root_end.values()) if Path(f"/sys/class/net/{link}").exists()]
        return left

    def popen(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
        """`argv` in host `name`'s namespace, in a session of its own. `ip netns exec` execs
        the command: the pid is the command's own (so `stop_process` and `Worker.kill` work)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            return subprocess.Popen(["ip", "netns", "exec", self.netns[name], *argv], cwd=REPO, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start_worker(self, name: str, bootstrap: str, data_dir: Path, *, web_port: int = 6066,
                     env: dict[str, str] | None = None, role: str = "core") -> "NetnsWorker":
        """A worker on host `name`, advertising the host's address (RESONTINEX_ADVERTISED_HOST)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "RESONTINEX_DATA_DIR": str(data_dir), EMBEDDED_BROKER_ENV: "1",
                    "RESONTINEX_ADVERTISED_HOST": self.address[name], **(env or {})}
        argv = [sys.executable, "-m", "resontinex.app.cli", "worker", "--role", role, "--bootstrap", bootstrap,
                "--web-port", str(web_port)]
        log_path = data_dir / f"worker-{web_port}.log"
        return NetnsWorker(self.popen(name, argv, env=full_env, log_path=log_path), web_port, log_path,
                           host=self.address[name], name=name)

    def start_broker(self, name: str, log_path: Path, *, port: int = 9092, timeout_s: float = 30.0) -> "NetnsBroker":
        """The embedded broker (`EmbeddedBroker(host=...)`) on host `name`'s address."""
        proc = self.popen(name, [sys.executable, "-c", _NS_BROKER, self.address[name], str(port)],
                          env=dict(os.environ), log_path=log_path)
        broker = NetnsBroker(proc, f"{self.address[name]}:{port}", log_path)
        deadline = time.monotonic() + timeout_s
        while (pid := broker.broker_pid()) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                broker.stop()
                raise AssertionError(f"broker on {name} not ready:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        return broker

    def _ip(self, *args: str) -> None:
        try:
            done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetnsError(f"`ip {' '.join(args)}`: {exc}") from None
        if done.returncode != 0:
            raise NetnsError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


# The broker's launcher inside a namespace: EmbeddedBroker starts Tansu in a session of its
# own, so the launcher stops it on SIGTERM (NetnsBroker.stop kills a survivor by pid).
_NS_BROKER = """
import signal, sys
from resontinex.app.broker import EmbeddedBroker

def _stop(*_):
    raise SystemExit(0)

signal.signal(signal.SIGTERM, _stop)
broker = EmbeddedBroker(port=int(sys.argv[2]), host=sys.argv[1])
broker.start()
try:
    print("ready", broker.process.pid, broker.bootstrap, flush=True)
    while True:
        signal.pause()
finally:
    broker.stop()
"""


@dataclass
class NetnsBroker:
    proc: subprocess.Popen
    bootstrap: str
    log_path: Path

    def broker_pid(self) -> int | None:
        for line in self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []:
            if line.startswith("ready "):
                return int(line.split()[1])
        return None

    def stop(self) -> None:
        pids = descendants(self.proc.pid) | ({p} if (p := self.broker_pid()) else set())
        stop_process(self.proc)
        _kill_left(pids)


@dataclass
class NetnsWorker(Worker):
    """A worker in another namespace, reached at its host's address."""

    name: str = ""

    def stop(self) -> None:
        pids = descendants(self.proc.pid)
        stop_process(self.proc)
        _kill_left(pids)


def _kill_left(pids: Iterable[int]) -> None:
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _quiet(argv: list[str]) -> None:
    subprocess.run(argv, capture_output=True, timeout=30)


def _pings(address: str) -> bool:
    with socket.socket() as s:  # no ping binary needed: a refused TCP connection answers too
        s.settimeout(0.5)
        try:
            s.connect((address, 9))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return True


def _free_subnet(seed: int) -> "ipaddress.IPv4Network":
    """A 10.x.y.0/24 that no route or address of this machine (any table) overlaps."""
    taken = []
    try:
        done = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                              timeout=30, check=True)
        routes = json.loads(done.stdout or "[]")
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise NetnsError(f"cannot list this machine's routes (`ip -j -4 route show table all`): {exc}") from None
    for route in routes:
        dst = route.get("dst", "default")
        if dst != "default":
            taken.append(ipaddress.ip_network(dst, strict=False))
    rng = random.Random(seed)
    for _ in range(1000):
        net = ipaddress.ip_network(f"10.{rng.randrange(64, 250)}.{rng.randrange(0, 256)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise NetnsError("no free 10.x.y.0/24")
