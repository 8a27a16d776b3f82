"""`resontinex audit replay` over an audit log built the way the gate writes one: filters,
request-id linking and the four output formats."""

from __future__ import annotations

import csv
import importlib.util
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resontinex.agents.audit import ChainHead, checkpoint_body, seal, seal_many
from resontinex.agents.gate import alert_event, alert_id, break_glass, decision_event, decision_id, floor_alert
from resontinex.agents.trust import default_config, evaluate_values
from resontinex.app.commands.audit_replay import COLUMNS, request_ids, run
from resontinex.app.commands.audit_source import AuditLog, archive_header, read_archive
from resontinex.app.engine.audit_writer import audit_item
from resontinex.app.cli import parser
from resontinex.app.exceptions import UsageError

PV = "3f2a9c0d1e4b"
SYSTEM = "_system"
NOT_JSON = '{"event_id": "au-torn'


def _config_item(ts: str) -> dict[str, Any]:
    return audit_item(f"cfg-{PV}-0-0", "config", SYSTEM, ts, PV, {"policy_version": PV, "configuration": {}})


def _decided(tenant: str, request_id: str, ts: str, signals: tuple[float, float, float], *,
             override: bool = False, budget: bool = False) -> list[dict[str, Any]]:
    """The audit items of one request, in the order `agents/gate/_plan.py::_audit` writes them."""
    cfg = default_config()
    a, r, c = signals
    result = evaluate_values(a, r, c, cfg)
    raw = {"event_id": request_id, "schema_version": 1, "tenant": tenant, "workflow": "default", "ts": ts,
           "signals": {"alignment_score": a, "epistemic_risk": r, "confidence_band": c}}
    verb, body = result.decision, None
    if override:
        raw["override"] = {"operator_id": "ops-1", "reason": "incident 42"}
        applied, _, body = break_glass(result, "ops-1", "incident 42", request_id, datetime(2026, 11, 20, 8, 15,
                                                                                            tzinfo=timezone.utc))
        verb = "execute" if applied else verb
    decision = decision_event(tenant=tenant, request_id=request_id, workflow="default", ts=ts, verb=verb, reasons=[],
                              policy_version=PV, trust=result.as_dict())
    alerts = [floor_alert(decision, cfg.trust_floor)] if result.floor_violation else []
    change = None
    if budget:
        details = {"scope": "tenant", "period": "daily", "from": "ok", "to": "review", "utilization": 0.83,
                   "limit_usd": 100.0, "request_id": request_id}
        alerts.append(alert_event(id_source=f"{tenant}|daily", kind="budget_warning", tenant=tenant,
                                  severity="warning", message="tenant daily budget reached review", details=details,
                                  source_event_id=request_id, ts=ts))
        change = {"budget": details}
    items = [audit_item("au-" + decision["event_id"][2:], "decision", tenant, ts, PV,
                        {"request": raw, "decision": decision,
                         "source": {"topic": "decision_requests", "partition": 0, "offset": 3}})]
    if change is not None:
        items.append(audit_item("sc-" + alerts[-1]["event_id"][2:], "state_change", tenant, ts, PV, change))
    items += [audit_item("au-" + x["event_id"][2:], "alert", tenant, x["ts"], PV, {"alert": x}) for x in alerts]
    if body is not None:
        items.append(audit_item("ov-" + decision["event_id"][2:], "override", tenant, ts, PV,
                                {**body, "decision_id": decision["event_id"]}))
    return items


def _tripwire(tenant: str, ts: str) -> list[dict[str, Any]]:
    details = {"period": "daily", "consecutive": 3, "breach_threshold": 50.0, "mode": "economy"}
    alert = alert_event(id_source=f"{tenant}|daily|w", kind="tripwire_downgrade", tenant=tenant, severity="warning",
                        message="downgraded", details=details, source_event_id=None, ts=ts)
    return [audit_item("sc-" + alert["event_id"][2:], "state_change", tenant, ts, PV,
                       {"tripwire": {"tenant": tenant, "change": "downgraded", **details}}),
            audit_item("au-" + alert["event_id"][2:], "alert", tenant, ts, PV, {"alert": alert})]


@pytest.fixture(scope="module")
def log() -> AuditLog:
    """Partition 0: tenant acme over two days, a checkpoint, then a value that is not JSON;
    partition 1 (offsets from 40): tenant globex, with a request id acme used too."""
    log = AuditLog("audit")
    records, head = seal_many(ChainHead.genesis(), [
        _config_item("2026-11-20T00:00:00.000Z"),
        *_decided("acme", "r-1", "2026-11-20T08:15:00.000Z", (0.1, 0.9, 0.5), override=True),
        *_decided("acme", "r-2", "2026-11-21T09:00:00.000Z", (0.9, 0.1, 0.1), budget=True),
    ])
    body = checkpoint_body(Ed25519PrivateKey.generate(), partition=0, seq=head.seq_next - 1, head_hash=head.hash)
    checkpoint, _ = seal(head, event_id=f"cp-0-{head.seq_next - 1}", kind="checkpoint", tenant=SYSTEM,
                         ts="2026-11-21T09:00:01.000Z", policy_version=PV, record=body)
    for offset, value in enumerate([*records, checkpoint, NOT_JSON]):
        log.add(0, offset, value)
    records, _ = seal_many(ChainHead.genesis(), [
        _config_item("2026-11-20T00:00:00.500Z"),
        *_decided("globex", "r-1", "2026-11-22T05:32:42.778Z", (0.6, 0.4, 0.3)),
        *_tripwire("globex", "2026-11-22T06:00:00.000Z"),
    ])
    for offset, value in enumerate(records, start=40):
        log.add(1, offset, value)
    return log


