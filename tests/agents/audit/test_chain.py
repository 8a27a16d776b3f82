"""Sealing: the pinned hash format, genesis rules, heads, batches, bad input."""

from __future__ import annotations

import doctest
import hashlib
import math
from types import MappingProxyType

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

import resontinex.agents.audit as audit_pkg
from resontinex.agents.audit import (
    GENESIS_HASH,
    ChainHead,
    InvalidRecordError,
    head_after,
    record_hash,
    seal,
    seal_many,
)
from resontinex.agents.audit import _chain, _record, _verify

from .strategies import entries, slow_ok

FIXED = dict(
    event_id="audit-0001",
    kind="decision",
    tenant="acme",
    ts="2025-01-01T00:00:00Z",
    policy_version="3f2a9c0d1e4b",
    record={"request": {"event_id": "req-1"}, "verb": "execute", "score": 0.7681, "multiplier": 1.0, "note": "é\n"},
)
# RFC 8785 by hand: keys sorted, no whitespace, 1.0 written as 1, UTF-8 kept, "\n" escaped.
FIXED_CANONICAL = (
    b'{"event_id":"audit-0001","kind":"decision","policy_version":"3f2a9c0d1e4b",'
    b'"prev_hash":"' + b"0" * 64 + b'",'
    b'"record":{"multiplier":1,"note":"\xc3\xa9\\n","request":{"event_id":"req-1"},"score":0.7681,"verb":"execute"},'
    b'"seq":0,"tenant":"acme","ts":"2025-01-01T00:00:00Z"}'
)
FIXED_HASH = "ee7c6c17eeb9ecb86d1a0b095e8d88b71c775d7784f705a8b7812d26a70db24f"


def test_known_answer_pins_the_format() -> None:
    by_hand = hashlib.sha256(b"0" * 64 + FIXED_CANONICAL).hexdigest()
    assert by_hand == FIXED_HASH
    rec, head = seal(ChainHead.genesis(), **FIXED)
    without_hash = {k: v for k, v in rec.items() if k != "hash"}
    assert rfc8785.dumps(without_hash) == FIXED_CANONICAL
    assert rec["hash"] == record_hash(without_hash) == FIXED_HASH
    assert head == ChainHead(1, FIXED_HASH)


def test_second_record_hashes_its_prev_hash_first() -> None:
    first, head = seal(ChainHead.genesis(), **FIXED)
    second, _ = seal(head, **{**FIXED, "event_id": "audit-0002"})
    assert second["seq"] == 1 and second["prev_hash"] == first["hash"]
    canonical = rfc8785.dumps({k: v for k, v in second.items() if k != "hash"})
    assert second["hash"] == hashlib.sha256(first["hash"].encode("ascii") + canonical).hexdigest()


def test_genesis_rules() -> None:
    assert GENESIS_HASH == "0" * 64
    assert ChainHead.genesis() == ChainHead(seq_next=0, hash=GENESIS_HASH)
    rec, _ = seal(ChainHead.genesis(), **FIXED)
    assert rec["seq"] == 0 and rec["prev_hash"] == GENESIS_HASH


def test_record_has_exactly_the_contract_fields() -> None:
    rec, _ = seal(ChainHead.genesis(), **FIXED)
    assert list(rec) == ["event_id", "seq", "kind", "tenant", "ts", "policy_version", "record", "prev_hash", "hash"]


@slow_ok
@given(st.lists(entries, max_size=8), st.integers(0, 10**6))
def test_seal_many_equals_repeated_seal(items: list, start_seq: int) -> None:
    start = ChainHead(start_seq, hashlib.sha256(str(start_seq).encode()).hexdigest())
    batch, batch_head = seal_many(start, items)
    head, one_by_one = start, []
    for item in items:
        rec, head = seal(head, **item)
        one_by_one.append(rec)
    assert batch == one_by_one and batch_head == head
    assert [r["seq"] for r in batch] == list(range(start_seq, start_seq + len(items)))


@slow_ok
@given(entries)
def test_head_after_continues_the_chain(item: dict) -> None:
    rec, head = seal(ChainHead.genesis(), **item)
    assert head_after(rec) == head


def test_head_after_refuses_a_tampered_or_malformed_record() -> None:
    rec, _ = seal(ChainHead.genesis(), **FIXED)
    with pytest.raises(InvalidRecordError, match="hash does not match"):
        head_after({**rec, "tenant": "other"})
    with pytest.raises(InvalidRecordError, match="'seq' is missing"):
        head_after({k: v for k, v in rec.items() if k != "seq"})


def test_seal_copies_the_record_top_level() -> None:
    payload = {"verb": "execute"}
    rec, _ = seal(ChainHead.genesis(), **{**FIXED, "record": MappingProxyType(payload)})
    payload["verb"] = "abort"
    assert rec["record"] == {"verb": "execute"} and head_after(rec).seq_next == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"record": {"x": math.nan}}, "not canonical JSON"),
        ({"record": {"x": 2**53}}, "not canonical JSON"),
        ({"record": {1: "non-string key"}}, "not canonical JSON"),
        ({"record": {"x": object()}}, "not canonical JSON"),
        ({"record": ["not", "a", "mapping"]}, "'record' must be a mapping"),
        ({"tenant": 7}, "'tenant' must be a string"),
        ({"event_id": ""}, "1 to 128 characters"),
        ({"event_id": "x" * 129}, "1 to 128 characters"),
    ],
)
def test_seal_refuses_bad_entries(change: dict, match: str) -> None:
    with pytest.raises(InvalidRecordError, match=match):
        seal(ChainHead.genesis(), **{**FIXED, **change})


def test_seal_many_is_all_or_nothing_and_names_the_entry() -> None:
    with pytest.raises(InvalidRecordError, match="entry 1: 'record' must be a mapping"):
        seal_many(ChainHead.genesis(), [FIXED, {**FIXED, "record": None}])
    with pytest.raises(InvalidRecordError, match="entry 0: no 'ts'"):
        seal_many(ChainHead.genesis(), [{k: v for k, v in FIXED.items() if k != "ts"}])
    assert seal_many(ChainHead(5, FIXED_HASH), []) == ([], ChainHead(5, FIXED_HASH))


def test_record_hash_checks_its_input() -> None:
    with pytest.raises(InvalidRecordError, match="must not contain 'hash'"):
        record_hash({"prev_hash": GENESIS_HASH, "hash": FIXED_HASH})
    with pytest.raises(InvalidRecordError, match="'prev_hash' must be 64 lowercase hex"):
        record_hash({"prev_hash": GENESIS_HASH.upper().replace("0", "A")})
    with pytest.raises(InvalidRecordError, match="'prev_hash'"):
        record_hash({"seq": 0})


@pytest.mark.parametrize(("seq_next", "hash_"), [(-1, GENESIS_HASH), (True, GENESIS_HASH), (0, "0" * 63), (0, "G" * 64)])
def test_chain_head_validates(seq_next: object, hash_: str) -> None:
    with pytest.raises(ValueError):
        ChainHead(seq_next, hash_)  # type: ignore[arg-type]


@pytest.mark.parametrize("module", [audit_pkg, _chain, _record, _verify])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
