"""`resontinex enhancement …` without a broker: arguments and help, submit's local
validation, list/show formatting, the export document and its hash verification."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from resontinex.agents.audit import AuditEntry, ChainHead, record_hash, seal_many
from resontinex.app.cli import main, parser
from resontinex.app.commands.enhancement_cli import (build_export, evidence_figures, format_list, format_show,
                                                     latest_states, load_submission, transition_line, verify_records)
from resontinex.app.exceptions import UsageError

UNREACHABLE = ("--bootstrap", "127.0.0.1:1")


SUBMISSION = {"enhancement_id": "e1", "tenant": "acme", "kind": "prompt", "description": "shorter prompt",
              "payload": {"name": "concise"}, "requirements": ["numpy>=2"],
              "thresholds": {"mandatory": 1.0, "proxy": 0.8}, "mode": "semi_automatic"}


def _event(n: int, eid: str, frm: str | None, to: str, code: str, message: str = "", *, tenant: str = "acme",
           **extra: Any) -> dict[str, Any]:
    return {"event_id": f"ee-{eid}-{n}", "schema_version": 1, "enhancement_id": eid, "tenant": tenant,
            "kind": "prompt", "from_state": frm, "to_state": to, "reason": {"code": code, "message": message},
            "evidence": extra.pop("evidence", {}), "phase": None, "share": None, "deactivations": 0,
            "cooldown_until": None, "operator_id": None, "ts": f"2026-01-01T00:00:0{n}.000Z", **extra}


PREFLIGHT = {"schema": {"passed": True, "score": 1.0, "errors": []},
             "requirements": {"passed": True, "score": 1.0, "requirements": [], "failed": []},
             "thresholds": {"passed": True, "score": 0.797, "items": {}, "critical_failures": []}}
APPROVAL = {"operator_id": "ops-7", "reason": "reviewed", "command_event_id": "ctl-1"}
LIFE = [
    _event(1, "e1", None, "pending", "submitted", "shorter prompt", evidence={"submission_event_id": "s-1"}),
    _event(2, "e1", "pending", "validated", "preflight_passed", "preflight passed: schema 1", evidence=PREFLIGHT),
    _event(3, "e1", "validated", "active", "activated", "preflight passed", phase="canary", share=0.1,
           operator_id="ops-7", evidence={"preflight_score": 0.797, "approval": APPROVAL}),
]


# --- arguments and help


@pytest.mark.parametrize(("action", "phrase"), [
    ("submit", "publish it on `enhancements`"), ("list", "latest state"), ("show", "Every transition"),
    ("approve", "enhancement_approve"), ("retire", "enhancement_retire"), ("export", "audit topic"),
])
def test_every_sub_command_has_help_saying_what_it_does(capsys, action, phrase):
    with pytest.raises(SystemExit) as done:
        main(["enhancement", action, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert phrase in " ".join(out.split()) and "--bootstrap" in out and "--config-dir" in out


def test_the_group_lists_its_sub_commands(capsys):
    with pytest.raises(SystemExit):
        main(["enhancement", "--help"])
    out = capsys.readouterr().out
    assert all(a in out for a in ("submit", "list", "show", "approve", "retire", "export"))


def test_arguments_parse_with_their_defaults():
    args = parser().parse_args(["enhancement", "approve", "e1", "--tenant", "acme", "--operator", "ops",
                                "--reason", "ok", *UNREACHABLE])
    assert (args.command, args.action, args.enhancement_id, args.control_action) == \
        ("enhancement", "approve", "e1", "enhancement_approve")
    assert args.wait == 30.0 and not args.no_wait and args.bootstrap == "127.0.0.1:1"
    args = parser().parse_args(["enhancement", "retire", "e1", "--tenant", "a", "--operator", "o", "--reason", "r",
                                "--no-wait"])
    assert args.control_action == "enhancement_retire" and args.no_wait
    args = parser().parse_args(["enhancement", "list", "--tenant", "acme", "--state", "active",
                                "--output-format", "json"])
    assert (args.tenant, args.state, args.output_format) == ("acme", "active", "json")
    args = parser().parse_args(["enhancement", "export", "e1", "--output", "x.json", "--config-dir", "cfg"])
    assert (args.output, args.config_dir) == ("x.json", "cfg")
    assert parser().parse_args(["enhancement", "submit", "-", "--wait", "5"]).wait == 5.0


@pytest.mark.parametrize("argv", [
    ["enhancement", "approve", "e1", "--operator", "o", "--reason", "r"],  # no --tenant
    ["enhancement", "list", "--state", "sleeping"],
    ["enhancement", "show"],
    ["enhancement", "submit"],
    ["enhancement", "bless", "e1"],
])
def test_bad_arguments_are_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2


# --- submit: local validation, before any Kafka I/O


def test_a_bad_submission_file_is_exit_2_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SUBMISSION, "canary_share": 1.5, "mode": "eventually"}))
    assert main(["enhancement", "submit", str(bad), *UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert "canary_share: must be ≤ 1 (got 1.5)" in err and "mode: must be one of" in err


def test_a_missing_required_field_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({k: v for k, v in SUBMISSION.items() if k != "thresholds"}))
    assert main(["enhancement", "submit", str(bad), *UNREACHABLE]) == 2
    assert "thresholds: is required" in capsys.readouterr().err


def test_a_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["enhancement", "submit", str(tmp_path / "nope.yaml"), *UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "No such file" in err


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty"), ("[1, 2]", "not one submission"), ("{unclosed: [", "neither JSON nor YAML"),
    ('{"enhancement_id": "e1", "x": .nan}', "x: must be a finite number"),  # YAML's NaN, even in an extra field
])
def test_unreadable_files_are_usage_errors(text, says):
    with pytest.raises(UsageError, match=says):
        load_submission("-", stdin=io.StringIO(text))


def test_non_finite_numbers_from_yaml_are_named():
    doc = yaml.safe_dump({**SUBMISSION, "thresholds": {"mandatory": float("nan")}})
    with pytest.raises(UsageError, match=r"thresholds\.mandatory: must be a finite number"):
        load_submission("-", stdin=io.StringIO(doc))


def test_a_good_submission_gets_an_event_id_unless_it_has_one(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SUBMISSION))
    first, second = load_submission(str(path)), load_submission(str(path))
    assert first.event_id.startswith("enh-") and first.event_id != second.event_id
    assert (first.mode, first.canary_share, first.payload) == ("semi_automatic", 0.1, {"name": "concise"})
    path.write_text(json.dumps({**SUBMISSION, "event_id": "mine"}))
    assert load_submission(str(path)).event_id == "mine"


def test_approve_validates_the_command_before_any_kafka_io(capsys):
    assert main(["enhancement", "approve", "e1", "--tenant", "acme", "--operator", "ops", "--reason", "  ",
                 *UNREACHABLE]) == 2
    assert "reason" in capsys.readouterr().err
    assert main(["enhancement", "retire", "x" * 200, "--tenant", "acme", "--operator", "ops", "--reason", "r",
                 *UNREACHABLE]) == 2
    assert "enhancement_id" in capsys.readouterr().err
    assert main(["enhancement", "submit", "-", "--wait", "-1", *UNREACHABLE]) == 2


# --- list / show formatting


def test_latest_states_keep_the_last_transition_of_each():
    events = [*LIFE, LIFE[1],  # a redelivered event counts once
              _event(1, "e2", None, "pending", "submitted", tenant="globex"),
              _event(2, "e2", "pending", "rejected", "preflight_failed", "thresholds: mandatory below minimum",
                     tenant="globex")]
    rows = latest_states(events)
    assert [(r["enhancement_id"], r["tenant"], r["state"], r["transitions"]) for r in rows] == \
        [("e1", "acme", "active", 3), ("e2", "globex", "rejected", 2)]
    assert rows[0]["phase"] == "canary" and rows[0]["share"] == 0.1 and rows[0]["ts"] == "2026-01-01T00:00:03.000Z"
    assert rows[0]["submitted_at"] == "2026-01-01T00:00:01.000Z"
    assert [r["enhancement_id"] for r in latest_states(events, tenant="globex")] == ["e2"]
    assert [r["enhancement_id"] for r in latest_states(events, state="active")] == ["e1"]
    assert latest_states(events, tenant="acme", state="rejected") == []


def test_the_list_is_an_aligned_table():
    rows = latest_states([*LIFE, _event(1, "a-much-longer-id", None, "pending", "submitted", "x" * 200,
                                        tenant="globex")])
    lines = format_list(rows).splitlines()
    assert lines[0].split() == ["ID", "TENANT", "KIND", "STATE", "PHASE/SHARE", "DEACT", "REASON", "TS"]
    starts = [lines[0].index(h) for h in ("TENANT", "STATE", "PHASE/SHARE", "REASON")]
    for line in lines[1:]:
        assert all(line[s - 2: s] == "  " and line[s] != " " for s in starts)
    assert "canary 10%" in lines[1] and "activated: preflight passed" in lines[1]
    assert "…" in lines[2] and len(lines[2]) < 200  # a long reason is clipped
    assert format_list([]) == "no enhancements"


def test_transition_lines():
    assert transition_line(LIFE[0]) == "— → pending  submitted: shorter prompt"
    assert transition_line(LIFE[2]) == "validated → active (canary 10%)  activated: preflight passed  [by ops-7]"
    cooling = _event(5, "e1", "deactivated", "cooldown", "critical_regression", "cooling down for 3 s",
                     cooldown_until="2026-01-01T00:00:08.000Z")
    assert transition_line(cooling) == ("deactivated → cooldown (until 2026-01-01T00:00:08.000Z)  "
                                        "critical_regression: cooling down for 3 s")


def test_show_lists_every_transition_with_its_figures():
    text = format_show(LIFE)
    lines = text.splitlines()
    assert lines[0] == "enhancement e1  tenant acme  kind prompt  state active (canary 10%)  (3 transitions)"
    assert [line for line in lines if not line.startswith("    ")][1:] == [
        "2026-01-01T00:00:01.000Z  — → pending  submitted: shorter prompt",
        "2026-01-01T00:00:02.000Z  pending → validated  preflight_passed: preflight passed: schema 1",
        "2026-01-01T00:00:03.000Z  validated → active (canary 10%)  activated: preflight passed  [by ops-7]"]
    assert "    thresholds: passed (score 0.797)" in lines
    assert "    approved by ops-7: reviewed (command ctl-1)" in lines
    assert "    submission_event_id: s-1" in lines


def test_evidence_figures_of_the_monitor_and_the_judge():
    deactivation = {"severity": "critical", "consecutive": 0, "means": {"quality_score": [0.6, 0.6]},
                    "triggers": [{"check": "quality", "severity": "critical", "message": "quality 0.6 < 0.75"}]}
    assert evidence_figures(deactivation) == ["severity: critical", "consecutive: 0",
                                              "trigger quality (critical): quality 0.6 < 0.75"]
    judged = {"judgement": {"verdict": "fail", "score": 40.0, "reason": "critical quality_score failed"},
              "samples": {"enhancement": {"quality_score": 60}, "baseline": {"quality_score": 55}}}
    assert evidence_figures(judged) == ["canary judgement: fail (score 40): critical quality_score failed",
                                        "samples: enhancement 60, baseline 55"]
    failed = {"requirements": {"passed": False, "score": 0.5, "failed": ["nope>=1"]},
              "schema": {"passed": False, "score": 0.0, "errors": [{"path": "name", "message": "is required"}]}}
    assert evidence_figures(failed) == ["requirements: failed (score 0.5); not met: nope>=1",
                                        "schema: failed (score 0); 1 error(s), first: name: is required"]


# --- export


def _audit_entries() -> dict[int, list[AuditEntry]]:
    def entry(i: int, kind: str, record: dict[str, Any], tenant: str = "acme") -> AuditEntry:
        return AuditEntry(event_id=f"au-{i}", kind=kind, tenant=tenant, ts=f"2026-01-01T00:00:0{i % 10}.000Z",
                          policy_version="3f2a9c0d1e4b", record=record)

    alert = {"event_id": "al-1", "tenant": "acme", "kind": "enhancement_approval_needed", "severity": "info",
             "message": "enhancement e1: validated → active waits for approval",
             "details": {"enhancement_id": "e1", "from_state": "validated", "to_state": "active"}}
    other = {**alert, "event_id": "al-2", "details": {"enhancement_id": "e9"}}
    return {
        0: [entry(0, "decision", {"request": {"event_id": "r-1"}, "decision": {"verb": "execute"}}),
            entry(1, "state_change", {"enhancement_event": LIFE[0]}),
            entry(2, "state_change", {"enhancement_event": LIFE[1]}),
            entry(3, "alert", {"alert": alert}),
            entry(4, "alert", {"alert": other}),
            entry(5, "state_change", {"tripwire": "reset"}),
            entry(6, "state_change", {"enhancement_event": LIFE[2]}),
            entry(7, "state_change", {"enhancement_event": LIFE[2]})],  # a redelivered transition, audited again
        1: [entry(8, "state_change", {"enhancement_event": _event(1, "e9", None, "pending", "submitted",
                                                                   tenant="globex")}, tenant="globex")],
    }


def _audit() -> list[tuple[int, int, dict[str, Any]]]:
    out = []
    for partition, entries in _audit_entries().items():
        records, _ = seal_many(ChainHead.genesis(), entries)
        out += [(partition, offset, r) for offset, r in enumerate(records)]
    return out


def test_the_export_holds_the_transitions_alerts_and_a_verified_chain():
    doc = build_export("e1", _audit(), exported_at="2026-01-02T00:00:00.000Z")
    assert doc is not None
    assert (doc["enhancement_id"], doc["tenant"], doc["kind"], doc["state"], doc["exported_at"]) == \
        ("e1", "acme", "prompt", "active", "2026-01-02T00:00:00.000Z")
    assert doc["events"] == LIFE
    assert [(t["seq"], t["partition"], t["event"]["to_state"]) for t in doc["transitions"]] == \
        [(1, 0, "pending"), (2, 0, "validated"), (6, 0, "active")]
    first = doc["transitions"][0]
    assert set(first) >= {"seq", "partition", "offset", "hash", "prev_hash", "ts", "event"}
    assert [a["alert"]["event_id"] for a in doc["alerts"]] == ["al-1"]
    assert doc["submission"] == {"event_id": "s-1", "found": False}
    assert doc["chain"] == {"partitions": [0], "records": 4, "duplicates_skipped": 1, "records_verified": True,
                            "partitions_verified": {"0": True}, "verified": True, "problems": []}
    json.dumps(doc)  # one JSON document
    assert build_export("nothing-here", _audit(), exported_at="t") is None


def test_the_export_takes_the_submission_when_given():
    doc = build_export("e1", _audit(), exported_at="t", submission={**SUBMISSION, "event_id": "s-1"})
    assert doc is not None and doc["submission"]["found"]
    assert doc["submission"]["value"]["payload"] == {"name": "concise"}


def test_a_tampered_record_is_not_verified():
    audit = _audit()
    partition, offset, record = audit[2]
    forged_event = {**record["record"]["enhancement_event"], "reason": {"code": "preflight_passed", "message": "x"}}
    audit[2] = (partition, offset, {**record, "record": {"enhancement_event": forged_event}})
    doc = build_export("e1", audit, exported_at="t")
    assert doc is not None and doc["chain"]["verified"] is False and doc["chain"]["records_verified"] is False
    assert any("seq 2 (au-2): hash does not match content" in p for p in doc["chain"]["problems"])


def test_a_re_hashed_forgery_breaks_the_chain():
    audit = _audit()
    partition, offset, record = audit[2]
    forged = {**record, "record": {"enhancement_event": {**LIFE[1], "evidence": {}}}}
    forged["hash"] = record_hash({k: v for k, v in forged.items() if k != "hash"})
    audit[2] = (partition, offset, forged)
    doc = build_export("e1", audit, exported_at="t")
    assert doc is not None and doc["chain"]["records_verified"] is True  # each record matches itself…
    assert doc["chain"]["partitions_verified"] == {"0": False} and doc["chain"]["verified"] is False  # …not the chain


def test_verify_records_on_a_sealed_chain():
    records, _ = seal_many(ChainHead.genesis(), _audit_entries()[0])
    assert verify_records(records) == []
    tampered = [*records[:3], {**records[3], "ts": "2027-01-01T00:00:00.000Z"}, *records[4:]]
    assert verify_records(tampered) == ["seq 3 (au-3): hash does not match content"]
    assert verify_records([{**records[0], "prev_hash": "nope"}]) == \
        ["seq 0 (au-0): 'prev_hash' must be 64 lowercase hex characters"]


def test_export_of_an_unreadable_record_does_not_crash(tmp_path: Path):
    audit = _audit()
    audit.insert(1, (0, 99, "not json at all"))
    doc = build_export("e1", audit, exported_at="t")
    assert doc is not None and doc["chain"]["partitions_verified"] == {"0": False}


@pytest.mark.parametrize("argv", [
    ["list"], ["show", "e1"], ["export", "e1"], ["retire", "e1", "--tenant", "a", "--operator", "o", "--reason", "r"],
])
def test_an_unreachable_broker_is_a_clear_failure(capsys, argv):
    assert main(["enhancement", *argv, *UNREACHABLE]) == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in capsys.readouterr().err