def _replay(log: AuditLog, tmp_path: Path, *flags: str, fmt: str = "jsonl") -> str:
    out = tmp_path / f"replay.{fmt}"
    args = parser().parse_args(["audit", "replay", "--quiet", "--format", fmt, "--out", str(out), *flags])
    assert run(args, log) == 0
    return out.read_text(encoding="utf-8")


def _lines(log: AuditLog, tmp_path: Path, *flags: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _replay(log, tmp_path, *flags).splitlines()]


def _ids(log: AuditLog, tmp_path: Path, *flags: str) -> list[str]:
    return [line["record"]["event_id"] for line in _lines(log, tmp_path, *flags)]


def _audit_id(prefix: str, source_id: str) -> str:
    return prefix + source_id[2:]


def test_with_no_filter_every_record_comes_as_an_archive_line_in_partition_and_offset_order(log, tmp_path):
    lines = _lines(log, tmp_path)
    expected = [(p, o, r) for p, o, r in log.records() if isinstance(r, dict)]
    assert [(line["partition"], line["offset"], line["record"]) for line in lines] == expected
    assert [line["offset"] for line in lines] == [*range(8), *range(40, 44)]


def test_jsonl_under_an_archive_header_reads_back_as_an_archive(log, tmp_path):
    archive = tmp_path / "subset.jsonl"
    header = archive_header("audit", {0: (1, 3)}, "2026-11-23T00:00:00Z")
    archive.write_text(json.dumps(header) + "\n" + _replay(log, tmp_path, "--request-id", "r-1", "--tenant", "acme"))
    assert [(p, o) for p, o, _ in read_archive(archive, quiet=True).records()] == [(0, 1), (0, 2), (0, 3)]


def test_records_that_are_not_json_objects_are_skipped_and_counted_even_when_quiet(log, tmp_path, capsys):
    _replay(log, tmp_path)
    err = capsys.readouterr().err
    assert "1 of the records are not JSON objects" in err and "audit verify" in err
    assert "replayed" not in err


def test_the_summary_says_how_many_records_matched(log, capsys):
    run(parser().parse_args(["audit", "replay", "--kind", "decision"]), log)
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3  # stdout by default
    assert "replayed 3 of 13 records" in err


def test_tenant_filter(log, tmp_path):
    lines = _lines(log, tmp_path, "--tenant", "globex")
    assert {line["record"]["tenant"] for line in lines} == {"globex"}
    assert [line["record"]["kind"] for line in lines] == ["decision", "state_change", "alert"]
    assert {line["record"]["tenant"] for line in _lines(log, tmp_path, "--tenant", SYSTEM)} == {SYSTEM}


def test_kind_filter_takes_any_of_the_kinds(log, tmp_path):
    lines = _lines(log, tmp_path, "--kind", "override", "--kind", "checkpoint")
    assert [(line["record"]["kind"], line["record"]["tenant"]) for line in lines] == [("override", "acme"),
                                                                                      ("checkpoint", SYSTEM)]


@pytest.mark.parametrize(("flags", "expected"), [
    (("--since", "2026-11-21"), [*["2026-11-21T09:00:00.000Z"] * 3, "2026-11-21T09:00:01.000Z",
                                 "2026-11-22T05:32:42.778Z", *["2026-11-22T06:00:00.000Z"] * 2]),
    (("--since", "2026-11-21T09:00:00.500Z", "--until", "2026-11-22T06:00:00Z"),
     ["2026-11-21T09:00:01.000Z", "2026-11-22T05:32:42.778Z"]),
    (("--until", "2026-11-20T01:00:00.100+01:00"), ["2026-11-20T00:00:00.000Z"]),
    (("--until", "2026-11-20T00:00:00Z"), []),
])
def test_since_is_inclusive_until_exclusive_and_both_compare_instants(log, tmp_path, flags, expected):
    assert [line["record"]["ts"] for line in _lines(log, tmp_path, *flags)] == expected


def test_filters_combine(log, tmp_path):
    ids = _ids(log, tmp_path, "--tenant", "acme", "--kind", "decision", "--since", "2026-11-21")
    assert ids == [_audit_id("au-", decision_id("acme", "r-2"))]
    assert _ids(log, tmp_path, "--tenant", "acme", "--since", "2026-11-22") == []


