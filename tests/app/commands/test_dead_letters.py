"""`resontinex dead-letters …` without a broker: IDs, instants, filters, selection, the
re-drive plan and its headers, formatting, and the usage errors refused before Kafka."""

from __future__ import annotations

import argparse
import base64
import json
from dataclasses import dataclass

import orjson
import pytest

from resontinex.agents import effects
from resontinex.app.cli import main
from resontinex.app.commands.dead_letters import (Filters, Letter, Previous, decode_original, format_table, letter,
                                                  not_redrivable, parse_id, parse_instant_ms, plan_redrive,
                                                  previous_redrive, redrive_headers, row, select, show_document)
from resontinex.app.exceptions import UsageError
from resontinex.schemas import InvalidEvent

UNREACHABLE = "127.0.0.1:1"
T0 = 1_777_000_000_000  # ms


@dataclass(frozen=True)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float = 0.0


def _dead(at: int, source: _Record, code: str = "unknown_decision", *, where: tuple[int, int] | None = None) -> Letter:
    """The dead letter the processor writes for `source` (`agents.effects.dead_letter`), read back at `where`."""
    out = effects.dead_letter(source, code, f"{code} happened", T0 + at)
    partition, offset = where or (source.partition, at)
    return letter(partition, offset, out.value)


ORIGINAL = b'{"event_id": "o-1", "tenant": "acme", "decision_id": "d-1"}'
A = _dead(0, _Record("outcomes", 1, 40, b"acme", ORIGINAL))
B = _dead(1_000, _Record("decision-requests", 2, 7, b"beta", b"not json {"), "not_json")
C = _dead(2_000, _Record("costs", 1, 3, None, b'{"event_id": "c-1"}'), "missing_field")


def test_the_processors_dead_letters_read_back_whole() -> None:
    assert (A.id, A.original(), A.event_id(), A.record.key, A.record.error.code) == (
        "1:0", ORIGINAL, "o-1", "acme", "unknown_decision")
    assert B.event_id() is None and C.record.key is None
    assert [not_redrivable(d) for d in (A, B, C)] == [None, None, None]


def test_a_record_that_is_no_dead_letter_is_refused() -> None:
    with pytest.raises(InvalidEvent):
        letter(0, 0, b'{"event_id": "x"}')


@pytest.mark.parametrize("text", ["", "1", "1:", ":2", "a:b", "-1:2", "1:2:3"])
def test_a_malformed_id_is_bad_usage(text: str) -> None:
    with pytest.raises(UsageError, match="PARTITION:OFFSET"):
        parse_id(text)


def test_instants_in_every_accepted_form() -> None:
    assert parse_instant_ms("--since", "2026-04-24T03:06:40Z") == T0
    assert parse_instant_ms("--since", "2026-04-24T05:06:40+02:00") == T0
    assert parse_instant_ms("--since", str(T0)) == T0
    assert parse_instant_ms("--since", "2026-04-24") == T0 - (3 * 3600 + 6 * 60 + 40) * 1000
    with pytest.raises(UsageError, match="--until '24/04/2026'"):
        parse_instant_ms("--until", "24/04/2026")


def test_filters_by_topic_code_and_half_open_time() -> None:
    letters = [A, B, C]
    assert [d.id for d in letters if Filters().matches(d)] == ["1:0", "2:1000", "1:2000"]
    assert not Filters()
    assert [d.id for d in letters if Filters(topics=frozenset({"outcomes", "costs"})).matches(d)] == ["1:0", "1:2000"]
    assert [d.id for d in letters if Filters(codes=frozenset({"not_json"})).matches(d)] == ["2:1000"]
    window = Filters(since_ms=T0 + 1_000, until_ms=T0 + 2_000)
    assert [d.id for d in letters if window.matches(d)] == ["2:1000"]


def test_a_registry_topic_filter_is_named_as_on_the_broker() -> None:
    args = argparse.Namespace(topic=["decision_requests", "outcomes", "elsewhere"], code=["not_json"],
                              since=None, until="2026-05-01")
    filters = Filters.from_args(args, "prod.")
    assert filters.topics == {"prod.decision-requests", "prod.outcomes", "elsewhere"}
    assert filters.codes == {"not_json"} and filters.since_ms is None and filters.until_ms is not None


def test_selection_by_id_and_filter() -> None:
    assert select([A, B, C], ["2:1000", "1:0", "1:0"], Filters()) == [B, A]
    assert select([A, B, C], ["2:1000", "1:0"], Filters(codes=frozenset({"not_json"}))) == [B]
    assert select([A, B, C], [], Filters(codes=frozenset({"missing_field"}))) == [C]
    with pytest.raises(UsageError, match="no dead letter 9:9 on the topic"):
        select([A, B, C], ["1:0", "9:9"], Filters())


