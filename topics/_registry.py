"""The topics of CONTRACT §2 (`control` holds operator commands) and their broker settings."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from aiokafka.partitioner import murmur2
from pydantic import BaseModel

from resontinex.schemas import (
    Alert,
    AuditRecord,
    Control,
    CoordinationRequest,
    CoordinationResult,
    Cost,
    DeadLetter,
    Decision,
    DecisionRequest,
    EnhancementEvent,
    EnhancementSubmission,
    Outcome,
    Telemetry,
    TrajectoryRequest,
    TrajectoryResult,
)

__all__ = [
    "DEFAULT_PARTITIONS",
    "INTERNAL",
    "REGISTRY",
    "Direction",
    "KeyKind",
    "TopicSpec",
    "all_wire_names",
    "get",
    "partition_of",
    "partition_of_key",
    "wire_name",
    "with_partitions",
]

DEFAULT_PARTITIONS: Final = 4

Direction = Literal["in", "out", "internal"]
KeyKind = Literal["tenant", "source", "enhancement", "tenant_or_system", "tenant_or_enhancement", "original"]
"""What a record's key holds: the tenant id; the telemetry source; the enhancement id; the tenant, or
`"_system"` for alerts of no tenant; either of tenant and enhancement id (internal); the key of
the refused record (dead letters)."""

# Kafka's legal topic names (kafka.common.internals.Topic).
_LEGAL_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its identity, key, event model and broker settings.

    `retention_ms`/`retention_bytes` of `None` leave the broker default; `-1`
    keeps records forever.

    >>> get("audit").config()
    {'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1'}
    """

    id: str
    name: str
    direction: Direction
    key: KeyKind
    schema: type[BaseModel] | None
    partitions: int = DEFAULT_PARTITIONS
    retention_ms: int | None = None
    retention_bytes: int | None = None
    cleanup_policy: Literal["delete"] = "delete"

    def config(self) -> dict[str, str]:
        """The topic-level configs to create the topic with (all values are strings,
        as the Kafka admin API wants them)."""
        settings: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            settings["retention.ms"] = str(self.retention_ms)
        if self.retention_bytes is not None:
            settings["retention.bytes"] = str(self.retention_bytes)
        return settings


REGISTRY: Final[tuple[TopicSpec, ...]] = (
    TopicSpec("decision_requests", "decision-requests", "in", "tenant", DecisionRequest),
    TopicSpec("outcomes", "outcomes", "in", "tenant", Outcome),
    TopicSpec("costs", "costs", "in", "tenant", Cost),
    TopicSpec("telemetry", "telemetry", "in", "source", Telemetry),
    TopicSpec("trajectory_requests", "trajectory-requests", "in", "tenant", TrajectoryRequest),
    TopicSpec("coordination_requests", "coordination-requests", "in", "tenant", CoordinationRequest),
    TopicSpec("enhancements", "enhancements", "in", "enhancement", EnhancementSubmission),
    TopicSpec("control", "control", "in", "tenant", Control),
    TopicSpec("decisions", "decisions", "out", "tenant", Decision),
    TopicSpec("alerts", "alerts", "out", "tenant_or_system", Alert),
    TopicSpec("trajectory_results", "trajectory-results", "out", "tenant", TrajectoryResult),
    TopicSpec("coordination_results", "coordination-results", "out", "tenant", CoordinationResult),
    TopicSpec("enhancement_events", "enhancement-events", "out", "enhancement", EnhancementEvent),
    # §2/§3.8: append-only, never compacted, never expires (by age or by size).
    TopicSpec("audit", "audit", "out", "tenant", AuditRecord, retention_ms=-1, retention_bytes=-1),
    TopicSpec("dead_letters", "dead-letters", "out", "original", DeadLetter),
)
"""Every topic, inputs first, each with `DEFAULT_PARTITIONS` partitions."""

INTERNAL: Final[tuple[TopicSpec, ...]] = (
    # a submission on its way to its tenant's partition, telemetry partials on their way to their enhancement's
    TopicSpec("enhancement_feed", "enhancement-feed", "internal", "tenant_or_enhancement", None),
    # each decision, written before it is sent: what a request redelivered before its audit gets again
    TopicSpec("unaudited_decisions", "unaudited-decisions", "internal", "tenant", None, retention_ms=7 * 86_400_000),
)
"""Topics the processor writes for itself (not part of the contract); `topics create` makes them too."""

# No id is another topic's default name, so one table serves both.
_LOOKUP: Final[dict[str, TopicSpec]] = {
    **{spec.name: spec for spec in REGISTRY + INTERNAL},
    **{spec.id: spec for spec in REGISTRY + INTERNAL},
}


def get(topic: str) -> TopicSpec:
    """The topic with this id or default name (with the default partition count).

    >>> get("decision_requests").name
    'decision-requests'
    >>> get("dead-letters").id
    'dead_letters'
    """
    try:
        return _LOOKUP[topic]
    except KeyError:
        known = ", ".join(spec.id for spec in REGISTRY)
        raise KeyError(f"unknown topic {topic!r}; known ids: {known}") from None


def with_partitions(partitions: int) -> tuple[TopicSpec, ...]:
    """The registry with every topic set to `partitions` partitions.

    All topics change together on purpose: records of one tenant are routed by the
    key hash modulo the partition count, so the tenant-keyed topics must have the same
    count for a tenant's requests, outcomes, costs and trajectory results to land on
    the same partition number, where one worker holds that tenant's state (its
    tables' changelogs are partitioned the same way). Changing the count of an
    existing deployment moves tenants between partitions.

    >>> {spec.partitions for spec in with_partitions(8)}
    {8}
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1 (got {partitions})")
    return tuple(dataclasses.replace(spec, partitions=partitions) for spec in REGISTRY)


def wire_name(topic: TopicSpec | str, prefix: str = "") -> str:
    """The name of a topic (a spec, an id or a default name) on the broker: `prefix`
    + its default name.

    `prefix` is the value of `RESONTINEX_TOPIC_PREFIX` (read by the caller, not
    here) and is used verbatim, so include any separator: `"staging."`.

    >>> wire_name("decision_requests", "staging.")
    'staging.decision-requests'
    """
    spec = topic if isinstance(topic, TopicSpec) else get(topic)
    name = prefix + spec.name
    if not _LEGAL_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"illegal Kafka topic name {name!r}: use at most 249 of the characters "
            "a-z A-Z 0-9 . _ - (check RESONTINEX_TOPIC_PREFIX)"
        )
    return name


def partition_of(tenant: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key `tenant` (Java and aiokafka agree).

    >>> partition_of("acme", 4) in range(4)
    True
    """
    return partition_of_key(tenant.encode(), partitions)


@lru_cache(maxsize=65_536)  # aiokafka's murmur2 is pure Python (~2 µs), and tenants repeat
def partition_of_key(key: bytes, partitions: int) -> int:
    """`partition_of` for a record's raw key: murmur2, as CONTRACT §1 requires of producers.

    >>> partition_of_key(b"acme", 4) == partition_of("acme", 4)
    True
    """
    hashed: int = murmur2(key)  # aiokafka ships no types
    return (hashed & 0x7FFFFFFF) % partitions


def all_wire_names(prefix: str = "") -> tuple[str, ...]:
    """The broker names of every topic, in registry order.

    >>> all_wire_names("t.")[:2]
    ('t.decision-requests', 't.outcomes')
    """
    return tuple(wire_name(spec, prefix) for spec in REGISTRY)
