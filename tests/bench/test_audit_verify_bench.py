"""The audit verification bench (issue 6): its synthetic chain, its helpers, and the report
of a real `--quick` run. No timing assertions (performance is measured by
`python -m bench.audit_verify`, never asserted in unit tests)."""

from __future__ import annotations

import doctest
import gc
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import bench.audit_verify as av
from resontinex.agents.audit import verify
from bench.audit_verify import REPORT_KEYS, ROWS, build_partition, hash_all, main, parse_args, reseal_from, tamper_index
from bench.run import ratio


def test_module_doctests():
    assert doctest.testmod(av).failed == 0


def test_the_synthetic_chain_is_deterministic_sound_and_gate_shaped():
    key = Ed25519PrivateKey.generate()
    recs = build_partition(3, 250, key, every=100)
    again = build_partition(3, 250, Ed25519PrivateKey.generate(), every=100)
    assert recs[:100] == again[:100]  # the same records up to the first checkpoint (signed with another key)
    assert [r["record"] for r in recs if r["kind"] != "checkpoint"] == \
        [r["record"] for r in again if r["kind"] != "checkpoint"]
    assert len(recs) == 250 and [r["seq"] for r in recs] == list(range(250))
    assert [r["seq"] for r in recs if r["kind"] == "checkpoint"] == [100, 201]
    report = verify(recs, public_key=key.public_key(), partition=3)
    assert report.ok and report.checkpoints_verified == 2 and report.duplicates == 0
    assert hash_all([recs]) == 0
    kinds = {r["kind"] for r in recs}
    assert kinds == {"config", "decision", "alert", "checkpoint"}
    decision = next(r for r in recs if r["kind"] == "decision" and "routing" in r["record"]["request"])
    body = decision["record"]
    assert set(body) == {"request", "decision", "source"}
    assert set(body["request"]["signals"]) == {"alignment_score", "epistemic_risk", "confidence_band"}
    assert {"trust", "budget", "route", "verb", "reasons"} <= set(body["decision"])
    assert body["decision"]["route"]["provider_id"] and body["decision"]["budget"]["status"] == "ok"
    alert = next(r for r in recs if r["kind"] == "alert")
    assert alert["record"]["alert"]["kind"] == "trust_floor_violation"


def test_a_resealed_forgery_passes_the_hashes_but_not_the_signatures():
    key = Ed25519PrivateKey.generate()
    recs = build_partition(0, 60, key, every=20)
    i = tamper_index(recs)
    assert recs[i]["kind"] == "decision" and i < 41
    changed = {**recs[i], "ts": "2027-01-01T00:00:00.000Z"}
    forged = reseal_from([*recs[:i], changed, *recs[i + 1:]], i)
    assert verify(forged).ok
    err = verify(forged, public_key=key.public_key(), partition=0).first_error
    assert err.kind == "bad_signature"


def test_parse_args_rejects_nonsense():
    for bad in (["--records", "3"], ["--partitions", "0"], ["--repeats", "0"], ["--checkpoint-every", "1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_quick_run_writes_the_report(tmp_path, capsys):
    out = tmp_path / "audit.json"
    assert main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert tuple(report) == REPORT_KEYS
    meta, setup, rows, ratios, parts, sanity = (report[k] for k in
                                                ("meta", "setup", "rows", "ratios", "breakdown", "sanity"))
    assert meta["quick"] and meta["rfc8785"] and meta["cryptography"] and meta["cpus"] >= 1
    assert len(meta["loadavg_before"]) == 3 and meta["python"].startswith("3.")
    assert setup["records_per_partition"] == 2_000 and setup["partitions"] == 2 and setup["records"] == 4_000
    assert setup["kinds"]["checkpoint"] == 2 and setup["kinds"]["alert"] > 0 and setup["archive_bytes"] > 0
    assert tuple(rows) == ROWS
    for name, row in rows.items():
        assert row["records"] == 4_000 and row["repeats"] == 3
        assert row["per_s"] > 0 and row["per_s_median"] > 0 and row["us_per_record"] > 0
        assert row["per_s"] >= row["per_s_median"]  # best, then median
        assert row["vs_hash_only"] == ratio(row["per_s"], rows["hash_only"]["per_s"])
        if name != "hash_only":
            assert ratios[f"{name}_vs_hash_only"] == ratio(row["per_s"], rows["hash_only"]["per_s"])
            assert ratios[f"{name}_vs_hash_only_median"] == ratio(row["per_s_median"],
                                                                  rows["hash_only"]["per_s_median"])
    assert rows["hash_only"]["vs_hash_only"] == 1.0
    archive = rows["verify_archive"]
    assert archive["read_s"] > 0 and archive["verify_log_s"] > 0
    assert archive["read_s"] + archive["verify_log_s"] <= archive["best_s"] + 1e-5
    for k in ("copy_without_hash", "canonical_json", "orjson_sorted_alone", "sha256", "record_problem",
              "rfc8785_dumps_sample", "checkpoint_check_us_each", "read_archive_gc_off"):
        assert parts[k] > 0, k
    assert parts["rfc8785_sample_records"] == 200 and parts["checkpoints"] == 2
    assert sanity["all_rows_ok"] is True
    assert all(sanity[f"{name}_ok"] is True for name in ROWS)
    assert sanity["tamper_caught"] is True and sanity["tamper"]["found"]["kind"] == "modified"
    assert sanity["tamper"]["found"]["index"] == sanity["tamper"]["index"]
    assert sanity["forgery_caught_by_signature"] is True and sanity["forgery"]["unkeyed_ok"] is True
    assert sanity["forgery"]["found"]["kind"] == "bad_signature"
    assert sanity["archive_tamper_caught"] is True
    signed = sanity["reports"]["verify_signed"]["partitions"]
    assert all(p["checkpoints_verified"] == 1 and p["records_checked"] == 2_000 for p in signed.values())
    unsigned = sanity["reports"]["verify"]["partitions"]
    assert all(p["checkpoints_unverified"] == 1 and p["checkpoints_verified"] == 0 for p in unsigned.values())
    assert gc.get_freeze_count() == 0  # the bench's inputs are handed back to the collector
    printed = capsys.readouterr().out
    assert "hash_only" in printed and "verify_archive" in printed and str(out) in printed
