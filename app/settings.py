"""Runtime settings: command-line flags over environment variables over defaults.

>>> s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "RESONTINEX_TOPIC_PREFIX": "t-"})
>>> s.bootstrap, s.embedded, s.topic("decisions")
('k:9092', False, 't-decisions')
"""

from __future__ import annotations

import difflib
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from resontinex.agents.overlays import SUFFIXES, overlay_dirs
from resontinex.config import PACKAGED_DIR
from resontinex.topics import wire_name

from resontinex.app.exceptions import UsageError

DEFAULT_PORT = 9092
DEFAULT_WEB_PORT = 6066
ROLES = ("core", "trajectory", "gateway")
TRUST_FILE = "trust_gate.yaml"
ENERGY_FILE = "energy_governance.yaml"
ROUTING_FILE = "routing.yaml"
TRAJECTORY_FILE = "trajectory.yaml"
COORDINATION_FILE = "coordination.yaml"
ENHANCEMENTS_FILE = "enhancements.yaml"
EMBEDDED_BROKER_ENV = "RESONTINEX_EMBEDDED_BROKER"
GATEWAY_FILE = "gateway.yaml"
CONFIG_FILES = (TRUST_FILE, ENERGY_FILE, ROUTING_FILE, TRAJECTORY_FILE, COORDINATION_FILE, ENHANCEMENTS_FILE, GATEWAY_FILE)
"""The files --config-dir may replace; its `overlays/` folder adds overlay files."""
PACKAGE_FILES = ("__init__.py", "__pycache__")
"""Not configuration, not reported: the repository's `config/` (a Python package) is a fine --config-dir."""


