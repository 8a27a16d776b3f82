import pytest

from app.exceptions import UsageError
from app.settings import Settings
from config import PACKAGED_DIR


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
