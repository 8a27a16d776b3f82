"""`enhancements.yaml`: defaults, ISO 8601 durations, every bad key named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.enhancement._canary import CanarySettings, MetricJudge
from resontinex.agents.enhancement._config import (CanaryConfig, Cooldowns, EnhancementConfig, MonitorSettings,
                                                    PreflightItem, PreflightSettings, TelemetrySettings,
                                                    enhancement_config_from, load_enhancement_config,
                                                    parse_duration)
from resontinex.agents.enhancement.exceptions import ConfigError, EnhancementError


def refused(mapping: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        enhancement_config_from(mapping)
    return info.value


# --- defaults -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mapping", [{}, None, {"monitor": None}, {"monitor": {}, "canary": {"judge": {}}}])
def test_no_settings_give_the_dataclass_defaults(mapping: object) -> None:
    assert enhancement_config_from(mapping) == EnhancementConfig()


def test_the_defaults_are_seed_004s() -> None:
    cfg = EnhancementConfig()
    assert cfg.preflight.items == {"mandatory": PreflightItem(0.30, 1.0), "proxy": PreflightItem(0.25, 0.70),
                                   "alpha": PreflightItem(0.20, 0.95), "sigma": PreflightItem(0.15, 0.05),
                                   "governance": PreflightItem(0.10, 0.85)}
    assert (cfg.preflight.pass_score, cfg.preflight.critical_weight) == (0.70, 0.20)
    m = cfg.monitor
    assert (m.stability.window, m.stability.min_samples, m.stability.max_sd, m.stability.min_coefficient) == \
        (10, 3, 0.15, 0.80)
    assert (m.quality.window, m.quality.critical_below, m.quality.max_relative_drop) == (5, 0.75, 0.10)
    assert (m.performance.response_time_factor, m.performance.accuracy_drop, m.performance.throughput_drop,
            m.performance.error_rate_rise, m.performance.critical_regressions) == (1.5, 0.05, 0.20, 0.02, 2)
    assert (m.consecutive, m.cooldown.critical_s, m.cooldown.consecutive_s) == (3, 86_400.0, 3_600.0)
    assert dict(cfg.canary.judge.group_weights) == {"quality": 50.0, "errors": 30.0, "latency": 20.0}


def test_a_mapping_is_required() -> None:
    assert refused(["monitor"]).key == "<config>"
    assert refused({"monitor": 3}).key == "monitor"


# --- durations ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("PT1H30M", 5_400.0), ("P1DT2H", 93_600.0), ("PT0.5S", 0.5), ("P1W", 604_800.0), ("PT15M", 900.0),
    ("PT24H", 86_400.0), ("P1D", 86_400.0), ("PT90S", 90.0), ("PT1M", 60.0),
])
def test_iso_8601_durations(text: str, seconds: float) -> None:
    assert parse_duration("k", text) == seconds


def test_pt1h30m_is_ninety_minutes() -> None:
    """Seed 004's `_parse_duration_to_minutes` kept only the hours: `"1H30M".split("H")[0]` made
    PT1H30M 60 minutes. Here it is 5400 s, through the file as well."""
    cfg = enhancement_config_from({"monitor": {"cooldown": {"consecutive": "PT1H30M"}}})
    assert cfg.monitor.cooldown.consecutive_s == 5_400.0
    assert cfg.monitor.cooldown.critical_s == 86_400.0


@given(st.integers(0, 48), st.integers(0, 120), st.integers(0, 200))
def test_hours_minutes_and_seconds_all_count(h: int, m: int, s: int) -> None:
    text = f"PT{h}H{m}M{s}S"
    total = h * 3600 + m * 60 + s
    if total:
        assert parse_duration("k", text) == total
    else:
        with pytest.raises(ConfigError):
            parse_duration("k", text)


@given(st.integers(0, 30), st.integers(0, 23))
def test_days_and_hours(d: int, h: int) -> None:
    if d or h:
        assert parse_duration("k", f"P{d}DT{h}H") == d * 86_400 + h * 3_600


@pytest.mark.parametrize("bad", ["1h", "", 90, 90.0, None, "P1M", "P1Y", "P1Y2D", "-PT1H", "PT0S", "P0D", "PT",
                                 "P", "PT1H30", "one hour"])
@pytest.mark.parametrize("key", [("telemetry", "window"), ("telemetry", "grace"), ("monitor", "interval"),
                                 ("monitor", "cooldown", "critical"), ("canary", "interval")])
def test_a_bad_duration_is_refused_naming_its_key(bad: object, key: tuple[str, ...]) -> None:
    mapping: Any = bad
    for part in reversed(key):
        mapping = {part: mapping}
    e = refused(mapping)
    assert e.key == ".".join(key)
    assert isinstance(e, EnhancementError) and isinstance(e, ValueError)
    assert str(e).startswith(e.key + ": ")


def test_minutes_in_the_time_part_are_not_months() -> None:
    assert parse_duration("k", "P1DT1M") == 86_460.0


def test_durations_set_the_seconds_fields() -> None:
    cfg = enhancement_config_from({"telemetry": {"window": "PT2M", "keep": "PT2H", "grace": "PT10S"},
                                   "monitor": {"interval": "PT1M"}, "canary": {"interval": "PT5M"}})
    assert cfg.telemetry == TelemetrySettings(window_s=120.0, keep_s=7_200.0, sample_size=64, grace_s=10.0)
    assert (cfg.monitor.interval_s, cfg.canary.interval_s) == (60.0, 300.0)


# --- unknown keys and bad values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mapping", "key"), [
    ({"monitr": {}}, "monitr"),
    ({"monitor": {"stabilty": {}}}, "monitor.stabilty"),
    ({"monitor": {"stability": {"windw": 5}}}, "monitor.stability.windw"),
    ({"monitor": {"cooldown": {"critical_s": "PT1H"}}}, "monitor.cooldown.critical_s"),
    ({"telemetry": {"window_s": 60}}, "telemetry.window_s"),
    ({"canary": {"judge": {"group_weight": {}}}}, "canary.judge.group_weight"),
    ({"preflight": {"item": {}}}, "preflight.item"),
])
def test_an_unknown_key_is_named(mapping: dict[str, Any], key: str) -> None:
    assert refused(mapping).key == key


@pytest.mark.parametrize(("mapping", "key"), [
    ({"max_concurrent": 0}, "max_concurrent"),
    ({"max_concurrent": True}, "max_concurrent"),
    ({"max_deactivations": 1.5}, "max_deactivations"),
    ({"preflight": {"pass_score": 1.5}}, "preflight.pass_score"),
    ({"monitor": {"stability": {"max_sd": 0}}}, "monitor.stability.max_sd"),
    ({"monitor": {"stability": {"min_samples": 20}}}, "monitor.stability.min_samples"),
    ({"monitor": {"quality": {"min_samples": 6}}}, "monitor.quality.min_samples"),
    ({"monitor": {"quality": {"metric": ""}}}, "monitor.quality.metric"),
    ({"monitor": {"performance": {"throughput_drop": 1.5}}}, "monitor.performance.throughput_drop"),
    ({"monitor": {"consecutive": 0}}, "monitor.consecutive"),
    ({"monitor": {"tolerance": "tiny"}}, "monitor.tolerance"),
    ({"telemetry": {"sample_size": 1}}, "telemetry.sample_size"),
    ({"canary": {"judge": {"min_samples": 2}}}, "canary.judge.min_samples"),
    ({"canary": {"judge": {"group_weights": {"quality": 0}}}}, "canary.judge.group_weights.quality"),
])
def test_a_bad_value_is_named(mapping: dict[str, Any], key: str) -> None:
    assert refused(mapping).key == key


def test_values_are_read() -> None:
    cfg = enhancement_config_from({"max_concurrent": 7, "monitor": {"consecutive": 5, "quality": {"window": 8},
                                                                    "performance": {"accuracy_drop": 0.1}}})
    assert (cfg.max_concurrent, cfg.monitor.consecutive, cfg.monitor.quality.window,
            cfg.monitor.performance.accuracy_drop) == (7, 5, 8, 0.1)
    assert cfg.monitor.quality.critical_below == 0.75  # the rest of the section keeps its defaults
    assert cfg.monitor.stability == MonitorSettings().stability


# --- preflight items ----------------------------------------------------------------------------------------------


def test_preflight_items_replace_the_defaults() -> None:
    items = {"coverage": {"weight": 0.6, "minimum": 0.9}, "safety": {"weight": 0.4, "minimum": 1}}
    cfg = enhancement_config_from({"preflight": {"items": items}})
    assert cfg.preflight == PreflightSettings({"coverage": PreflightItem(0.6, 0.9), "safety": PreflightItem(0.4, 1.0)})


@pytest.mark.parametrize("weights", [(0.5, 0.4), (0.6, 0.6), (1.0, 0.001)])
def test_preflight_weights_must_sum_to_one(weights: tuple[float, float]) -> None:
    items = {"a": {"weight": weights[0], "minimum": 0}, "b": {"weight": weights[1], "minimum": 0}}
    assert refused({"preflight": {"items": items}}).key == "preflight.items"


def test_weights_summing_to_one_within_rounding_pass() -> None:
    items = {n: {"weight": 0.1, "minimum": 0} for n in "abcdefghij"}  # 0.1 × 10 is 0.9999999999999999
    assert len(enhancement_config_from({"preflight": {"items": items}}).preflight.items) == 10


@pytest.mark.parametrize(("items", "key"), [
    ({}, "preflight.items"),
    ([], "preflight.items"),
    ({"a": {"weight": 1.0}}, "preflight.items.a"),
    ({"a": {"weight": 1.0, "minimum": 0, "extra": 1}}, "preflight.items.a"),
    ({"a": {"weight": 2.0, "minimum": 0}}, "preflight.items.a.weight"),
    ({"a": {"weight": 1.0, "minimum": "high"}}, "preflight.items.a.minimum"),
])
def test_a_bad_preflight_item_is_named(items: object, key: str) -> None:
    assert refused({"preflight": {"items": items}}).key == key


# --- cross-field checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("telemetry", [{"window": "PT2H", "keep": "PT1H"}, {"window": "P2D"},
                                       {"keep": "PT30S"}])
def test_telemetry_must_keep_at_least_one_window(telemetry: dict[str, str]) -> None:
    assert refused({"telemetry": telemetry}).key == "telemetry.keep"


def test_telemetry_keeping_exactly_one_window_is_fine() -> None:
    cfg = enhancement_config_from({"telemetry": {"window": "PT1H", "keep": "PT1H"}})
    assert cfg.telemetry.keep_s == cfg.telemetry.window_s == 3_600.0


@pytest.mark.parametrize("canary", [{"sample_size": 10}, {"min_samples": 201}, {"min_samples": 60, "sample_size": 59}])
def test_canary_sample_size_below_min_samples_is_refused(canary: dict[str, int]) -> None:
    assert refused({"canary": canary}).key == "canary.sample_size"


def test_canary_sample_size_equal_to_min_samples_is_fine() -> None:
    cfg = enhancement_config_from({"canary": {"min_samples": 60, "sample_size": 60}})
    assert (cfg.canary.min_samples, cfg.canary.sample_size) == (60, 60)


def test_a_canary_metric_group_without_a_weight_is_refused() -> None:
    metrics = [{"name": "response_time_ms", "direction": "increase", "tolerance": 0.1, "group": "speed"}]
    e = refused({"canary": {"metrics": metrics}})
    assert e.key.startswith("canary.")
    cfg = enhancement_config_from({"canary": {"metrics": metrics, "judge": {"group_weights": {"speed": 1}}}})
    assert cfg.canary.metrics == (MetricJudge("response_time_ms", "increase", 0.1, "speed"),)
    assert dict(cfg.canary.judge.group_weights) == {"speed": 1.0}


def test_canary_metrics_in_known_groups_are_read() -> None:
    metrics = [{"name": "p99_ms", "direction": "increase", "tolerance": 0.2, "group": "latency"},
               {"name": "quality_score", "direction": "decrease", "tolerance": 0.01, "group": "quality",
                "critical": True}]
    cfg = enhancement_config_from({"canary": {"metrics": metrics}})
    assert cfg.canary.metrics == (MetricJudge("p99_ms", "increase", 0.2, "latency"),
                                  MetricJudge("quality_score", "decrease", 0.01, "quality", critical=True))


@pytest.mark.parametrize("metrics", [[], {}, [{"name": "x"}], [{"name": "x", "direction": "up", "tolerance": 0.1,
                                                                  "group": "quality"}],
                                     [{"name": "x", "direction": "increase", "tolerance": 0.1, "group": "quality"}] * 2,
                                     [{"name": "x", "direction": "increase", "tolerance": 0.1, "group": "quality",
                                       "weight": 1}]])
def test_bad_canary_metrics_are_refused(metrics: object) -> None:
    assert refused({"canary": {"metrics": metrics}}).key.startswith("canary.metrics")


def test_overriding_the_judges_alpha_keeps_the_default_group_weights() -> None:
    cfg = enhancement_config_from({"canary": {"judge": {"alpha": 0.01}}})
    assert cfg.canary.judge.alpha == 0.01
    assert dict(cfg.canary.judge.group_weights) == {"quality": 50.0, "errors": 30.0, "latency": 20.0}
    assert cfg.canary.judge == CanarySettings(alpha=0.01, group_weights={"quality": 50.0, "errors": 30.0,
                                                                         "latency": 20.0})
    assert cfg.canary.metrics == CanaryConfig().metrics


# --- canary metrics in the file ------------------------------------------------------------------------------------


def test_a_canary_metric_without_tolerance_or_group_takes_the_wire_defaults() -> None:
    """As the wire model `MetricJudgeSpec` does: tolerance .05, group "default" (which then
    needs a weight, or no group weights at all)."""
    cfg = enhancement_config_from({"canary": {"metrics": [{"name": "x", "direction": "increase"}],
                                              "judge": {"group_weights": {"default": 1}}}})
    assert (cfg.canary.metrics[0].tolerance, cfg.canary.metrics[0].group) == (0.05, "default")


def test_a_non_numeric_canary_tolerance_is_a_config_error() -> None:
    metrics = [{"name": "x", "direction": "increase", "tolerance": "ten percent", "group": "quality"}]
    assert refused({"canary": {"metrics": metrics}}).key.startswith("canary.metrics")


@pytest.mark.parametrize(("canary", "keys"), [
    ({"judge": {"alpha": 1.5}}, {"canary.judge.alpha"}),
    ({"metrics": [{"name": "x", "direction": "increase", "tolerance": 0.1, "group": "speed"}]},
     {"canary.metrics", "canary.judge.group_weights"}),
])
def test_a_canary_judge_error_names_the_key_in_the_file(canary: dict[str, Any], keys: set[str]) -> None:
    assert refused({"canary": canary}).key in keys


# --- files --------------------------------------------------------------------------------------------------------


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_enhancement_config(tmp_path / "enhancements.yaml") == EnhancementConfig()


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "enhancements.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert load_enhancement_config(path) == EnhancementConfig()


def test_a_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "enhancements.yaml"
    path.write_text(yaml.safe_dump({
        "max_concurrent": 2,
        "telemetry": {"window": "PT30S", "keep": "PT6H"},
        "monitor": {"cooldown": {"critical": "P2D", "consecutive": "PT1H30M"}, "consecutive": 4},
        "canary": {"judge": {"alpha": 0.01}},
    }), encoding="utf-8")
    cfg = load_enhancement_config(str(path))
    assert cfg.max_concurrent == 2
    assert (cfg.telemetry.window_s, cfg.telemetry.keep_s) == (30.0, 21_600.0)
    assert cfg.monitor.cooldown == Cooldowns(critical_s=172_800.0, consecutive_s=5_400.0)
    assert cfg.monitor.consecutive == 4 and cfg.canary.judge.alpha == 0.01
    assert cfg.preflight == PreflightSettings()


def test_a_bad_file_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "enhancements.yaml"
    path.write_text("monitor:\n  cooldown:\n    critical: 1h\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_enhancement_config(path)
    assert info.value.key == "monitor.cooldown.critical"
    path.write_text("monitor: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_enhancement_config(path)
    assert info.value.key == "<file>"


def test_the_packaged_file_equals_the_defaults() -> None:
    from resontinex.app.settings import PACKAGED_DIR  # type: ignore[attr-defined]  # re-exported from config

    path = PACKAGED_DIR / "enhancements.yaml"
    if not path.exists():
        pytest.skip(f"no packaged {path.name} yet (looked in {PACKAGED_DIR})")
    assert load_enhancement_config(path) == EnhancementConfig()
