from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resontinex.agents.router import (
    AnomalyConfig,
    ConfigError,
    FeatureScales,
    RewardScale,
    RoutingConfig,
    ThompsonConfig,
    load_routing_config,
    routing_config_from,
)

PACKAGED = Path(__file__).resolve().parents[3] / "config" / "routing.yaml"


def test_packaged_file_is_the_defaults_with_seed_002s_numbers() -> None:
    cfg = load_routing_config(PACKAGED)
    assert cfg == RoutingConfig()
    assert (cfg.policy, cfg.mode, cfg.seed) == ("epsilon_greedy", "strict", 0)
    assert (cfg.epsilon, cfg.epsilon_decay, cfg.epsilon_min, cfg.alpha, cfg.gamma) == (0.1, 0.995, 0.01, 0.1, 0.95)
    assert cfg.psi_damping == 0.5
    assert cfg.reward_scale == RewardScale(-20.0, 11.0)
    assert cfg.pending_ttl_s == 3600.0


@pytest.mark.parametrize("mapping", [{}, {"thompson": None, "anomaly": None}], ids=["empty", "nulls"])
def test_missing_sections_are_defaults(mapping: dict[str, Any]) -> None:
    cfg = routing_config_from(mapping)
    assert cfg.thompson == ThompsonConfig(1.0, 1.0, 1000)
    assert cfg.anomaly == AnomalyConfig(3.0, 20, 5, 20, 0.5)
    assert cfg.features == FeatureScales(5.0, 500.0, 100.0)


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("")
    assert load_routing_config(path) == RoutingConfig()


def test_every_setting_is_read() -> None:
    cfg = routing_config_from({
        "policy": "linucb", "mode": "lenient", "seed": 7, "epsilon": 0.2, "epsilon_decay": 0.9, "epsilon_min": 0.05,
        "alpha": 0.5, "gamma": 0.0, "psi_damping": 1.0, "ucb_c": 2, "linucb_alpha": 0.25, "linucb_ridge": 2.0,
        "pending_ttl_s": 60, "thompson": {"prior_alpha": 2, "prior_beta": 3, "draws": 50},
        "features": {"price_usd_per_hour": 1, "latency_ms": 2, "capacity": 3},
        "reward_scale": {"min": -1, "max": 1},
        "anomaly": {"q_jump_k": 2.5, "q_jump_window": 10, "q_jump_min_samples": 4, "success_rate_window": 8,
                    "success_rate_min": 0.75},
    })
    assert (cfg.policy, cfg.mode, cfg.seed, cfg.epsilon, cfg.epsilon_decay, cfg.epsilon_min) == \
        ("linucb", "lenient", 7, 0.2, 0.9, 0.05)
    assert (cfg.alpha, cfg.gamma, cfg.psi_damping, cfg.ucb_c, cfg.linucb_alpha, cfg.linucb_ridge, cfg.pending_ttl_s) \
        == (0.5, 0.0, 1.0, 2.0, 0.25, 2.0, 60.0)
    assert cfg.thompson == ThompsonConfig(2.0, 3.0, 50)
    assert cfg.features == FeatureScales(1.0, 2.0, 3.0)
    assert cfg.reward_scale == RewardScale(-1.0, 1.0)
    assert cfg.anomaly == AnomalyConfig(2.5, 10, 4, 8, 0.75)


def test_as_dict_is_json_and_changes_with_any_setting() -> None:
    base = RoutingConfig().as_dict()
    assert json.loads(json.dumps(base)) == base
    assert routing_config_from({"anomaly": {"success_rate_min": 0.6}}).as_dict() != base
    assert routing_config_from({"mode": "lenient"}).as_dict() != base
    assert routing_config_from({}).as_dict() == base


@pytest.mark.parametrize(("mapping", "key"), [
    ({"policy": "softmax"}, "policy"),
    ({"mode": "loose"}, "mode"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": True}, "seed"),
    ({"epsilon": 1.5}, "epsilon"),
    ({"epsilon": "0.1"}, "epsilon"),
    ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon_decay": 0}, "epsilon_decay"),
    ({"epsilon_decay": 1.01}, "epsilon_decay"),
    ({"epsilon_min": -0.1}, "epsilon_min"),
    ({"epsilon": 0.05, "epsilon_min": 0.1}, "epsilon_min"),
    ({"alpha": 0}, "alpha"),
    ({"gamma": 1.5}, "gamma"),
    ({"psi_damping": 2}, "psi_damping"),
    ({"ucb_c": -1}, "ucb_c"),
    ({"linucb_alpha": float("inf")}, "linucb_alpha"),
    ({"linucb_ridge": 0}, "linucb_ridge"),
    ({"pending_ttl_s": 0}, "pending_ttl_s"),
    ({"thompson": {"prior_alpha": 0}}, "thompson.prior_alpha"),
    ({"thompson": {"draws": 0}}, "thompson.draws"),
    ({"thompson": {"prior": 1}}, "thompson.prior"),
    ({"thompson": [1, 2]}, "thompson"),
    ({"features": {"latency_ms": -5}}, "features.latency_ms"),
    ({"reward_scale": {"min": 5, "max": 5}}, "reward_scale.max"),
    ({"anomaly": {"q_jump_k": 0}}, "anomaly.q_jump_k"),
    ({"anomaly": {"q_jump_window": 1}}, "anomaly.q_jump_window"),
    ({"anomaly": {"q_jump_min_samples": 30}}, "anomaly.q_jump_min_samples"),
    ({"anomaly": {"success_rate_window": 0}}, "anomaly.success_rate_window"),
    ({"anomaly": {"success_rate_min": 1.5}}, "anomaly.success_rate_min"),
    ({"anomaly": {"window": 5}}, "anomaly.window"),
    ({"epsilion": 0.1}, "epsilion"),
])
def test_bad_values_are_refused_naming_the_dotted_key(mapping: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        routing_config_from(mapping)
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}: ")


def test_a_non_mapping_document_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        routing_config_from([1, 2])  # type: ignore[arg-type]
    assert err.value.key == "<config>"


def test_bad_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("policy: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_routing_config(path)
    assert err.value.key == "<file>" and str(path) in str(err.value)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_bytes(b"policy: \xff\xfe\n")
    with pytest.raises(ConfigError) as err:
        load_routing_config(path)
    assert err.value.key == "<file>"


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