def test_rows_and_the_table() -> None:
    assert row(A) == {"id": "1:0", "ts": "2026-04-24T03:06:40.000Z", "source_topic": "outcomes", "partition": 1,
                      "offset": 40, "key": "acme", "code": "unknown_decision", "message": "unknown_decision happened",
                      "event_id": "o-1", "dead_letter_event_id": A.record.event_id, "value_size": len(ORIGINAL),
                      "value_truncated": False}
    lines = format_table([row(d) for d in (A, B)]).splitlines()
    assert lines[0].split() == ["TS", "ID", "SOURCE", "CODE", "EVENT", "REASON"]
    assert lines[1].split()[:5] == ["2026-04-24T03:06:40.000Z", "1:0", "outcomes[1]@40", "unknown_decision", "o-1"]
    assert lines[2].split()[:5] == ["2026-04-24T03:06:41.000Z", "2:1000", "decision-requests[2]@7", "not_json", "-"]
    long = format_table([{**row(A), "message": "x" * 200}])
    assert long.splitlines()[1].endswith("x…") and len(long.splitlines()[1]) < 200


def test_show_decodes_the_original() -> None:
    shown = show_document(A)
    assert shown["id"] == "1:0" and shown["dead_letter"] == orjson.loads(orjson.dumps(A.raw))
    assert shown["original"] == {"encoding": "json", "value": json.loads(ORIGINAL)}
    assert show_document(B)["original"] == {"encoding": "utf-8", "value": "not json {"}
    assert decode_original(b"\x80abc") == {"encoding": "base64", "value": base64.b64encode(b"\x80abc").decode()}


def _with(dead: Letter, **fields: object) -> Letter:
    return letter(dead.partition, dead.offset, orjson.dumps({**dead.raw, **fields}))


def test_an_original_not_held_whole_is_never_redriven() -> None:
    big = _dead(0, _Record("decision-requests", 0, 1, b"acme", b"x" * (effects.MAX_ECHO_BYTES + 1)))
    assert big.record.value_truncated and "cut" in (not_redrivable(big) or "")
    assert "value_sha256" in (not_redrivable(_with(A, value_base64=base64.b64encode(b"{}").decode())) or "")
    assert "not base64" in (not_redrivable(_with(A, value_base64="%%%")) or "")
    lossy = _dead(0, _Record("outcomes", 1, 40, b"\xffacme", ORIGINAL))
    assert "not UTF-8" in (not_redrivable(lossy) or "")
    assert show_document(_with(A, value_base64="%%%"))["original"] is None


def test_the_plan_sends_once_per_original_and_skips_earlier_redrives() -> None:
    again = _dead(5_000, _Record("outcomes", 1, 40, b"acme", ORIGINAL), where=(1, 9))  # a redelivered dead letter
    truncated = _dead(0, _Record("costs", 3, 1, b"acme", b"x" * (effects.MAX_ECHO_BYTES + 1)), where=(3, 0))
    steps = plan_redrive([A, again, B, truncated], {}, force=False)
    assert [(s.dead.id, s.action) for s in steps] == [("1:0", "send"), ("1:9", "skip"), ("2:1000", "send"),
                                                      ("3:0", "refuse")]
    assert steps[1].why == "the same original as 1:0"

    earlier = {A.record.event_id: Previous("outcomes", 1, 41, "ops-1", "2026-04-24T04:00:00.000Z")}
    skipped = plan_redrive([A], earlier, force=False)
    assert [(s.action, s.why) for s in skipped] == [
        ("skip", "already re-driven to outcomes[1]@41 by ops-1 at 2026-04-24T04:00:00.000Z (--force sends it again)")]
    (forced,) = plan_redrive([A], earlier, force=True)
    assert forced.action == "send" and forced.why.startswith("again (--force)")


def test_headers_say_which_dead_letter_a_record_redrives() -> None:
    headers = redrive_headers(A, "ops-1", "decision now known", T0)
    assert dict(headers) == {"resontinex-redrive-of": A.record.event_id.encode(), "resontinex-redrive-id": b"1:0",
                             "resontinex-redrive-operator": b"ops-1",
                             "resontinex-redrive-reason": b"decision now known",
                             "resontinex-redrive-at": b"2026-04-24T03:06:40.000Z"}
    assert previous_redrive("outcomes", 1, 41, headers) == (
        A.record.event_id, Previous("outcomes", 1, 41, "ops-1", "2026-04-24T03:06:40.000Z"))
    assert previous_redrive("outcomes", 1, 41, []) is None


@pytest.mark.parametrize(("argv", "message"), [
    (["redrive"], "choose dead letters by ID or with --topic"),
    (["redrive", "1:0", "--apply"], "--operator and --reason are required"),
    (["redrive", "1:0", "--apply", "--operator", "ops-1", "--reason", " "], "--operator and --reason are required"),
    (["redrive", "1-0"], "PARTITION:OFFSET"),
    (["list", "--since", "soon"], "--since 'soon'"),
    (["show", "first"], "PARTITION:OFFSET"),
])
def test_bad_usage_is_refused_before_kafka(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["dead-letters", *argv, "--bootstrap", UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["list"], ["show", "0:0"], ["redrive", "0:0"]])
def test_an_unreachable_broker_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["dead-letters", *argv, "--bootstrap", UNREACHABLE, "--log-level", "ERROR"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("resontinex: ") and UNREACHABLE in err[0]
