"""The command line's contract: exit codes and messages (no broker needed for these)."""

import json

import pytest

from app.cli import main


def _bad_config(tmp_path, text: str):
    (tmp_path / "trust_gate.yaml").write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize("command", [["up"], ["worker"]])
def test_a_bad_trust_config_is_refused_at_start_naming_the_key(tmp_path, capsys, command):
    cfg = _bad_config(tmp_path, "weights: {alignment_score: 0.5, epistemic_risk: -1, confidence_band: 0.2}\n"
                                "risk_tiers: {block: 0.25, review: 0.5, monitor: 0.75, pass: 1.01}\n"
                                "trust_floor: 0.6\nentropy_threshold: 0.72\n")
    assert main([*command, "--config-dir", cfg, "--bootstrap", "127.0.0.1:1"]) == 2
    assert "weights.epistemic_risk" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["up"], ["worker"]])
def test_a_bad_energy_config_is_refused_at_start_naming_the_file_and_key(tmp_path, capsys, command):
    (tmp_path / "energy_governance.yaml").write_text("budgets:\n  - {tenant: acme, period: week, usd: 10}\n")
    assert main([*command, "--config-dir", str(tmp_path), "--bootstrap", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "energy_governance.yaml" in err and "budgets[0].period" in err


def test_budget_reset_refuses_a_blank_reason_before_any_kafka_io(capsys):
    argv = ["budget", "reset", "--tenant", "acme", "--operator", "ops-1", "--reason", " ", "--bootstrap", "127.0.0.1:1"]
    assert main(argv) == 2
    assert "reason" in capsys.readouterr().err


def test_budget_reset_needs_a_reason(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["budget", "reset", "--tenant", "acme", "--operator", "ops-1"])
    assert exit_.value.code == 2 and "--reason" in capsys.readouterr().err


def test_budget_reset_without_a_broker_is_a_failure_not_a_pass(capsys):
    argv = ["budget", "reset", "--tenant", "acme", "--operator", "ops-1", "--reason", "ok", "--bootstrap", "127.0.0.1:1"]
    assert main(argv) == 1
    assert "could not publish" in capsys.readouterr().err


def test_a_missing_required_key_is_named(tmp_path, capsys):
    cfg = _bad_config(tmp_path, "weights: {alignment_score: 0.45, epistemic_risk: 0.35, confidence_band: 0.2}\n"
                                "risk_tiers: {block: 0.25, review: 0.5, monitor: 0.75, pass: 1.01}\n"
                                "entropy_threshold: 0.72\n")
    assert main(["up", "--config-dir", cfg]) == 2
    assert "trust_floor" in capsys.readouterr().err


def test_a_missing_config_dir_is_bad_usage(tmp_path, capsys):
    assert main(["worker", "--config-dir", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_unknown_roles_are_bad_usage(capsys):
    assert main(["up", "--roles", "core,gpu-of-dreams"]) == 2
    assert "gpu-of-dreams" in capsys.readouterr().err


def test_schemas_export_writes_one_schema_per_event_type(tmp_path, capsys):
    assert main(["schemas", "export", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "decision-request.schema.json" in files and "dead-letter.schema.json" in files and len(files) == 11
    schema = json.loads((tmp_path / "out" / "decision.schema.json").read_text())
    assert schema["$schema"].endswith("2020-12/schema") and "verb" in schema["properties"]
    assert len(capsys.readouterr().out.splitlines()) == 11


def test_schemas_export_into_a_file_is_bad_usage(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["schemas", "export", str(target)]) == 2
    assert "schemas export" in capsys.readouterr().err