def test_request_id_collects_the_decision_its_alerts_and_its_override(log, tmp_path):
    decision = decision_id("acme", "r-1")
    assert _ids(log, tmp_path, "--request-id", "r-1", "--tenant", "acme") == [
        _audit_id("au-", decision),
        _audit_id("au-", alert_id(decision, "trust_floor_violation")),
        _audit_id("ov-", decision),
    ]
    both = _lines(log, tmp_path, "--request-id", "r-1")
    assert [(line["partition"], line["record"]["kind"]) for line in both] == [
        (0, "decision"), (0, "alert"), (0, "override"), (1, "decision")]
    assert _ids(log, tmp_path, "--request-id", "r-1", "--kind", "override") == [_audit_id("ov-", decision)]


def test_request_id_collects_a_budget_state_change_and_its_alert(log, tmp_path):
    kinds = [line["record"]["kind"] for line in _lines(log, tmp_path, "--request-id", "r-2")]
    assert kinds == ["decision", "state_change", "alert"]
    assert _lines(log, tmp_path, "--request-id", "r-404") == []


def test_the_ids_of_a_request_are_it_and_its_decisions_ids(log):
    assert request_ids(log, "r-1") == {"r-1", decision_id("acme", "r-1"), decision_id("globex", "r-1")}


def test_csv_has_the_compliance_columns(log, tmp_path):
    rows = list(csv.DictReader(_replay(log, tmp_path, "--tenant", "acme", fmt="csv").splitlines()))
    assert tuple(rows[0]) == COLUMNS
    by_kind = {row["kind"]: row for row in rows}
    assert [row["offset"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    decision, override = by_kind["decision"], by_kind["override"]  # the last of each kind: r-2's decision
    assert (decision["request_id"], decision["decision_id"], decision["verb"], decision["tier"]) == (
        "r-2", decision_id("acme", "r-2"), "execute", "pass")
    assert float(decision["score"]) == pytest.approx(0.9)
    assert (override["request_id"], override["decision_id"], override["verb"], override["tier"]) == (
        "r-1", decision_id("acme", "r-1"), "execute", "block")
    first_alert = rows[1]
    assert (first_alert["alert_kind"], first_alert["severity"], first_alert["source_event_id"],
            first_alert["decision_id"]) == ("trust_floor_violation", "warning", "r-1", decision_id("acme", "r-1"))
    assert (by_kind["state_change"]["request_id"], by_kind["alert"]["alert_kind"]) == ("r-2", "budget_warning")
    assert all(len(row["hash"]) == 64 and row["partition"] == "0" and row["tenant"] == "acme" for row in rows)


def test_csv_leaves_columns_that_do_not_apply_empty(log, tmp_path):
    (checkpoint,) = csv.DictReader(_replay(log, tmp_path, "--kind", "checkpoint", fmt="csv").splitlines())
    assert checkpoint["seq"] == "7" and checkpoint["tenant"] == SYSTEM
    assert all(checkpoint[c] == "" for c in ("request_id", "decision_id", "verb", "score", "tier", "alert_kind"))


def test_table_shows_one_line_per_record_with_its_ids(log, tmp_path):
    text = _replay(log, tmp_path, "--request-id", "r-1", fmt="table")
    header, *lines = text.splitlines()
    assert header.split() == ["PART", "OFFSET", "SEQ", "TS", "TENANT", "KIND", "EVENT_ID", "SUMMARY"]
    assert len(lines) == 4
    decision = decision_id("acme", "r-1")
    for audit_id in (_audit_id("au-", decision), _audit_id("ov-", decision),
                     _audit_id("au-", alert_id(decision, "trust_floor_violation"))):
        assert audit_id in text
    assert "request_id=r-1 verb=execute score=0.1471 tier=block" in lines[0]
    assert "alert_kind=trust_floor_violation severity=warning" in lines[1]


def test_parquet_needs_a_file(log):
    with pytest.raises(UsageError, match="--out"):
        run(parser().parse_args(["audit", "replay", "--format", "parquet"]), log)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed")
def test_parquet_without_pyarrow_says_how_to_get_it(log, tmp_path):
    args = parser().parse_args(["audit", "replay", "--format", "parquet", "--out", str(tmp_path / "r.parquet")])
    with pytest.raises(UsageError, match="pip install pyarrow"):
        run(args, log)
    assert not (tmp_path / "r.parquet").exists()


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed")
def test_parquet_has_the_csv_columns_and_the_record(log, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "r.parquet"
    assert run(parser().parse_args(["audit", "replay", "--quiet", "--format", "parquet", "--out", str(out),
                                    "--tenant", "acme"]), log) == 0
    table = pq.read_table(out)
    assert table.column_names == [*COLUMNS, "record"]
    assert table.num_rows == 6
    assert json.loads(table.column("record")[0].as_py())["kind"] == "decision"


def test_an_unwritable_out_file_is_a_usage_error(log, tmp_path):
    args = parser().parse_args(["audit", "replay", "--out", str(tmp_path / "missing" / "r.jsonl")])
    with pytest.raises(UsageError, match="cannot write"):
        run(args, log)


@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_a_bad_timestamp_is_a_usage_error_naming_its_flag(log, tmp_path, flag):
    args = parser().parse_args(["audit", "replay", flag, "last tuesday", "--out", str(tmp_path / "r.jsonl")])
    with pytest.raises(UsageError, match=flag):
        run(args, log)
