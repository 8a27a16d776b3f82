import pytest

from resontinex.app.exceptions import UsageError
from resontinex.app.settings import Settings
from resontinex.config import PACKAGED_DIR


def test_flag_beats_env_beats_embedded_default():
    assert Settings.from_env({}, port=9999).bootstrap == "127.0.0.1:9999"
    assert Settings.from_env({}).embedded
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}
    assert Settings.from_env(env).bootstrap == "kafka:9092" and not Settings.from_env(env).embedded
    assert Settings.from_env(env, bootstrap="other:1").bootstrap == "other:1"


def test_topic_prefix_applies_to_every_topic():
    s = Settings.from_env({"RESONTINEX_TOPIC_PREFIX": "prod."})
    assert s.topic("decisions") == "prod.decisions"
    assert s.topic("decision_requests") == "prod.decision-requests"


def test_a_file_in_config_dir_replaces_the_packaged_one(tmp_path):
    (tmp_path / "trust_gate.yaml").write_text("weights: {}\n")
    s = Settings.from_env({}, config_dir=str(tmp_path))
    assert s.config_file("trust_gate.yaml") == tmp_path / "trust_gate.yaml"
    assert s.config_file("energy_governance.yaml") == PACKAGED_DIR / "energy_governance.yaml"


def test_bad_values_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="RESONTINEX_PARTITIONS"):
        Settings.from_env({"RESONTINEX_PARTITIONS": "zero"})
    with pytest.raises(UsageError, match="≥ 1"):
        Settings.from_env({"RESONTINEX_PARTITIONS": "0"})
    with pytest.raises(UsageError, match="not a directory"):
        Settings.from_env({}, config_dir=str(tmp_path / "missing"))


def test_files_in_config_dir_that_nothing_reads_are_named_with_the_closest_known_name(tmp_path):
    for name in ("trust-gate.yml", "notes.txt", "routing.yaml", ".hidden", "..data", "__init__.py", "overlays/mine.yaml",
                 "overlays/mine.json", "overlays/.swp"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "trajectory.yaml").mkdir()
    unread = {path.relative_to(tmp_path).as_posix(): why
              for path, why in Settings.from_env({}, config_dir=str(tmp_path)).unread_config_files()}
    assert unread == {
        "trust-gate.yml": "matches no configuration file (did you mean trust_gate.yaml?)",
        "notes.txt": "matches no configuration file (known: trust_gate.yaml, energy_governance.yaml, routing.yaml, "
                     "trajectory.yaml, coordination.yaml, enhancements.yaml, gateway.yaml, overlays)",
        "overlays/mine.json": "not an overlay file (overlays end in .yaml or .yml)",
        "trajectory.yaml": "not a regular file: the packaged default is used",
    }


def test_without_a_config_dir_nothing_is_unread():
    assert Settings.from_env({}).unread_config_files() == []


def test_the_repositorys_config_folder_is_a_config_dir_with_nothing_unread():
    assert Settings.from_env({}, config_dir=str(PACKAGED_DIR)).unread_config_files() == []


def test_the_embedded_broker_is_known_without_kafka_or_when_up_says_so() -> None:
    assert Settings.from_env({}).embedded_broker
    assert not Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}).embedded_broker
    told = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "RESONTINEX_EMBEDDED_BROKER": "1"})
    assert told.embedded_broker and not told.embedded
