"""The console's memory of recent alerts and dead letters: bounded, numbered across both
topics, decoded only when asked, fed by `OutputSink.watch` for the watched topics alone."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import orjson
import pytest

from resontinex.agents.effects import MAX_ECHO_BYTES
from resontinex.app.console.recent import PREVIEW_CHARS, Recent
from resontinex.app.engine.deadletter import dead_letter
from resontinex.app.engine.sink import OutputSink


def _alert(i: int, kind: str = "trust_floor_violation") -> bytes:
    return orjson.dumps({"event_id": f"a-{i}", "tenant": "acme", "kind": kind, "severity": "warning",
                         "message": f"alert {i}", "details": {"score": 0.5}, "source_event_id": f"r-{i}",
                         "ts": "2026-01-01T00:00:00.000Z"})


def _dead(value: bytes, code: str = "not_json", offset: int = 7) -> bytes:
    msg = SimpleNamespace(topic="decision-requests", partition=1, offset=offset, key=b"acme", value=value)
    return dead_letter(msg, code, "why")


def test_both_rings_share_one_numbering_and_a_page_gives_what_came_after() -> None:
    recent = Recent(capacity=10)
    recent.alerts("alerts", 0, b"acme", _alert(1))
    recent.dead_letters("dead-letters", 1, b"acme", _dead(b"nope"))
    recent.alerts("alerts", 0, b"acme", _alert(2))
    page = recent.page(0)
    assert page["seq"] == 3 and page["capacity"] == 10 and not page["truncated"]
    assert [(a["seq"], a["event_id"]) for a in page["alerts"]] == [(1, "a-1"), (3, "a-2")]
    assert [d["seq"] for d in page["dead_letters"]] == [2]
    later = recent.page(2)
    assert [a["seq"] for a in later["alerts"]] == [3] and later["dead_letters"] == []
    assert recent.page(3) == {"seq": 3, "capacity": 10, "truncated": False, "alerts": [], "dead_letters": []}


def test_the_rings_are_bounded_and_a_page_says_when_it_missed_some() -> None:
    recent = Recent(capacity=3)
    for i in range(1, 8):
        recent.alerts("alerts", 0, b"acme", _alert(i))
    assert len(recent.alerts) == 3
    page = recent.page(2)
    assert [a["event_id"] for a in page["alerts"]] == ["a-5", "a-6", "a-7"] and page["truncated"]
    assert not recent.page(4)["truncated"]  # 5, 6, 7 are all still kept


def test_a_restarted_worker_numbers_anew_below_what_the_page_saw() -> None:
    assert Recent().page(after=50)["seq"] == 0  # the page then reads again from 0


def test_an_alert_is_shaped_with_the_contract_fields() -> None:
    recent = Recent()
    recent.alerts("alerts", 2, b"acme", _alert(1, "budget_warning"))
    (row,) = recent.page()["alerts"]
    assert row["kind"] == "budget_warning" and row["tenant"] == "acme" and row["severity"] == "warning"
    assert row["partition"] == 2 and row["key"] == "acme" and row["details"] == {"score": 0.5}
    assert row["source_event_id"] == "r-1" and row["queued_at"].endswith("Z")


def test_a_dead_letter_shows_its_code_origin_and_the_start_of_the_original_bytes() -> None:
    recent = Recent()
    recent.dead_letters("dead-letters", 1, b"acme", _dead(b"\xffnot json", offset=42))
    recent.dead_letters("dead-letters", 1, None, _dead(b"x" * (MAX_ECHO_BYTES + 5), code="too_large"))
    first, big = recent.page()["dead_letters"]
    assert (first["code"], first["message"], first["source_topic"], first["source_partition"], first["offset"]) == \
        ("not_json", "why", "decision-requests", 1, 42)
    assert first["source_key"] == "acme" and first["preview"] == "\ufffdnot json" and first["value_bytes"] == 9
    assert big["code"] == "too_large" and big["value_bytes"] == MAX_ECHO_BYTES + 5
    assert big["preview"] == "x" * PREVIEW_CHARS and big["key"] is None


@pytest.mark.parametrize("value", [b"not json", b"[1, 2]", orjson.dumps({"value_base64": "%%%"})])
def test_an_odd_value_is_listed_not_raised(value: bytes) -> None:
    recent = Recent()
    recent.alerts("alerts", 0, None, value)
    recent.dead_letters("dead-letters", 0, None, value)
    page = recent.page()
    (alert,), (dead,) = page["alerts"], page["dead_letters"]
    if value.startswith(b"{"):  # a JSON object, short of fields: shown with what it has
        assert alert["kind"] is None and dead["code"] is None and dead["preview"] == ""
    else:
        assert alert["undecodable"] and dead["undecodable"] and dead["preview"] == value.decode()


def test_keeping_a_message_does_not_decode_it() -> None:
    recent = Recent()
    recent.alerts("alerts", 0, None, b"\x00 not even utf-8 \xff")  # kept as is; shaped only by page()
    assert recent.alerts.last == 1


class _Batch:
    def append(self, **_: object) -> object:
        return object()


def _sink() -> OutputSink:
    sink = OutputSink("127.0.0.1:1")
    sink._producer = SimpleNamespace(create_batch=_Batch)  # type: ignore[assignment]  # no broker: add() only
    return sink


def test_the_sink_hands_watched_topics_only_to_the_watchers() -> None:
    sink, recent = _sink(), Recent()
    sink.watch(["alerts"], recent.alerts)
    sink.watch(["dead-letters"], recent.dead_letters)
    seen: list[tuple[str, int, bytes | None, bytes]] = []
    sink.watch(["alerts", "dead-letters"], lambda *args: seen.append(args))
    sink.add("decisions", 0, b"acme", b"{}")
    sink.add("alerts", 3, b"acme", _alert(1))
    sink.add("dead-letters", 1, None, _dead(b"x"))
    assert [(t, p, k) for t, p, k, _ in seen] == [("alerts", 3, b"acme"), ("dead-letters", 1, None)]
    page = recent.page()
    assert [a["event_id"] for a in page["alerts"]] == ["a-1"] and [d["code"] for d in page["dead_letters"]] == ["not_json"]


def test_an_unwatched_sink_behaves_as_before() -> None:
    sink = _sink()
    sink.add("alerts", 0, None, b"{}")
    assert list(sink._open) == [("alerts", 0)]
