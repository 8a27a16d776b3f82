from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trust import (
    ConfigError,
    TrustConfig,
    config_from_mapping,
    default_config,
    load_config,
    policy_version,
    policy_version_of,
)
from resontinex.config import PACKAGED_DIR


def base() -> dict[str, Any]:
    return {
        "weights": {"alignment_score": 0.45, "epistemic_risk": 0.35, "confidence_band": 0.20},
        "risk_tiers": {"block": 0.25, "review": 0.50, "monitor": 0.75, "pass": 1.01},
        "trust_floor": 0.60,
        "entropy_threshold": 0.72,
    }


def test_packaged_file_holds_the_contract_defaults() -> None:
    config = load_config(PACKAGED_DIR / "trust_gate.yaml")
    assert config == default_config()
    assert config.weights == (0.45, 0.35, 0.2)
    assert config.risk_tiers == (("block", 0.25), ("review", 0.5), ("monitor", 0.75), ("pass", 1.01))
    assert (config.trust_floor, config.entropy_threshold) == (0.6, 0.72)
    assert (config.calibration_method, config.calibration_min_samples) == ("isotonic", 50)


def test_as_dict_round_trips_and_is_json() -> None:
    config = default_config()
    data = config.as_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    again = config_from_mapping(data)
    assert again == config and policy_version(again) == policy_version(config)


def test_policy_version_is_the_documented_hash() -> None:
    config = default_config()
    text = json.dumps(config.as_dict(), sort_keys=True, separators=(",", ":"))
    assert policy_version(config) == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert policy_version(config) == policy_version_of(config.as_dict())
    # Pinned: a change here changes every decision's policy_version (audit replays).
    assert policy_version(config) == "13d37dee9c47"


def test_policy_version_of_ignores_key_order() -> None:
    assert policy_version_of({"a": 1, "b": {"y": 2, "x": 3}}) == policy_version_of({"b": {"x": 3, "y": 2}, "a": 1})
    assert policy_version_of({"a": 1}) != policy_version_of({"a": 2})


def test_equal_configs_written_differently_hash_the_same(tmp_path: Path) -> None:
    text = """
entropy_threshold: 0.720
risk_tiers: {pass: 1.01, monitor: 0.75, block: 0.25, review: .5}
trust_floor: 0.6
weights: {confidence_band: 20, epistemic_risk: 35, alignment_score: 45}
calibration: {min_samples: 50}
"""
    path = tmp_path / "trust_gate.yaml"
    path.write_text(text)
    assert policy_version(load_config(path)) == policy_version(default_config())
    for weights in ((9, 7, 4), (0.9, 0.7, 0.4), (4.5, 3.5, 2.0), (450, 350, 200)):
        mapping = base()
        mapping["weights"] = dict(zip(mapping["weights"], weights))
        assert config_from_mapping(mapping) == default_config()


def test_other_values_hash_differently() -> None:
    mapping = base()
    mapping["trust_floor"] = 0.61
    assert policy_version(config_from_mapping(mapping)) != policy_version(default_config())
    mapping = base()
    mapping["calibration"] = {"method": "platt"}
    assert policy_version(config_from_mapping(mapping)) != policy_version(default_config())


@given(
    st.lists(st.integers(0, 10**6), min_size=3, max_size=3).filter(any),
    st.one_of(st.integers(1, 10**6), st.sampled_from([0.5, 0.25, 2.0**-20, 2.0**30])),
)
def test_scaling_weights_changes_nothing(weights: list[int], k: float) -> None:
    one, scaled = base(), base()
    one["weights"] = dict(zip(one["weights"], weights))
    scaled["weights"] = dict(zip(scaled["weights"], (w * k for w in weights)))
    a, b = config_from_mapping(one), config_from_mapping(scaled)
    assert a == b
    assert policy_version(a) == policy_version(b)
    assert math.isclose(math.fsum(a.weights), 1.0, abs_tol=1e-11)


@given(st.lists(st.floats(0.0, 1e6), min_size=3, max_size=3).filter(lambda w: sum(w) > 1e-3))
def test_normalising_twice_changes_nothing(weights: list[float]) -> None:
    mapping = base()
    mapping["weights"] = dict(zip(mapping["weights"], weights))
    config = config_from_mapping(mapping)
    assert abs(math.fsum(config.weights) - 1.0) <= 1e-9
    assert config_from_mapping(config.as_dict()) == config


def test_tiers_are_sorted_ascending() -> None:
    mapping = base()
    mapping["risk_tiers"] = {"pass": 1.5, "monitor": 0.3, "review": 0.6, "block": 0.1}
    config = config_from_mapping(mapping)
    assert config.risk_tiers == (("block", 0.1), ("monitor", 0.3), ("review", 0.6), ("pass", 1.5))


def test_direct_construction_is_validated_and_replace_works() -> None:
    config = dataclasses.replace(default_config(), trust_floor=0.5)
    assert config.trust_floor == 0.5 and config.weights == default_config().weights
    with pytest.raises(ConfigError, match="^weights: must sum to 1"):
        dataclasses.replace(default_config(), weights=(45.0, 35.0, 20.0))
    with pytest.raises(ConfigError, match="^trust_floor: "):
        dataclasses.replace(default_config(), trust_floor=2.0)


