from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from resontinex.agents.budget import (
    ECONOMY,
    Budget,
    ConfigError,
    DowngradeMode,
    EnergyConfig,
    Limits,
    Multipliers,
    Recovery,
    Tripwire,
    energy_config_from,
    load_energy_config,
)

PACKAGED = Path(__file__).resolve().parents[3] / "config" / "energy_governance.yaml"
CONTRACT_BUDGETS = [  # CONTRACT §7.1
    {"tenant": "acme", "workflow": "refunds", "period": "day", "usd": 50.0},
    {"tenant": "acme", "period": "month", "usd": 1000.0, "tokens": 20_000_000},
    {"tenant": "*", "period": "day", "usd": 100.0},
]


def entry(**overrides: Any) -> dict[str, Any]:
    return {"tenant": "acme", "period": "day", "usd": 10.0, **overrides}


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in entry().items() if k != key}


def test_packaged_file_loads_with_the_contract_numbers() -> None:
    cfg = load_energy_config(PACKAGED)
    assert cfg.limits == Limits(hard_limit_percentage=95.0, auto_review_threshold=85.0, approval_threshold=10_000)
    assert cfg.multipliers == Multipliers(1.5, 1.3, 1.4, 0.6, complexity_threshold=0.7, entropy_threshold=0.72)
    assert cfg.tripwire == Tripwire(breach_threshold=12.0, consecutive_limit=3, auto_recovery=False,
                                    downgrade_mode="economy")
    assert cfg.recovery == Recovery(insight_cache_ttl_s=30.0, retry_base_s=30.0, retry_max_s=3600.0)
    assert cfg.budgets == (Budget(tenant="*", period="day", usd=100.0),)
    assert cfg.downgrade == DowngradeMode("economy", max_estimate_tokens=2000, max_estimate_usd=1.0,
                                          trust_floor=0.75, review_all=False) == ECONOMY


@pytest.mark.parametrize("mapping", [{}, {"budgets": None, "multipliers": None}], ids=["empty", "nulls"])
def test_defaults_are_the_contract_numbers(mapping: dict[str, Any]) -> None:
    cfg = energy_config_from(mapping)
    assert (cfg.limits.hard_limit_percentage, cfg.limits.auto_review_threshold, cfg.limits.approval_threshold) \
        == (95.0, 85.0, 10_000)
    m = cfg.multipliers
    assert (m.high_complexity, m.low_trust, m.high_entropy, m.emergency_discount) == (1.5, 1.3, 1.4, 0.6)
    assert (cfg.tripwire.breach_threshold, cfg.tripwire.consecutive_limit, cfg.tripwire.auto_recovery) \
        == (12.0, 3, False)
    assert cfg.budgets == ()
    assert cfg.budget_for("anyone", "default") is None


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "energy.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    assert load_energy_config(path) == EnergyConfig()


def test_sections_override_only_what_they_name() -> None:
    cfg = energy_config_from({"budget_limits": {"approval_threshold": 5},
                              "budget_tripwire": {"auto_recovery": True, "consecutive_limit": 2}})
    assert cfg.limits == Limits(95.0, 85.0, 5)
    assert cfg.tripwire == Tripwire(12.0, 2, True, "economy")


