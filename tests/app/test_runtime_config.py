"""Loading the configuration: every refusal names its file, and the log says which files
came from --config-dir, which are packaged defaults, and what there is ignored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from resontinex.app.exceptions import UsageError
from resontinex.app.runtime import Runtime
from resontinex.app.settings import Settings
from resontinex.config import PACKAGED_DIR

BAD_WEIGHT = PACKAGED_DIR.joinpath("trust_gate.yaml").read_text().replace("epistemic_risk: 0.35", "epistemic_risk: -1")


def _load(config_dir: Path) -> Runtime:
    return Runtime.load(Settings.from_env({}, config_dir=str(config_dir)), client_id="test")


def test_a_refused_trust_config_names_its_file_and_key(tmp_path):
    assert BAD_WEIGHT != PACKAGED_DIR.joinpath("trust_gate.yaml").read_text()
    (tmp_path / "trust_gate.yaml").write_text(BAD_WEIGHT)
    with pytest.raises(UsageError) as refused:
        _load(tmp_path)
    assert str(refused.value).startswith(f"configuration refused: {tmp_path / 'trust_gate.yaml'}: weights.epistemic_risk")


@pytest.mark.parametrize("name", ["trust_gate.yaml", "energy_governance.yaml", "routing.yaml", "trajectory.yaml",
                                  "coordination.yaml", "enhancements.yaml"])
def test_an_unparsable_file_is_named_once_up_front(tmp_path, name):
    (tmp_path / name).write_text("weights: [\n")
    with pytest.raises(UsageError) as refused:
        _load(tmp_path)
    message = str(refused.value)
    assert message.startswith(f"configuration refused: {tmp_path / name}: not valid YAML"), message
    assert "<file>" not in message


def test_the_log_says_where_each_file_came_from_and_what_is_ignored(tmp_path, caplog):
    (tmp_path / "routing.yaml").write_text(PACKAGED_DIR.joinpath("routing.yaml").read_text())
    (tmp_path / "trust-gate.yml").write_text(BAD_WEIGHT)
    overlays = tmp_path / "overlays"
    overlays.mkdir()
    (overlays / "mine.yaml").write_text("name: mine_first\nprompt: Say what changes first.\n")
    (overlays / "empty.yaml").write_text("")
    with caplog.at_level(logging.INFO, logger="resontinex.app.runtime"):
        _load(tmp_path)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "resontinex.app.runtime"]
    assert lines == [
        ("INFO", f"configuration from {tmp_path}: routing.yaml, overlays/mine.yaml; "
                 "packaged defaults: trust_gate.yaml, energy_governance.yaml, trajectory.yaml, coordination.yaml, enhancements.yaml, gateway.yaml"),
        ("WARNING", f"ignored in --config-dir: {tmp_path / 'trust-gate.yml'}: "
                    "matches no configuration file (did you mean trust_gate.yaml?)"),
        ("WARNING", f"overlay file skipped: {overlays / 'empty.yaml'}: the file is empty"),
    ]


def test_without_a_config_dir_the_log_says_packaged_defaults(caplog):
    with caplog.at_level(logging.INFO, logger="resontinex.app.runtime"):
        Runtime.load(Settings.from_env({}), client_id="test")
    assert [r.getMessage() for r in caplog.records if r.name == "resontinex.app.runtime"] == [
        "configuration: packaged defaults (no --config-dir)"]
