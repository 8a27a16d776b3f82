"""The command line's contract: exit codes and messages (no broker needed for these)."""

import argparse
import ast
import json
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import pytest

from resontinex.agents.audit import KINDS as AUDIT_KINDS
from resontinex.app.cli import main, parser

REPO = Path(__file__).resolve().parents[2]


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
    assert "decision-request.schema.json" in files and "dead-letter.schema.json" in files and len(files) == 15
    schema = json.loads((tmp_path / "out" / "decision.schema.json").read_text())
    assert schema["$schema"].endswith("2020-12/schema") and "verb" in schema["properties"]
    assert len(capsys.readouterr().out.splitlines()) == 15


def test_schemas_export_into_a_file_is_bad_usage(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["schemas", "export", str(target)]) == 2
    assert "schemas export" in capsys.readouterr().err


def _leaves(p: argparse.ArgumentParser = parser()) -> Iterator[argparse.ArgumentParser]:
    """Every command's parser (`resontinex audit verify`, …)."""
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield p
    for sub in subs:
        for child in dict.fromkeys(sub.choices.values()):
            yield from _leaves(child)


LEAVES = {leaf.prog.removeprefix("resontinex "): leaf for leaf in _leaves()}


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.split() == ["resontinex", version("resontinex")]


def _required(leaf: argparse.ArgumentParser) -> list[str]:
    """Values for the arguments a command cannot go without."""
    argv: list[str] = []
    for action in leaf._actions:
        if not action.option_strings and action.nargs is None:
            argv.append("x")
        elif action.required and action.option_strings:  # (a positional `*` is "required" and may be empty)
            argv += [action.option_strings[0], "x"]
    return argv


@pytest.mark.parametrize("command", sorted(LEAVES))
def test_a_mistyped_flag_shows_that_commands_usage(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), *_required(LEAVES[command]), "--bogus"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--bogus" in err
    assert err.startswith(f"usage: resontinex {command} ")


@pytest.mark.parametrize("command", sorted(LEAVES))
def test_help_renders_and_shows_every_default(command):
    leaf = LEAVES[command]
    text = " ".join(leaf.format_help().split())
    for action in leaf._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in text, action.option_strings


def test_every_output_format_flag_is_named_output_format():
    formats = {command: action.option_strings for command, leaf in LEAVES.items() for action in leaf._actions
               if action.dest.endswith("format") and action.dest != "log_format"}
    assert formats and all(flags[0] == "--output-format" for flags in formats.values()), formats


@pytest.mark.parametrize("flag", ["--output-format", "--format"])
def test_audit_replay_takes_the_old_format_flag_too(flag):
    assert parser().parse_args(["audit", "replay", flag, "csv"]).output_format == "csv"


def test_an_unknown_audit_kind_is_refused_listing_the_known(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "replay", "--file", "no-such-archive", "--kind", "decisoin"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "decisoin" in err and all(kind in err for kind in AUDIT_KINDS)


def test_every_audit_kind_written_is_a_known_kind():
    """`--kind` accepts only `agents.audit.KINDS`: a kind written but not listed could never be selected."""
    written = set()
    for path in [*(REPO / "agents").rglob("*.py"), *(REPO / "app").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("audit_item", "seal"):
                kinds = [*node.args[1:2]] if node.func.id == "audit_item" else []
                kinds += [k.value for k in node.keywords if k.arg == "kind"]
                written |= {k.value for k in kinds if isinstance(k, ast.Constant)}
    assert {"decision", "checkpoint", "config"} <= written <= set(AUDIT_KINDS)