@pytest.mark.parametrize(("mapping", "key"), [
    ({"budgetz": {}}, "budgetz"),
    ({"budget_limits": {"hard_limit": 90}}, "budget_limits.hard_limit"),
    ({"multipliers": {"low_trust": 1.3, "lowtrust": 1.3}}, "multipliers.lowtrust"),
    ({"budgets": [entry(team="x")]}, "budgets[0].team"),
    ({"budgets": [without("tenant")]}, "budgets[0].tenant"),
    ({"budgets": [entry(), without("period")]}, "budgets[1].period"),
    ({"budgets": [without("usd")]}, "budgets[0].usd"),
    ({"budgets": [entry(period="week")]}, "budgets[0].period"),
    ({"budgets": [entry(usd=-1.0)]}, "budgets[0].usd"),
    ({"budgets": [entry(usd=0)]}, "budgets[0].usd"),
    ({"budgets": [entry(usd=math.nan)]}, "budgets[0].usd"),
    ({"budgets": [entry(usd=True)]}, "budgets[0].usd"),
    ({"budgets": [entry(usd="10")]}, "budgets[0].usd"),
    ({"budgets": [entry(tokens=0)]}, "budgets[0].tokens"),
    ({"budgets": [entry(tokens=1.5)]}, "budgets[0].tokens"),
    ({"budgets": [entry(tenant="")]}, "budgets[0].tenant"),
    ({"budgets": [entry(workflow=" ")]}, "budgets[0].workflow"),
    ({"budget_limits": {"auto_review_threshold": 96}}, "budget_limits.auto_review_threshold"),
    ({"budget_limits": {"hard_limit_percentage": 0}}, "budget_limits.hard_limit_percentage"),
    ({"budget_limits": {"approval_threshold": -1}}, "budget_limits.approval_threshold"),
    ({"multipliers": {"complexity_threshold": 1.5}}, "multipliers.complexity_threshold"),
    ({"budget_tripwire": {"consecutive_limit": 0}}, "budget_tripwire.consecutive_limit"),
    ({"budget_tripwire": {"auto_recovery": "yes"}}, "budget_tripwire.auto_recovery"),
    ({"budget_tripwire": {"breach_threshold": -0.5}}, "budget_tripwire.breach_threshold"),
    ({"recovery": {"retry_base_s": 0}}, "recovery.retry_base_s"),
    ({"budgets": [entry(), entry(usd=20.0)]}, "budgets[1]"),
    ({"budgets": [entry(workflow="a"), entry(tenant="b"), entry(workflow="a")]}, "budgets[2]"),
    ({"budgets": [{"tenant": "*", "workflow": "refunds", "period": "day", "usd": 1}]}, "budgets[0].workflow"),
    ({"multipliers": [1.5]}, "multipliers"),
    ({"budgets": {"tenant": "acme"}}, "budgets"),
    ({"budgets": ["acme"]}, "budgets[0]"),
    ({"downgrade_modes": {"economy": {"trust_flor": 0.8}}}, "downgrade_modes.economy.trust_flor"),
    ({"downgrade_modes": {"economy": {"trust_floor": 1.5}}}, "downgrade_modes.economy.trust_floor"),
    ({"downgrade_modes": {"economy": {"max_estimate_tokens": 1.5}}}, "downgrade_modes.economy.max_estimate_tokens"),
    ({"downgrade_modes": {"economy": {"max_estimate_usd": -1}}}, "downgrade_modes.economy.max_estimate_usd"),
    ({"downgrade_modes": {"economy": {"review_all": "yes"}}}, "downgrade_modes.economy.review_all"),
    ({"downgrade_modes": {"economy": [2000]}}, "downgrade_modes.economy"),
    ({"downgrade_modes": ["economy"]}, "downgrade_modes"),
    ({"downgrade_modes": {"strict": {"review_all": True}}}, "budget_tripwire.downgrade_mode"),
    ({"budget_tripwire": {"downgrade_mode": "eco"}}, "budget_tripwire.downgrade_mode"),
])
def test_every_error_names_its_dotted_key(mapping: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        energy_config_from(mapping)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


@pytest.mark.parametrize("value", [["budgets"], "budgets: []", 3])
def test_a_non_mapping_document_is_refused(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        energy_config_from(value)  # type: ignore[arg-type]
    assert info.value.key == "<config>"


@pytest.mark.parametrize(("text", "key"), [
    ("budgets: [\n", "<file>"),
    ("budget_limits: {hard_limit_percentage: 95\n", "<file>"),
    ("- 1\n- 2\n", "<config>"),
    ("budgets:\n  - {tenant: acme, period: fortnight, usd: 1}\n", "budgets[0].period"),
])
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "energy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_energy_config(path)
    assert info.value.key == key


@pytest.mark.parametrize(("mapping", "key"), [
    ({"budget_limits": 0}, "budget_limits"),
    ({"multipliers": False}, "multipliers"),
    ({"budget_tripwire": ""}, "budget_tripwire"),
    ({"budgets": {}}, "budgets"),
    ({"budgets": ""}, "budgets"),
])
def test_falsy_wrong_types_are_refused_too(mapping: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        energy_config_from(mapping)
    assert info.value.key == key


@pytest.mark.parametrize(("tenant", "workflow", "scope", "usd", "period"), [
    ("acme", "refunds", "acme/refunds", 50.0, "day"),
    ("acme", "default", "acme", 1000.0, "month"),
    ("acme", "Refunds", "acme", 1000.0, "month"),
    ("zeta", "refunds", "zeta", 100.0, "day"),
    ("zeta", "default", "zeta", 100.0, "day"),
])
def test_budget_for_most_specific_entry_wins(tenant: str, workflow: str, scope: str, usd: float, period: str) -> None:
    scoped = energy_config_from({"budgets": CONTRACT_BUDGETS}).budget_for(tenant, workflow)
    assert scoped is not None
    assert (scoped.scope, scoped.usd, scoped.period) == (scope, usd, period)


def test_order_of_entries_does_not_change_the_winner() -> None:
    cfg = energy_config_from({"budgets": list(reversed(CONTRACT_BUDGETS))})
    scoped = cfg.budget_for("acme", "refunds")
    assert scoped is not None and (scoped.scope, scoped.usd) == ("acme/refunds", 50.0)


def test_workflow_entry_without_tenant_entry_falls_back_to_star_then_none() -> None:
    budgets = [{"tenant": "acme", "workflow": "refunds", "period": "hour", "usd": 5}]
    cfg = energy_config_from({"budgets": budgets})
    assert cfg.budget_for("acme", "other") is None
    assert cfg.tenant_budget("acme") is None
    star = energy_config_from({"budgets": [*budgets, {"tenant": "*", "period": "month", "usd": 7}]})
    fallback = star.budget_for("acme", "other")
    assert fallback is not None and (fallback.scope, fallback.usd, fallback.period) == ("acme", 7.0, "month")


def test_tenant_budget_ignores_workflow_entries() -> None:
    cfg = energy_config_from({"budgets": CONTRACT_BUDGETS})
    acme, zeta = cfg.tenant_budget("acme"), cfg.tenant_budget("zeta")
    assert acme is not None and (acme.scope, acme.usd, acme.tokens) == ("acme", 1000.0, 20_000_000)
    assert zeta is not None and (zeta.scope, zeta.usd, zeta.tokens) == ("zeta", 100.0, None)


def test_explicit_lists_named_tenants_only() -> None:
    cfg = energy_config_from({"budgets": CONTRACT_BUDGETS})
    assert [(s.scope, s.usd) for s in cfg.explicit()] == [("acme/refunds", 50.0), ("acme", 1000.0)]


def test_as_dict_is_plain_data() -> None:
    raw = energy_config_from({"budgets": CONTRACT_BUDGETS}).as_dict()
    assert sorted(raw) == ["budgets", "downgrade_modes", "limits", "multipliers", "recovery", "tripwire"]
    assert list(raw["downgrade_modes"]) == [{"name": "economy", "max_estimate_tokens": 2000, "max_estimate_usd": 1.0,
                                             "trust_floor": 0.75, "review_all": False}]
    assert raw["limits"] == {"hard_limit_percentage": 95.0, "auto_review_threshold": 85.0, "approval_threshold": 10_000}
    assert raw["budgets"][1] == {"tenant": "acme", "period": "month", "usd": 1000.0, "workflow": None,
                                 "tokens": 20_000_000}


def test_a_mode_lists_only_what_it_changes_and_replaces_the_default_modes() -> None:
    cfg = energy_config_from({"budget_tripwire": {"downgrade_mode": "strict"},
                              "downgrade_modes": {"strict": {"review_all": True}, "lean": {"trust_floor": 0.7}}})
    assert cfg.downgrade_modes == (DowngradeMode("strict", review_all=True), DowngradeMode("lean", trust_floor=0.7))
    assert cfg.downgrade == DowngradeMode("strict", review_all=True)


def test_a_mode_with_no_overrides_only_labels() -> None:
    assert energy_config_from({"downgrade_modes": {"economy": None}}).downgrade == DowngradeMode("economy")


def test_a_bad_mode_in_a_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "energy.yaml"
    path.write_text("downgrade_modes:\n  economy: {max_tokens: 100}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_energy_config(path)
    assert info.value.key == "downgrade_modes.economy.max_tokens"
    assert "unknown key" in str(info.value) and "max_estimate_tokens" in str(info.value)