@dataclass(frozen=True, slots=True)
class Settings:
    bootstrap: str
    embedded: bool
    """No Kafka configured: `up` starts the embedded broker."""
    embedded_broker: bool = False
    """The broker is the embedded one (Tansu), whose ListOffsets under-reports the end of a
    partition: workers then probe the real end where correctness depends on it. `up` tells
    its workers with RESONTINEX_EMBEDDED_BROKER=1."""
    config_dir: Path | None = None
    topic_prefix: str = ""
    partitions: int = 4
    data_dir: Path = Path(".resontinex")
    batch_max: int = 4000
    batch_linger_s: float = 0.02
    dedupe_horizon: int = 100_000
    # an input's audit record holds it plus the decision, and must fit Kafka's default
    # max.message.bytes (1 MiB): inputs are limited to half of that
    max_message_bytes: int = 524_288
    fetch_max_wait_ms: int = 20
    session_timeout_s: float = 10.0
    """How long the group waits for a silent worker before moving its partitions. The
    embedded broker also holds a JoinGroup for half of it (real Kafka waits
    `group.initial.rebalance.delay.ms` instead): 6 s there by default, so a worker joins in 3 s."""
    advertised_host: str = "localhost"
    checkpoint_every: int = 1000  # audit records per partition between signed checkpoints ...
    checkpoint_interval_s: float = 60.0  # ... or this long, whichever comes first
    replication_factor: int = 1
    """Replicas of every topic `topics create` makes and of every changelog (the embedded
    broker has one node: 1 there, 3 elsewhere, unless RESONTINEX_REPLICATION_FACTOR says)."""
    min_insync_replicas: int = 1
    """`min.insync.replicas` of those topics: with producers' acks=all, how many replicas
    must have a write (1 on the embedded broker, 2 elsewhere; RESONTINEX_MIN_INSYNC_REPLICAS)."""

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        bootstrap: str | None = None,
        config_dir: str | None = None,
        port: int = DEFAULT_PORT,
    ) -> "Settings":
        env = os.environ if env is None else env
        chosen = bootstrap or env.get("KAFKA_BOOTSTRAP_SERVERS") or None
        single_node = chosen is None or env.get(EMBEDDED_BROKER_ENV) == "1"
        cdir = config_dir or env.get("RESONTINEX_CONFIG_DIR") or None
        if cdir is not None and not Path(cdir).is_dir():
            raise UsageError(f"--config-dir {cdir}: not a directory")
        return cls(
            bootstrap=chosen or f"127.0.0.1:{port}",
            embedded=chosen is None,
            embedded_broker=single_node,
            config_dir=Path(cdir) if cdir else None,
            topic_prefix=env.get("RESONTINEX_TOPIC_PREFIX", ""),
            partitions=_positive_int(env, "RESONTINEX_PARTITIONS", 4),
            data_dir=Path(env.get("RESONTINEX_DATA_DIR", ".resontinex")),
            batch_max=_positive_int(env, "RESONTINEX_BATCH_MAX", 4000),
            batch_linger_s=_positive_int(env, "RESONTINEX_BATCH_LINGER_MS", 20) / 1000,
            dedupe_horizon=_positive_int(env, "RESONTINEX_DEDUPE_HORIZON", 100_000),
            fetch_max_wait_ms=_positive_int(env, "RESONTINEX_FETCH_MAX_WAIT_MS", 20),
            session_timeout_s=float(_positive_int(env, "RESONTINEX_SESSION_TIMEOUT_S",
                                                  6 if chosen is None or env.get(EMBEDDED_BROKER_ENV) == "1" else 10)),
            advertised_host=env.get("RESONTINEX_ADVERTISED_HOST") or socket.gethostname(),
            checkpoint_every=_positive_int(env, "RESONTINEX_AUDIT_CHECKPOINT_EVERY", 1000),
            checkpoint_interval_s=float(_positive_int(env, "RESONTINEX_AUDIT_CHECKPOINT_S", 60)),
            replication_factor=(replicas := _positive_int(env, "RESONTINEX_REPLICATION_FACTOR",
                                                          1 if single_node else 3)),
            min_insync_replicas=_insync(env, replicas, 1 if single_node else 2),
        )

    def with_bootstrap(self, bootstrap: str) -> "Settings":
        return replace(self, bootstrap=bootstrap)

    def topic(self, topic_id: str) -> str:
        """Wire name of a registry topic (`decision_requests` or `decision-requests`)."""
        return wire_name(topic_id, self.topic_prefix)

    def config_file(self, name: str) -> Path:
        """A file in --config-dir replaces the packaged file of the same name."""
        if self.config_dir is not None and (self.config_dir / name).is_file():
            return self.config_dir / name
        return PACKAGED_DIR / name

    def unread_config_files(self) -> list[tuple[Path, str]]:
        """Entries of --config-dir that no configuration reads, each with why (naming the
        closest known name, as for a mistyped `trust-gate.yml`). Dot-files and
        `PACKAGE_FILES` are left out: a Kubernetes ConfigMap volume holds `..data` links
        beside its files."""
        if self.config_dir is None:
            return []
        overlays = overlay_dirs(self.config_dir)[-1]
        known = (*CONFIG_FILES, overlays.name)
        unread = []
        for entry in _visible(self.config_dir):
            if entry == overlays:
                if entry.is_dir():
                    unread += [(e, f"not an overlay file (overlays end in {' or '.join(SUFFIXES)})")
                               for e in _visible(entry) if not e.name.lower().endswith(SUFFIXES)]
            elif entry.name in CONFIG_FILES:
                if not entry.is_file():
                    unread.append((entry, "not a regular file: the packaged default is used"))
            else:
                close = difflib.get_close_matches(entry.name, known, n=1)
                hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
                unread.append((entry, f"matches no configuration file ({hint})"))
        return unread


def _visible(directory: Path) -> list[Path]:
    try:
        return sorted(e for e in directory.iterdir() if not e.name.startswith(".") and e.name not in PACKAGE_FILES)
    except OSError:  # unreadable: nothing is read from it either (the overlay loader reports its own)
        return []


def _positive_int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{key}={raw!r}: not an integer") from None
    if value < 1:
        raise UsageError(f"{key}={raw!r}: must be ≥ 1")
    return value


def _insync(env: Mapping[str, str], replicas: int, default: int) -> int:
    """`min.insync.replicas`: at most the replication factor (a write could never be acknowledged).

    >>> _insync({}, 1, 2), _insync({"RESONTINEX_MIN_INSYNC_REPLICAS": "2"}, 3, 1)
    (1, 2)
    >>> _insync({"RESONTINEX_MIN_INSYNC_REPLICAS": "4"}, 3, 2)
    Traceback (most recent call last):
    resontinex.app.exceptions.UsageError: RESONTINEX_MIN_INSYNC_REPLICAS=4: above the replication factor 3 (no write could be acknowledged)
    """
    if "RESONTINEX_MIN_INSYNC_REPLICAS" not in env:
        return min(default, replicas)
    value = _positive_int(env, "RESONTINEX_MIN_INSYNC_REPLICAS", default)
    if value > replicas:
        raise UsageError(f"RESONTINEX_MIN_INSYNC_REPLICAS={value}: above the replication factor {replicas} "
                         "(no write could be acknowledged)")
    return value
