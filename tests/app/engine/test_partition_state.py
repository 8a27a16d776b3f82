from resontinex.agents.audit import ChainHead, seal_many
from resontinex.app.engine.partition_state import recover


def _entry(i: int) -> dict:
    decision = {"event_id": f"d-{i}", "tenant": "acme", "trust": {"raw_score": i / 10}}
    return {"event_id": f"au-{i}", "kind": "decision", "tenant": "acme", "ts": "2026-01-01T00:00:00Z",
            "policy_version": "p", "record": {"request": {"event_id": f"r-{i}"}, "decision": decision,
                                              "source": {"topic": "decision-requests", "partition": 0, "offset": 40 + i}}}


def test_recovers_head_requests_decisions_and_next_offset():
    alert = {"event_id": "au-a", "kind": "alert", "tenant": "acme", "ts": "2026-01-01T00:00:00Z",
             "policy_version": "p", "record": {"alert": {}}}
    records, head = seal_many(ChainHead.genesis(), [_entry(0), _entry(1), alert, _entry(2)])
    state = recover(records, horizon=10)
    assert state.head == head
    assert all(f"r-{i}" in state.requests for i in range(3))
    assert state.decisions.get("d-1") == ("acme", 0.1, None, None)
    assert state.next_offset == 43


def test_an_empty_audit_partition_starts_a_new_chain():
    state = recover([], horizon=10)
    assert state.head == ChainHead.genesis() and state.next_offset is None and len(state.requests) == 0


def test_the_horizon_bounds_what_is_remembered():
    records, _ = seal_many(ChainHead.genesis(), [_entry(i) for i in range(5)])
    state = recover(records, horizon=2)
    assert "r-0" not in state.requests and "r-4" in state.requests


def _with_budget(i: int, status: str, blocked_since: str | None) -> dict:
    entry = _entry(i)
    entry["record"]["decision"]["budget"] = {"scope": "acme", "period_start": "2026-01-01T00:00:00Z",
                                             "status": status, "blocked_since": blocked_since}
    return entry


def _change(to: str) -> dict:
    return {"event_id": f"sc-{to}", "kind": "state_change", "tenant": "acme", "ts": "2026-01-01T00:00:00Z",
            "policy_version": "p", "record": {"budget": {"scope": "acme", "period_start": "2026-01-01T00:00:00Z",
                                                         "from": "ok", "to": to}}}


def test_budget_marks_come_back_from_state_changes_and_decisions():
    since = "2026-01-01T10:00:00Z"
    items = [_with_budget(0, "review", None), _change("review"), _with_budget(1, "review", None),  # approval only
             _with_budget(2, "blocked", since), _change("blocked"), _with_budget(3, "blocked", since)]
    records, _ = seal_many(ChainHead.genesis(), items)
    mark = recover(records, horizon=10).marks.get("acme|2026-01-01T00:00:00Z")
    assert mark is not None and mark.level == 3 and mark.blocked_since == 1767261600.0
    records, _ = seal_many(ChainHead.genesis(), [_with_budget(0, "review", None)])  # no state change: no level
    assert recover(records, horizon=10).marks.get("acme|2026-01-01T00:00:00Z").level == 0


def test_decisions_sent_without_their_audit_are_kept_to_resume():
    records, _ = seal_many(ChainHead.genesis(), [_entry(0), _entry(1)])
    state = recover(records, horizon=10)
    sent = [{"decision": {"event_id": f"d-{i}", "request_id": f"r-{i}", "verb": verb}}
            for i, verb in ((1, "execute"), (2, "review"), (3, "execute"), (2, "defer"))]
    state.resume([*sent, "not a value", {"decision": None}])
    assert sorted(state.unaudited) == ["d-2", "d-3"]  # r-1 is audited: its decision is not in doubt
    assert state.unaudited["d-2"]["decision"]["verb"] == "defer"  # the later copy of a decision wins
