"""Verifying one audit partition: integrity, order, completeness, redelivered duplicates.

What `verify` decides, record by record, with one record of lookahead:

- `modified`: the record is malformed or its `hash` does not match its content; or it
  does not link to the previous record (then the record blamed is the previous one when
  the next record links to this one: the previous record was replaced by a re-hashed
  forgery; else this one).
- `missing`: `seq` jumps ahead of the expected seq (a gap).
- `reordered`: `seq` is ahead but the next record continues the chain (the record came
  too early, e.g. two swapped neighbours), or `seq` is behind the chain and older than the
  window below (or than `start`).
- `inserted`: a record that does not belong: two records claim the same seq after the
  same predecessor (the one blamed is the one the chain does not continue from), a record
  that does not link while the next record continues the chain in its place, or a record
  whose seq is already held by a different record.
- `duplicate` (never an error): a redelivery, which at-least-once processing produces
  in two shapes. (1) An exact copy of a record already verified (same `seq`, same
  `hash`: the producer retried a send that had landed): skipped, the chain goes on from
  the original. (2) A record correctly chained at its own new `seq` that repeats the
  source event of an earlier record: the same `kind`, `tenant` and source event id, where
  the source event id is `record["source_event_id"]` when that is a string, else
  `record["request"]["event_id"]` (decisions), else none (never a duplicate). Both are
  counted in `duplicates` and the first is reported in `first_duplicate`; `ok` stays
  true, since the chain itself is intact.

- `bad_signature`: a `checkpoint` record whose signature does not verify under the public
  key given, or that vouches for another head than the record before it (see
  `_checkpoint`). Without a key, checkpoints are counted as unverified, not checked.

Duplicates are recognised within a window: the record repeated must be fewer than
`window` seqs back (memory is O(window)). Two limits of any unkeyed hash chain: records
cut from the tail, and records appended correctly after it, are invisible without a head
known independently (compare it with `VerifyReport.head`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._chain import ChainHead
from ._checkpoint import checkpoint_problem
from ._record import record_problem

FindingKind = Literal["modified", "missing", "reordered", "inserted", "duplicate", "bad_signature"]
CHECKPOINT = "checkpoint"

_SourceKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing `verify` found: where (input position and seq), what, and why."""

    index: int
    seq: int | None
    kind: FindingKind
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of `verify`.

    `records_checked` counts the records read up to and including the first error;
    `head` is where the verified chain stands (after its last record in chain order),
    ready to be passed as `start` when verifying what follows. `checkpoints_verified`:
    signatures checked good; `checkpoints_unverified`: checkpoints seen with no key to
    check them; `unsigned_tail`: records after the last good checkpoint (or all of them).
    """

    records_checked: int
    first_error: Finding | None
    duplicates: int
    first_duplicate: Finding | None
    head: ChainHead
    checkpoints_verified: int = 0
    checkpoints_unverified: int = 0
    unsigned_tail: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing but duplicates was found."""
        return self.first_error is None


class _Checked(NamedTuple):
    value: Any
    problem: str | None
    seq: int | None
    prev_hash: str
    hash: str


def _inspect(value: Any) -> _Checked:
    problem = record_problem(value)
    if problem is None:
        return _Checked(value, None, value["seq"], value["prev_hash"], value["hash"])
    seq = value.get("seq") if isinstance(value, Mapping) else None
    return _Checked(value, problem, seq if type(seq) is int else None, "", "")


def _source_key(value: Mapping[str, Any]) -> _SourceKey | None:
    record = value["record"]
    alert = record.get("alert")
    if isinstance(alert, Mapping) and isinstance(alert.get("event_id"), str):
        return (value["kind"], value["tenant"], alert["event_id"])  # an alert's id is fixed by what raised it
    source = record.get("source_event_id")
    if not isinstance(source, str):
        request = record.get("request")
        source = request.get("event_id") if isinstance(request, Mapping) else None
        if not isinstance(source, str):
            return None
    return (value["kind"], value["tenant"], source)


def _links(successor: _Checked | None, record: _Checked) -> bool:
    return successor is not None and successor.problem is None and successor.prev_hash == record.hash


