"""An enhancement's lifecycle: allowed transitions, the events and alerts they raise, the stored record."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.enhancement._lifecycle import ALERTS, TRANSITIONS, Awaiting, Enhancement, Transition, move
from resontinex.agents.enhancement.exceptions import EnhancementError
from resontinex.schemas import ENHANCEMENT_STATES, EnhancementEvent, ts_to_ms

FROM: tuple[str | None, ...] = (None, *ENHANCEMENT_STATES)
PAIRS = [(a, b) for a in FROM for b in ENHANCEMENT_STATES]
T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def new(eid: str = "enh-1", state: str | None = None, **changes: Any) -> Enhancement:
    e = Enhancement.new(eid, "acme", "trust_policy", "automatic", now=T0,
                        submission={"description": "raise the floor", "payload": {"trust_floor": 0.7},
                                    "thresholds": {"mandatory": 1.0}})
    return replace(e, state=state, **changes)


def go(e: Enhancement, to_state: str, code: str = "ok", now: float = T0 + 1, **changes: Any) -> Transition:
    return move(e, to_state, code, f"to {to_state}", {"why": code}, now=now, **changes)


def parse_rfc3339(ts: str) -> datetime:
    assert ts.endswith("Z")
    parsed = datetime.fromisoformat(ts)
    assert parsed.tzinfo is not None and parsed.utcoffset() == timezone.utc.utcoffset(None)
    return parsed


def test_transitions_cover_every_state() -> None:
    assert set(TRANSITIONS) == set(FROM)
    assert set().union(*TRANSITIONS.values()) <= set(ENHANCEMENT_STATES)
    assert TRANSITIONS["retired"] == frozenset()


@pytest.mark.parametrize(("from_state", "to_state"), PAIRS)
def test_only_the_lifecycles_transitions_are_allowed(from_state: str | None, to_state: str) -> None:
    e = new(state=from_state, transitions=0 if from_state is None else 3)
    if to_state in TRANSITIONS[from_state]:
        t = go(e, to_state)
        assert t.enhancement.state == to_state and t.enhancement.transitions == e.transitions + 1
        assert (t.event["from_state"], t.event["to_state"]) == (from_state, to_state)
        EnhancementEvent.model_validate(t.event)
    else:
        with pytest.raises(EnhancementError):
            go(e, to_state)


@pytest.mark.parametrize("from_state", [s for s in FROM if s != "retired"])
def test_anything_but_a_new_record_can_retire(from_state: str | None) -> None:
    assert ("retired" in TRANSITIONS[from_state]) is (from_state is not None)


def test_the_first_event() -> None:
    t = go(new(), "pending", "submitted", now=T0)
    ev = t.event
    assert ev["from_state"] is None and ev["to_state"] == "pending"
    assert (ev["enhancement_id"], ev["tenant"], ev["kind"]) == ("enh-1", "acme", "trust_policy")
    assert ev["reason"] == {"code": "submitted", "message": "to pending"} and ev["evidence"] == {"why": "submitted"}
    assert ev["ts"] == "2024-05-01T12:00:00.000Z" and ev["schema_version"] == 1
    assert (ev["phase"], ev["share"], ev["cooldown_until"], ev["operator_id"], ev["deactivations"]) == \
        (None, None, None, None, 0)
    assert t.alert is None and t.enhancement.transitions == 1
    EnhancementEvent.model_validate(ev)


def walk() -> list[Transition]:
    """pending → validated → active (canary) → active (full) → deactivated → cooldown → active →
    retired."""
    out = [go(new(), "pending", now=T0)]
    out.append(go(out[-1].enhancement, "validated", now=T0 + 1))
    out.append(go(out[-1].enhancement, "active", "activated", now=T0 + 2, phase="canary", share=0.1,
                  activated_at=T0 + 2))
    out.append(go(out[-1].enhancement, "active", "promoted", now=T0 + 3, phase="full", share=1.0))
    out.append(go(out[-1].enhancement, "deactivated", "critical_regression", now=T0 + 4,
                  deactivations=1, cooldown_until=T0 + 86_404.5))
    out.append(go(out[-1].enhancement, "cooldown", now=T0 + 5))
    out.append(go(out[-1].enhancement, "active", "reactivated", now=T0 + 86_405, phase="canary", share=0.2))
    out.append(go(out[-1].enhancement, "retired", "operator", now=T0 + 86_406, operator_id="ops-1"))
    return out


def test_phase_and_share_only_while_active() -> None:
    for t in walk():
        if t.event["to_state"] == "active":
            assert (t.event["phase"], t.event["share"]) == (t.enhancement.phase, t.enhancement.share)
            assert t.event["phase"] in ("canary", "full")
        else:
            assert t.event["phase"] is None and t.event["share"] is None
    deactivated = walk()[4]
    assert deactivated.enhancement.phase == "full"  # the record keeps it; the event does not show it


def test_cooldown_until_only_into_cooldown_as_rfc_3339() -> None:
    events = [t.event for t in walk()]
    (cooling,) = [ev for ev in events if ev["to_state"] == "cooldown"]
    assert cooling["cooldown_until"] == "2024-05-02T12:00:04.500Z"
    assert parse_rfc3339(cooling["cooldown_until"]).timestamp() == T0 + 86_404.5
    assert ts_to_ms(cooling["cooldown_until"]) == round((T0 + 86_404.5) * 1000)
    assert all(ev["cooldown_until"] is None for ev in events if ev["to_state"] != "cooldown")


def test_into_cooldown_without_an_until_gives_none() -> None:
    t = go(new(state="deactivated"), "cooldown")
    assert t.event["cooldown_until"] is None
    EnhancementEvent.model_validate(t.event)


def test_every_event_validates_against_the_wire_model() -> None:
    for t in walk():
        model = EnhancementEvent.model_validate(t.event)
        assert model.to_state == t.event["to_state"] and model.event_id == t.event["event_id"]
        parse_rfc3339(t.event["ts"])
    assert walk()[-1].event["operator_id"] == "ops-1"
    assert walk()[4].event["deactivations"] == 1


def test_event_ids_are_deterministic_and_distinct() -> None:
    ids = [t.event["event_id"] for t in walk()]
    assert ids == [t.event["event_id"] for t in walk()]  # the same transitions again: the same ids
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("ee-") for i in ids)


def test_event_ids_depend_on_the_enhancement_the_count_and_the_transition() -> None:
    """The same transition redone (after a crash) keeps its id; another transition made in
    its place under the same count (more evidence by then) gets its own."""
    a = go(new("enh-1", state="active", transitions=4), "deactivated", "x", now=T0)
    again = go(new("enh-1", state="active", transitions=4), "deactivated", "x", now=T0 + 99)
    b = go(new("enh-1", state="active", transitions=4), "active", "y", now=T0)  # same count, another move
    c = go(new("enh-2", state="active", transitions=4), "deactivated", "x", now=T0)
    d = go(new("enh-1", state="active", transitions=5), "deactivated", "x", now=T0)
    assert a.event["event_id"] == again.event["event_id"]
    assert len({a.event["event_id"], b.event["event_id"], c.event["event_id"], d.event["event_id"]}) == 4


@given(st.text(min_size=1, max_size=20), st.integers(0, 1000), st.integers(0, 1000))
def test_event_ids_differ_across_transition_counts(eid: str, n: int, m: int) -> None:
    a = go(new(eid, state="active", transitions=n), "deactivated").event["event_id"]
    b = go(new(eid, state="active", transitions=m), "deactivated").event["event_id"]
    assert (a == b) is (n == m)


@pytest.mark.parametrize(("from_state", "to_state", "code", "alert"), [
    ("active", "deactivated", "critical_regression", ("enhancement_deactivated", "critical")),
    ("active", "deactivated", "consecutive_violations", ("enhancement_deactivated", "warning")),
    ("active", "deactivated", "canary_failed", ("enhancement_deactivated", "warning")),
    ("active", "deactivated", "operator", ("enhancement_deactivated", "warning")),
    ("pending", "rejected", "preflight_failed", ("enhancement_rejected", "warning")),
    ("pending", "rejected", "critical_regression", ("enhancement_rejected", "warning")),
    ("deactivated", "permanently_disabled", "max_deactivations", ("enhancement_disabled", "critical")),
    ("pending", "validated", "critical_regression", None),
    ("validated", "active", "ok", None),
    ("deactivated", "cooldown", "ok", None),
    ("active", "retired", "critical_regression", None),
])
def test_alerts(from_state: str, to_state: str, code: str, alert: tuple[str, str] | None) -> None:
    assert go(new(state=from_state), to_state, code).alert == alert


def test_the_alert_table() -> None:
    assert set(ALERTS) == {"rejected", "deactivated", "permanently_disabled"}


def test_move_applies_changes_and_clears_awaiting() -> None:
    e = new(state="active", awaiting=Awaiting("deactivated", "consecutive_violations", "3 rounds"), consecutive=3)
    t = go(e, "deactivated", "consecutive_violations", deactivations=2, consecutive=0)
    assert t.enhancement.awaiting is None
    assert (t.enhancement.deactivations, t.enhancement.consecutive) == (2, 0)
    assert t.event["deactivations"] == 2
    assert e.state == "active" and e.awaiting is not None  # the record moved is left as it was


def test_a_refused_transition_changes_nothing() -> None:
    e = new(state="retired", transitions=7)
    with pytest.raises(EnhancementError, match="enh-1"):
        go(e, "active")
    assert e.state == "retired" and e.transitions == 7


def full_record() -> Enhancement:
    return replace(new(state="active"), phase="canary", share=0.25, deactivations=1, consecutive=2,
                   cooldown_until=T0 + 3600.25, activated_at=T0 + 10, transitions=5, monitored_upto=T0 + 120,
                   judged_at=T0 + 60.5, judgement={"verdict": "pass", "score": 100.0},
                   preflight={"schema": {"passed": True}},
                   awaiting=Awaiting("deactivated", "consecutive_violations", "3 major rounds",
                                     {"consecutive": 3}, 3600.0))


@pytest.mark.parametrize("record", [new(), new(state="pending"), full_record()])
def test_as_dict_round_trips_through_orjson(record: Enhancement) -> None:
    assert Enhancement.from_dict(record.as_dict()) == record
    back = Enhancement.from_dict(orjson.loads(orjson.dumps(record.as_dict())))
    assert back == record
    assert back.awaiting == record.awaiting


def test_status_drops_the_payload_and_renders_times() -> None:
    record = full_record()
    status = record.status()
    assert status["submission"] == {"description": "raise the floor", "thresholds": {"mandatory": 1.0}}
    assert "payload" in record.submission  # the record keeps it
    assert status["submitted_at"] == "2024-05-01T12:00:00.000Z"
    assert status["cooldown_until"] == "2024-05-01T13:00:00.250Z"
    assert status["judged_at"] == "2024-05-01T12:01:00.500Z"
    for key in ("submitted_at", "cooldown_until", "activated_at", "monitored_upto", "judged_at"):
        assert ts_to_ms(status[key]) == round(getattr(record, key) * 1000)
        parse_rfc3339(status[key])
    assert status["awaiting"]["to_state"] == "deactivated"
    assert (status["state"], status["phase"], status["share"]) == ("active", "canary", 0.25)
    orjson.dumps(status)  # JSON as it is


def test_status_keeps_absent_times_absent() -> None:
    status = new().status()
    assert status["cooldown_until"] is None and status["activated_at"] is None and status["judged_at"] is None
    assert status["monitored_upto"] is None and status["awaiting"] is None
