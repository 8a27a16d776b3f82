"""What a pure batch core asks the shell to do: the effects of one batch, as frozen values.

A core (`resontinex.agents.gate.plan_batch`, …) reads a batch of records and a read-only
view of the state it needs and returns `Effects`; it never writes a table, sends a
message or awaits. The shell's applier (`resontinex.app.engine.applier`) carries them out
in one documented order:

1. `early_writes`, each on the table partition it names, then the changelog flushed, and
   `ahead` messages, sent and acknowledged: what a redelivered batch must find (a request
   left waiting, the decisions about to be sent: `ahead` is for values too large or too
   many for a table's per-key changelog);
2. `outputs`, sent and acknowledged;
3. `audit` items, sealed onto their partition's chain, sent and acknowledged;
4. `late_writes`: what may only be kept once the audit holds the batch (a waiting copy
   forgotten, a budget mark, a tripwire entry, window statistics);
5. then the input offsets are acknowledged (committed once the changelog is flushed).

>>> e = Effects(outputs=(Output("decisions", 0, b"acme", b"{}"),), counts=(Count("DECISIONS", ("execute",)),))
>>> e + Effects(outputs=(Output("alerts", 0, b"acme", b"{}"),))  # doctest: +ELLIPSIS
Effects(early_writes=(), outputs=(Output(topic='decisions', ...), Output(topic='alerts', ...)), ...)
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import orjson

from resontinex.schemas import ms_to_ts

log = logging.getLogger(__name__)

__all__ = ["AuditItem", "auditable", "audit_item", "Count", "Effects", "EffectsBuilder", "Observation", "Output", "Record", "TableWrite", "MAX_ECHO_BYTES", "dead_letter", "dead_letter_id", "rejected"]


class Record(Protocol):
    """An input record as a core reads it (an aiokafka record, a Faust message, a fetched one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> float:
        """Seconds since the epoch."""
        ...


@dataclass(frozen=True, slots=True)
class Output:
    """A message for `topic` (a registry id such as `decisions`, not a wire name), on `partition`."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes = field(repr=False)
    timestamp_ms: int | None = field(default=None, repr=False)
    headers: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class TableWrite:
    """`table[key] = value` (or `del table[key]`) on the table's `partition`; for a windowed
    table, in the window holding time `at` (seconds)."""

    table: str
    key: str
    value: Any
    partition: int
    at: float = 0.0
    delete: bool = False


def auditable(value: Any) -> bool:
    """Whether the audit can hold `value`: RFC 8785 has no integers beyond ±(2^53 − 1).

    >>> auditable({"n": 2**53 - 1}), auditable([2**53])
    (True, False)
    """
    try:
        orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        return False
    return True


def audit_item(event_id: str, kind: str, tenant: str, ts: str, policy_version: str,
               record: dict[str, Any]) -> dict[str, Any]:
    """An audit record before sealing (CONTRACT §3.8 without `seq`, `prev_hash`, `hash`)."""
    return {"event_id": event_id, "kind": kind, "tenant": tenant, "ts": ts,
            "policy_version": policy_version, "record": record}


@dataclass(frozen=True, slots=True)
class AuditItem:
    """An audit item (`audit_item`) for `partition`'s chain; the applier seals it."""

    partition: int
    item: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Count:
    """`amount` added to the counter `metric` (a name in `resontinex.app.metrics`) with `labels`."""

    metric: str
    labels: tuple[str, ...] = ()
    amount: float = 1.0


@dataclass(frozen=True, slots=True)
class Observation:
    """Values observed on the histogram `metric` with `labels`."""

    metric: str
    values: tuple[float, ...]
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Effects:
    early_writes: tuple[TableWrite, ...] = ()
    outputs: tuple[Output, ...] = ()
    audit: tuple[AuditItem, ...] = ()
    late_writes: tuple[TableWrite, ...] = ()
    counts: tuple[Count, ...] = ()
    observations: tuple[Observation, ...] = ()
    ahead: tuple[Output, ...] = ()

    def __add__(self, other: Effects) -> Effects:
        """Both, this one's first in each part."""
        return Effects(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


@dataclass(slots=True)
class EffectsBuilder:
    """What a core accumulates on its way to `Effects`: lists to append to, counts to add up.

    >>> out = EffectsBuilder()
    >>> out.count("EVENTS", "outcomes", amount=2); out.count("EVENTS", "outcomes")
    >>> out.observe("ROUTER_REWARDS", 0.5, "p1")
    >>> e = out.effects()
    >>> e.counts, e.observations
    ((Count(metric='EVENTS', labels=('outcomes',), amount=3.0),), (Observation(metric='ROUTER_REWARDS', values=(0.5,), labels=('p1',)),))
    """

    early: list[TableWrite] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    audit: list[AuditItem] = field(default_factory=list)
    late: list[TableWrite] = field(default_factory=list)
    counts: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)
    observed: dict[tuple[str, tuple[str, ...]], list[float]] = field(default_factory=dict)
    ahead: list[Output] = field(default_factory=list)

    def count(self, metric: str, *labels: str, amount: float = 1) -> None:
        key = (metric, labels)
        self.counts[key] = self.counts.get(key, 0.0) + amount

    def observe(self, metric: str, value: float, *labels: str) -> None:
        self.observed.setdefault((metric, labels), []).append(value)

    def reject(self, record: Record, code: str, message: str, now_ms: int) -> None:
        """`record`'s dead letter (`rejected`), counted."""
        letter, count = rejected(record, code, message, now_ms)
        self.outputs.append(letter)
        self.count(count.metric, *count.labels)

    def effects(self) -> Effects:
        return Effects(tuple(self.early), tuple(self.outputs), tuple(self.audit), tuple(self.late),
                       tuple(Count(m, labels, n) for (m, labels), n in self.counts.items() if n),
                       tuple(Observation(m, tuple(v), labels) for (m, labels), v in self.observed.items() if v),
                       tuple(self.ahead))


# A dead letter carries the original bytes, but a 10 MB value would make a 13 MB dead
# letter that no broker accepts with default limits: past this size the value is cut
# and the record says so (value_size, value_truncated, value_sha256 of the whole).
MAX_ECHO_BYTES = 256 * 1024


def dead_letter_id(record: Record) -> str:
    """Deterministic, so a redelivered bad record yields the same id; ≤ 128 chars whatever the topic name."""
    source = f"{record.topic}\x1f{record.partition}\x1f{record.offset}"
    return "dl-" + hashlib.blake2b(source.encode(), digest_size=16).hexdigest()


def rejected(record: Record, code: str, message: str, now_ms: int) -> tuple[Output, Count]:
    """A core's answer to a record it cannot process: its dead letter, logged, and its count."""
    log.warning("dead letter", extra={"event_id": dead_letter_id(record), "topic": record.topic,
                                      "partition": record.partition, "offset": record.offset, "code": code,
                                      "reason": message})
    return dead_letter(record, code, message, now_ms), Count("DEAD_LETTERS", (record.topic, code))


def dead_letter(record: Record, code: str, message: str, now_ms: int) -> Output:
    """The dead letter of CONTRACT §4 for `record`, on its partition with its key."""
    value, key = record.value or b"", record.key
    body = {
        "event_id": dead_letter_id(record),
        "schema_version": 1,
        "source_topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "value_base64": base64.b64encode(value[:MAX_ECHO_BYTES]).decode("ascii"),
        "value_size": len(value),
        "value_truncated": len(value) > MAX_ECHO_BYTES,
        "value_sha256": hashlib.sha256(value).hexdigest(),
        "error": {"code": code, "message": message},
        "ts": ms_to_ts(now_ms),
    }
    return Output("dead_letters", record.partition, key or None, orjson.dumps(body))