@dataclass(slots=True)
class _Verifier:
    expected: int
    last_hash: str
    window: int
    before_last: str | None = None
    last_index: int | None = None
    recent: dict[int, tuple[str, _SourceKey | None]] = field(default_factory=dict)
    latest_source: dict[_SourceKey, int] = field(default_factory=dict)
    duplicates: int = 0
    first_duplicate: Finding | None = None
    public_key: Ed25519PublicKey | None = None
    partition: int | None = None
    signed: int = 0
    unverified: int = 0
    since_signed: int = 0

    def step(self, i: int, cur: _Checked, nxt: _Checked | None) -> Finding | None:
        if cur.problem is not None:
            return Finding(i, cur.seq, "modified", cur.problem)
        assert cur.seq is not None
        if cur.seq == self.expected:
            if cur.prev_hash == self.last_hash:
                bad = self._checkpoint(i, cur)
                if bad is not None:
                    return bad
                self._accept(i, cur)
                return None
            return self._broken_link(i, cur, nxt)
        if cur.seq > self.expected:
            if self._continues(nxt):
                return Finding(i, cur.seq, "reordered",
                               f"seq {cur.seq} comes before seq {self.expected}, which the next record holds")
            return Finding(i, cur.seq, "missing",
                           f"{cur.seq - self.expected} record(s) missing: expected seq {self.expected}, found {cur.seq}")
        return self._behind(i, cur, nxt)

    def _checkpoint(self, i: int, cur: _Checked) -> Finding | None:
        """Check a checkpoint's signature over the head before it; count what is unsigned."""
        if cur.value["kind"] != CHECKPOINT:
            self.since_signed += 1
            return None
        if self.public_key is None:
            self.unverified += 1
            self.since_signed += 1
            return None
        assert self.partition is not None  # verify() refuses a key without the partition
        problem = checkpoint_problem(cur.value["record"], self.public_key, partition=self.partition,
                                     seq=self.expected - 1, head_hash=self.last_hash) \
            if self.expected > 0 else "a checkpoint cannot open a chain"
        if problem is not None:
            return Finding(i, cur.seq, "bad_signature", problem)
        self.signed += 1
        self.since_signed = 0
        return None

    def _continues(self, nxt: _Checked | None) -> bool:
        return nxt is not None and nxt.problem is None and nxt.seq == self.expected and nxt.prev_hash == self.last_hash

    def _broken_link(self, i: int, cur: _Checked, nxt: _Checked | None) -> Finding:
        if self._continues(nxt):
            return Finding(i, cur.seq, "inserted",
                           "record does not link to the previous one and the next record continues the chain in its place")
        if self.last_index is not None and _links(nxt, cur):
            return Finding(self.last_index, self.expected - 1, "modified",
                           f"record was replaced: the record at index {i} and its successor chain from a different hash")
        return Finding(i, cur.seq, "modified", "prev_hash does not match the hash of the previous record")

    def _behind(self, i: int, cur: _Checked, nxt: _Checked | None) -> Finding | None:
        assert cur.seq is not None
        known = self.recent.get(cur.seq)
        if known is not None and known[0] == cur.hash:
            self._duplicate(Finding(i, cur.seq, "duplicate", f"exact copy of seq {cur.seq} (redelivered)"))
            return None
        if self.last_index is not None and cur.seq == self.expected - 1 and cur.prev_hash == self.before_last:
            if _links(nxt, cur):
                return Finding(self.last_index, cur.seq, "inserted",
                               f"two records hold seq {cur.seq}; the chain continues from the one at index {i}")
            return Finding(i, cur.seq, "inserted", f"a second record holds seq {cur.seq} after the same predecessor")
        if known is not None:
            return Finding(i, cur.seq, "inserted", f"seq {cur.seq} is already held by a different record")
        return Finding(i, cur.seq, "reordered", f"seq {cur.seq} is behind the chain (expected seq {self.expected})")

    def _accept(self, i: int, cur: _Checked) -> None:
        seq = self.expected
        evicted = self.recent.pop(seq - self.window, None)
        if evicted is not None and evicted[1] is not None and self.latest_source.get(evicted[1]) == seq - self.window:
            del self.latest_source[evicted[1]]
        key = _source_key(cur.value)
        if key is not None:
            earlier = self.latest_source.get(key)
            if earlier is not None:
                self._duplicate(Finding(i, seq, "duplicate",
                                        f"repeats kind {key[0]!r} and source event {key[2]!r} of seq {earlier}"))
            self.latest_source[key] = seq
        self.recent[seq] = (cur.hash, key)
        self.before_last, self.last_hash = cur.prev_hash, cur.hash
        self.expected, self.last_index = seq + 1, i

    def _duplicate(self, finding: Finding) -> None:
        self.duplicates += 1
        if self.first_duplicate is None:
            self.first_duplicate = finding

    def report(self, checked: int, error: Finding | None) -> VerifyReport:
        return VerifyReport(checked, error, self.duplicates, self.first_duplicate,
                            ChainHead(self.expected, self.last_hash), self.signed, self.unverified, self.since_signed)


def verify(
    records: Iterable[Mapping[str, Any]], *, start: ChainHead | None = None, window: int = 100_000,
    public_key: Ed25519PublicKey | None = None, partition: int | None = None,
) -> VerifyReport:
    """Verify one partition's audit records, in topic order; stops at the first error.

    Without `start` the chain must begin at seq 0 after `GENESIS_HASH`; with `start` (the
    head known to precede these records) it must begin at `start.seq_next` after
    `start.hash`. The kinds of finding and the duplicate rule are in this module's
    docstring. Nothing is raised for bad records: they are reported. With `public_key`
    (and the `partition` the records come from) every checkpoint's signature is checked.

    >>> from resontinex.agents.audit import seal_many
    >>> entries = [dict(event_id=f"a-{i}", kind="decision", tenant="acme", ts="2025-01-01T00:00:00Z",
    ...                 policy_version="3f2a9c0d1e4b", record={"request": {"event_id": f"r-{i}"}})
    ...            for i in range(4)]
    >>> records, head = seal_many(ChainHead.genesis(), entries)
    >>> report = verify(records)
    >>> report.ok, report.records_checked, report.head == head
    (True, 4, True)
    >>> verify([records[0], records[2], records[3]]).first_error.kind
    'missing'
    >>> verify(records + [records[3]]).duplicates  # redelivered copy: not tampering
    1
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    head = start if start is not None else ChainHead.genesis()
    if public_key is not None and partition is None:
        raise ValueError("checking checkpoints needs the partition the records come from")
    verifier = _Verifier(head.seq_next, head.hash, window, public_key=public_key, partition=partition)
    checked = map(_inspect, records)
    cur = next(checked, None)
    index = 0
    while cur is not None:
        nxt = next(checked, None)
        error = verifier.step(index, cur, nxt)
        if error is not None:
            return verifier.report(index + 1, error)
        cur, index = nxt, index + 1
    return verifier.report(index, None)
