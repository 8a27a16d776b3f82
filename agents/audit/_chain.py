"""Sealing audit records onto a partition's hash chain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ._record import GENESIS_HASH, STR_FIELDS, digest, is_hex64, record_problem
from .exceptions import InvalidRecordError

_MAX_EVENT_ID = 128


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a partition's chain stands: the next record's `seq` and `prev_hash`.

    >>> ChainHead.genesis() == ChainHead(seq_next=0, hash="0" * 64)
    True
    """

    seq_next: int
    hash: str

    def __post_init__(self) -> None:
        if type(self.seq_next) is not int or self.seq_next < 0:
            raise ValueError(f"seq_next must be a non-negative int, got {self.seq_next!r}")
        if not is_hex64(self.hash):
            raise ValueError(f"hash must be 64 lowercase hex characters, got {self.hash!r}")

    @classmethod
    def genesis(cls) -> ChainHead:
        """The head of an empty partition: seq 0 follows `GENESIS_HASH`."""
        return cls(0, GENESIS_HASH)


class AuditEntry(TypedDict):
    """What a caller supplies for one record; `seal` adds `seq`, `prev_hash` and `hash`."""

    event_id: str
    kind: str
    tenant: str
    ts: str
    policy_version: str
    record: Mapping[str, Any]


def _sealed(
    seq: int, prev_hash: str, event_id: str, kind: str, tenant: str, ts: str, policy_version: str,
    record: Mapping[str, Any],
) -> dict[str, Any]:
    for name, field in zip(STR_FIELDS, (event_id, kind, tenant, ts, policy_version)):
        if not isinstance(field, str):
            raise InvalidRecordError(f"{name!r} must be a string, got {type(field).__name__}")
    if not 0 < len(event_id) <= _MAX_EVENT_ID:
        raise InvalidRecordError(f"'event_id' must have 1 to {_MAX_EVENT_ID} characters")
    if not isinstance(record, Mapping):
        raise InvalidRecordError(f"'record' must be a mapping, got {type(record).__name__}")
    value: dict[str, Any] = {
        "event_id": event_id, "seq": seq, "kind": kind, "tenant": tenant, "ts": ts,
        "policy_version": policy_version, "record": dict(record), "prev_hash": prev_hash,
    }
    value["hash"] = digest(prev_hash, value)
    return value


def seal(
    head: ChainHead, *, event_id: str, kind: str, tenant: str, ts: str, policy_version: str,
    record: Mapping[str, Any],
) -> tuple[dict[str, Any], ChainHead]:
    """Seal one record onto the chain at `head`: the full audit record and the new head.

    The record holds the given fields plus `seq` = `head.seq_next`, `prev_hash` =
    `head.hash` and `hash` (see `record_hash`). `record` is copied at its top level;
    nested values are referenced, so do not mutate them after sealing.

    >>> rec, head = seal(ChainHead.genesis(), event_id="a-1", kind="decision", tenant="acme",
    ...                  ts="2025-01-01T00:00:00Z", policy_version="3f2a9c0d1e4b",
    ...                  record={"request": {"event_id": "r-1"}, "verb": "execute"})
    >>> rec["seq"], rec["prev_hash"] == "0" * 64, head == ChainHead(1, rec["hash"])
    (0, True, True)

    Raises `InvalidRecordError` for a wrong field type or content outside JSON.
    """
    value = _sealed(head.seq_next, head.hash, event_id, kind, tenant, ts, policy_version, record)
    return value, ChainHead(head.seq_next + 1, value["hash"])


def seal_many(head: ChainHead, items: Iterable[AuditEntry]) -> tuple[list[dict[str, Any]], ChainHead]:
    """Seal a batch in order; the same records as calling `seal` for each, all or nothing.

    >>> entries = [AuditEntry(event_id=f"a-{i}", kind="alert", tenant="acme", ts="2025-01-01T00:00:00Z",
    ...                       policy_version="3f2a9c0d1e4b", record={"source_event_id": f"c-{i}"})
    ...            for i in range(3)]
    >>> records, head = seal_many(ChainHead.genesis(), entries)
    >>> [r["seq"] for r in records], head.seq_next, records[1]["prev_hash"] == records[0]["hash"]
    ([0, 1, 2], 3, True)

    An invalid item raises `InvalidRecordError` and nothing is returned: `head` (immutable)
    is still where the chain stands.
    """
    seq, prev_hash = head.seq_next, head.hash
    records: list[dict[str, Any]] = []
    append = records.append
    for item in items:
        try:
            value = _sealed(
                seq, prev_hash, item["event_id"], item["kind"], item["tenant"], item["ts"],
                item["policy_version"], item["record"],
            )
        except KeyError as exc:
            raise InvalidRecordError(f"entry {len(records)}: no {exc.args[0]!r}") from None
        except InvalidRecordError as exc:
            raise InvalidRecordError(f"entry {len(records)}: {exc}") from exc
        append(value)
        seq, prev_hash = seq + 1, value["hash"]
    return records, (ChainHead(seq, prev_hash) if records else head)


def head_after(record: Mapping[str, Any]) -> ChainHead:
    """The head that follows `record`, e.g. the last one read back from the audit topic.

    The record is checked first (fields and hash), so a chain is never continued from a
    record whose content does not match its hash.

    >>> rec, head = seal(ChainHead.genesis(), event_id="a-1", kind="checkpoint", tenant="acme",
    ...                  ts="2025-01-01T00:00:00Z", policy_version="3f2a9c0d1e4b", record={})
    >>> head_after(rec) == head
    True

    Raises `InvalidRecordError` naming the problem.
    """
    problem = record_problem(record)
    if problem is not None:
        raise InvalidRecordError(f"cannot continue the chain after this record: {problem}")
    return ChainHead(record["seq"] + 1, record["hash"])
