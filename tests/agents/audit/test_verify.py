"""Verification: sealed chains pass; every kind of tampering is found and located."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import assume, given
from hypothesis import strategies as st

from resontinex.agents.audit import ChainHead, Finding, head_after, seal, seal_many, verify

from .strategies import chain, chains, entries, hashes, json_values, slow_ok

FIELDS = ("event_id", "seq", "kind", "tenant", "ts", "policy_version", "record", "prev_hash", "hash")
Records = list[dict[str, Any]]


def _error(records: Records, **kwargs: Any) -> Finding:
    report = verify(records, **kwargs)
    assert not report.ok and report.first_error is not None
    return report.first_error


def _decision(i: int, request_id: str | None = None) -> dict[str, Any]:
    return dict(event_id=f"aud-{i}", kind="decision", tenant="acme", ts="2025-01-01T00:00:00Z",
                policy_version="3f2a9c0d1e4b",
                record={"request": {"event_id": request_id or f"req-{i}"}, "decision": {"verb": "execute"}})


# -- sealed chains verify -------------------------------------------------------------

@slow_ok
@given(chains)
def test_any_sealed_chain_verifies(records: Records) -> None:
    report = verify(records)
    assert report.ok and report.first_error is None
    assert report.records_checked == len(records)
    assert report.head == head_after(records[-1])


@slow_ok
@given(chains)
def test_chain_survives_the_wire(records: Records) -> None:
    assert verify([orjson.loads(orjson.dumps(r)) for r in records]).ok
    assert verify([json.loads(json.dumps(r)) for r in records]).ok


def test_empty_input_is_ok_at_the_start_head() -> None:
    report = verify([])
    assert report.ok and report.records_checked == 0 and report.head == ChainHead.genesis()


@slow_ok
@given(chains, st.data())
def test_a_slice_verifies_from_its_known_head(records: Records, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, len(records)))
    rest = records[k:]
    report = verify(rest, start=head_after(records[k - 1]))
    assert report.ok and report.head == verify(records).head
    if rest:
        error = _error(rest)  # without the head it must start at seq 0
        assert (error.kind, error.index, error.seq) == ("missing", 0, k)
        wrong = ChainHead(k, "f" * 64)
        assert (_error(rest, start=wrong).kind, _error(rest, start=wrong).index) == ("modified", 0)


def test_first_record_must_follow_genesis() -> None:
    forged, _ = seal(ChainHead(0, "a" * 64), **_decision(0))
    error = _error([forged])
    assert (error.kind, error.index, error.seq) == ("modified", 0, 0)


# -- modification ---------------------------------------------------------------------

@slow_ok
@given(chains, st.data())
def test_changing_any_field_of_any_record_is_modified_there(records: Records, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(records) - 1))
    name = data.draw(st.sampled_from(FIELDS))
    new = data.draw(json_values | hashes)
    assume(rfc8785.dumps(new) != rfc8785.dumps(records[i][name]))
    tampered = [*records[:i], {**records[i], name: new}, *records[i + 1:]]
    error = _error(tampered)
    assert (error.kind, error.index) == ("modified", i)


@slow_ok
@given(chains, st.data())
def test_editing_inside_the_record_is_modified_there(records: Records, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(records) - 1))
    key = data.draw(st.text(max_size=6))
    new = data.draw(json_values)
    old = records[i]["record"]
    assume(key not in old or rfc8785.dumps(new) != rfc8785.dumps(old[key]))
    tampered = [*records[:i], {**records[i], "record": {**old, key: new}}, *records[i + 1:]]
    error = _error(tampered)
    assert (error.kind, error.index, error.seq) == ("modified", i, i)


@slow_ok
@given(chains, st.data())
def test_deleting_a_field_is_modified_there(records: Records, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(records) - 1))
    name = data.draw(st.sampled_from(FIELDS))
    tampered = [*records[:i], {k: v for k, v in records[i].items() if k != name}, *records[i + 1:]]
    error = _error(tampered)
    assert (error.kind, error.index) == ("modified", i)


@slow_ok
@given(chains.filter(lambda r: len(r) >= 2), entries, st.data())
def test_a_rehashed_replacement_is_modified(records: Records, item: dict, data: st.DataObject) -> None:
    n = len(records)
    i = data.draw(st.integers(0, n - 2))
    forged, _ = seal(ChainHead(i, records[i]["prev_hash"]), **item)
    assume(forged["hash"] != records[i]["hash"])
    error = _error([*records[:i], forged, *records[i + 1:]])
    assert error.kind == "modified"
    # with a record after the pair the forgery is pinned; at the tail either may be blamed
    assert (error.index == i) if i < n - 2 else (error.index in (i, i + 1))


@pytest.mark.parametrize(
    ("bad", "seq"),
    [(["not", "an", "object"], None), ({"seq": True}, None), ({"seq": 0}, 0), ("", None)],
)
def test_malformed_records_are_modified(bad: object, seq: int | None) -> None:
    records = chain([_decision(0)])
    error = _error([*records, bad])  # type: ignore[list-item]
    assert (error.kind, error.index, error.seq) == ("modified", 1, seq)


# -- missing, reordered, inserted -----------------------------------------------------

@slow_ok
@given(chains.filter(lambda r: len(r) >= 2), st.data())
def test_dropping_a_record_is_missing(records: Records, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(records) - 2))
    error = _error(records[:k] + records[k + 1:])
    assert (error.kind, error.index, error.seq) == ("missing", k, k + 1)
    assert error.message == f"1 record(s) missing: expected seq {k}, found {k + 1}"


def test_tail_truncation_shows_only_against_a_known_head() -> None:
    records, head = seal_many(ChainHead.genesis(), [_decision(i) for i in range(3)])
    report = verify(records[:-1])
    assert report.ok and report.head != head  # the caller compares with the head it knows


@slow_ok
@given(chains.filter(lambda r: len(r) >= 2), st.data())
def test_swapping_neighbours_is_reordered(records: Records, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(records) - 2))
    swapped = [*records[:k], records[k + 1], records[k], *records[k + 2:]]
    error = _error(swapped)
    assert (error.kind, error.index, error.seq) == ("reordered", k, k + 1)


@slow_ok
@given(chains.filter(lambda r: len(r) >= 2), st.data())
def test_swapping_any_two_records_is_detected(records: Records, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(records) - 2))
    j = data.draw(st.integers(i + 1, len(records) - 1))
    swapped = list(records)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    error = _error(swapped)
    assert error.kind in ("missing", "reordered") and error.index == i


@slow_ok
@given(chains, entries, st.data())
def test_inserting_a_chained_forgery_is_inserted(records: Records, item: dict, data: st.DataObject) -> None:
    n = len(records)
    k = data.draw(st.integers(0, n - 1))
    forged, _ = seal(head_after(records[k - 1]) if k else ChainHead.genesis(), **item)
    assume(forged["hash"] != records[k]["hash"])  # else it is the record itself, redelivered
    error = _error([*records[:k], forged, *records[k:]])
    assert error.kind == "inserted"
    if k <= n - 2:  # with a successor to tell which of the two the chain goes on from
        assert (error.index, error.seq) == (k, k)


@slow_ok
@given(chains, entries, st.integers(0, 20), hashes, st.data())
def test_inserting_any_forgery_is_detected(
    records: Records, item: dict, seq: int, prev_hash: str, data: st.DataObject,
) -> None:
    k = data.draw(st.integers(0, len(records)))
    assume(not (k == len(records) and seq == k and prev_hash == records[-1]["hash"]))  # a valid append
    forged, _ = seal(ChainHead(seq, prev_hash), **item)
    assume(all(forged["hash"] != r["hash"] for r in records))  # else a redelivered copy
    report = verify([*records[:k], forged, *records[k:]])
    assert not report.ok


def test_an_unlinked_record_taking_the_next_seq_is_inserted() -> None:
    records = chain([_decision(i) for i in range(3)])
    forged, _ = seal(ChainHead(1, "b" * 64), **_decision(9))
    error = _error([records[0], forged, *records[1:]])
    assert (error.kind, error.index, error.seq) == ("inserted", 1, 1)


# -- duplicates from at-least-once delivery -------------------------------------------

@slow_ok
@given(chains, st.data())
def test_a_redelivered_run_of_exact_copies_is_duplicate_not_tampering(records: Records, data: st.DataObject) -> None:
    b = data.draw(st.integers(1, len(records)))
    a = data.draw(st.integers(0, b - 1))
    replayed = records[:b] + records[a:b] + records[b:]
    report = verify(replayed)
    assert report.ok and report.duplicates == b - a
    assert report.first_duplicate is not None
    assert (report.first_duplicate.kind, report.first_duplicate.index, report.first_duplicate.seq) == ("duplicate", b, a)
    assert report.head == verify(records).head


def test_a_resealed_redelivery_of_the_same_source_event_is_duplicate() -> None:
    alert = dict(event_id="aud-a", kind="alert", tenant="acme", ts="2025-01-01T00:00:00Z",
                 policy_version="3f2a9c0d1e4b", record={"source_event_id": "cost-7", "severity": "warning"})
    items = [_decision(0), alert, _decision(2), _decision(3, request_id="req-0"), {**alert, "event_id": "aud-b"}]
    report = verify(chain(items))
    assert report.ok and report.duplicates == 2
    assert report.first_duplicate == Finding(3, 3, "duplicate", "repeats kind 'decision' and source event 'req-0' of seq 0")


def test_same_source_under_another_kind_or_tenant_is_not_duplicate() -> None:
    base = _decision(0)
    other_kind = {**base, "kind": "override"}
    other_tenant = {**base, "tenant": "globex"}
    assert verify(chain([base, other_kind, other_tenant])).duplicates == 0


def test_a_modified_duplicate_is_still_tampering() -> None:
    records = chain([_decision(i) for i in range(3)])
    copy = {**records[1], "tenant": "evil"}
    error = _error([*records, copy])
    assert (error.kind, error.index) == ("modified", 3)


def test_duplicates_are_recognised_within_the_window() -> None:
    records = chain([_decision(0), _decision(1), _decision(2), _decision(3, request_id="req-0")])
    assert verify(records, window=4).duplicates == 1
    assert verify(records, window=3).duplicates == 0  # seq 0 left the window
    error = _error([*records, records[0]], window=3)  # an exact copy older than the window
    assert (error.kind, error.index, error.seq) == ("reordered", 4, 0)
    with pytest.raises(ValueError):
        verify(records, window=0)