def test_input_mapping_is_not_modified() -> None:
    mapping = base()
    mapping["weights"] = {"alignment_score": 9, "epistemic_risk": 7, "confidence_band": 4}
    before = copy.deepcopy(mapping)
    config_from_mapping(mapping)
    assert mapping == before


def _without(path: str) -> dict[str, Any]:
    mapping = base()
    *parents, leaf = path.split(".")
    target = mapping
    for part in parents:
        target = target[part]
    del target[leaf]
    return mapping


def _with(path: str, value: Any) -> dict[str, Any]:
    mapping = base()
    *parents, leaf = path.split(".")
    target = mapping
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value
    return mapping


@pytest.mark.parametrize(
    ("mapping", "key", "fragment"),
    [
        (_without("weights"), "weights", "required key is missing"),
        (_without("risk_tiers"), "risk_tiers", "required key is missing"),
        (_without("trust_floor"), "trust_floor", "required key is missing"),
        (_without("entropy_threshold"), "entropy_threshold", "required key is missing"),
        (_without("weights.epistemic_risk"), "weights.epistemic_risk", "required weight is missing"),
        (_without("risk_tiers.monitor"), "risk_tiers.monitor", "exactly once"),
        (_with("weights.epistemic_risk", -0.1), "weights.epistemic_risk", "must be >= 0.0"),
        (_with("weights.alignment_score", float("nan")), "weights.alignment_score", "must be finite"),
        (_with("weights.alignment_score", float("inf")), "weights.alignment_score", "must be finite"),
        (_with("weights.alignment_score", "high"), "weights.alignment_score", "must be a number"),
        (_with("weights.alignment_score", True), "weights.alignment_score", "must be a number"),
        (_with("weights", {"alignment_score": 0, "epistemic_risk": 0, "confidence_band": 0}), "weights", "positive sum"),
        (_with("weights", {"alignment_score": 1e308, "epistemic_risk": 1e308, "confidence_band": 1e308}), "weights", "overflows"),
        (_with("weights", [0.45, 0.35, 0.2]), "weights", "must be a mapping"),
        (_with("weights.novelty", 0.1), "weights.novelty", "unknown key"),
        (_with("risk_tiers.extreme", 0.9), "risk_tiers.extreme", "unknown key"),
        (_with("risk_tiers.review", 0.25), "risk_tiers.review", "not distinct"),
        (_with("risk_tiers.pass", 0.99), "risk_tiers", "highest threshold must be >= 1"),
        (_with("risk_tiers.block", float("nan")), "risk_tiers.block", "must be finite"),
        (_with("risk_tiers.block", -0.25), "risk_tiers.block", "must be >= 0.0"),
        (_with("trust_floor", 1.5), "trust_floor", "must be <= 1.0"),
        (_with("trust_floor", None), "trust_floor", "must be a number"),
        (_with("entropy_threshold", float("nan")), "entropy_threshold", "must be finite"),
        (_with("entropy_threshold", -0.01), "entropy_threshold", "must be >= 0.0"),
        (_with("trust_flor", 0.6), "trust_flor", "unknown key"),
        (_with("calibration.method", "beta"), "calibration.method", "must be one of isotonic, platt"),
        (_with("calibration.min_samples", 1), "calibration.min_samples", "integer >= 2"),
        (_with("calibration.min_samples", 50.0), "calibration.min_samples", "integer >= 2"),
        (_with("calibration.window", 5), "calibration.window", "unknown key"),
    ],
)
def test_bad_configs_name_the_key(mapping: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(mapping)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert fragment in str(info.value)


def test_root_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="^<config>: must be a mapping"):
        config_from_mapping([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("weights: [", "not valid YAML"), ("", "must be a mapping"), ("- 1\n- 2\n", "must be a mapping")],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "trust_gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == str(path)


def test_file_errors_name_the_key(tmp_path: Path) -> None:
    mapping = base()
    mapping["weights"]["confidence_band"] = -1
    path = tmp_path / "trust_gate.yaml"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(ConfigError, match=r"^weights\.confidence_band: must be >= 0.0"):
        load_config(path)


def test_config_is_hashable_and_comparable() -> None:
    assert hash(default_config()) == hash(config_from_mapping(base()))
    assert isinstance(default_config(), TrustConfig)


def test_decide_on_is_validated_and_only_a_departure_from_raw_changes_the_version() -> None:
    base = default_config().as_dict()
    assert "decide_on" not in base  # configurations written before the key keep their version
    assert config_from_mapping({**base, "decide_on": "raw"}) == default_config()
    calibrated = config_from_mapping({**base, "decide_on": "calibrated"})
    assert calibrated.decide_on == "calibrated" and calibrated.as_dict()["decide_on"] == "calibrated"
    assert policy_version(calibrated) != policy_version(default_config())
    assert config_from_mapping(calibrated.as_dict()) == calibrated
    with pytest.raises(ConfigError, match="decide_on"):
        config_from_mapping({**base, "decide_on": "smoothed"})
