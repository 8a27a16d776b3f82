"""`energy_governance.yaml` (CONTRACT §7.1): budgets, limits, multipliers, tripwire.

Keys beyond the contract's: `multipliers.complexity_threshold` (0.7) and
`multipliers.entropy_threshold` (0.72) say when "high" starts (strictly above);
`budget_tripwire.downgrade_mode` names the cheaper, stricter mode a downgraded tenant
runs in, one of `downgrade_modes` (name → overrides; without the section: `economy`,
`ECONOMY`; a section given replaces it whole, and a mode lists only what it changes);
`recovery` tunes the insight cache and the retry backoff of `defer` decisions.
`budget_limits.approval_threshold` is in tokens: one operation estimated above it needs
review.

>>> cfg = energy_config_from({"budgets": [{"tenant": "acme", "workflow": "refunds", "period": "day", "usd": 50},
...                                       {"tenant": "*", "period": "day", "usd": 100}]})
>>> cfg.budget_for("acme", "refunds").scope, cfg.budget_for("acme", "other").scope, cfg.budget_for("zeta", "x").usd
('acme/refunds', 'acme', 100.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from resontinex.agents._checks import Checks

from ._periods import PERIODS, Period
from .exceptions import ConfigError

ANY_TENANT = "*"


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget entry; `workflow` None means the whole tenant, `tenant` "*" any tenant."""

    tenant: str
    period: Period
    usd: float
    workflow: str | None = None
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ScopedBudget:
    """A budget applied to one tenant: `scope` is the spend key (`tenant` or `tenant/workflow`)."""

    budget: Budget
    scope: str

    @property
    def period(self) -> Period:
        return self.budget.period

    @property
    def usd(self) -> float:
        return self.budget.usd

    @property
    def tokens(self) -> int | None:
        return self.budget.tokens


@dataclass(frozen=True, slots=True)
class Limits:
    hard_limit_percentage: float = 95.0
    auto_review_threshold: float = 85.0
    approval_threshold: int = 10_000


@dataclass(frozen=True, slots=True)
class Multipliers:
    high_complexity: float = 1.5
    low_trust: float = 1.3
    high_entropy: float = 1.4
    emergency_discount: float = 0.6
    complexity_threshold: float = 0.7
    entropy_threshold: float = 0.72


@dataclass(frozen=True, slots=True)
class Tripwire:
    breach_threshold: float = 12.0
    consecutive_limit: int = 3
    auto_recovery: bool = False
    downgrade_mode: str = "economy"


@dataclass(frozen=True, slots=True)
class DowngradeMode:
    """One downgrade mode's overrides (`agents.budget.downgrade_reasons` applies them);
    None (or False) leaves that part of a decision as it is."""

    name: str
    max_estimate_tokens: int | None = None  # an estimate of more tokens goes to review
    max_estimate_usd: float | None = None  # an estimate costing more (before multipliers) goes to review
    trust_floor: float | None = None  # a trust score below this goes to review
    review_all: bool = False  # every decision goes to review


ECONOMY = DowngradeMode("economy", max_estimate_tokens=2000, max_estimate_usd=1.0, trust_floor=0.75)
"""The default mode (as in the packaged `energy_governance.yaml`)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    insight_cache_ttl_s: float = 30.0
    retry_base_s: float = 30.0
    retry_max_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    limits: Limits = field(default_factory=Limits)
    multipliers: Multipliers = field(default_factory=Multipliers)
    tripwire: Tripwire = field(default_factory=Tripwire)
    recovery: Recovery = field(default_factory=Recovery)
    budgets: tuple[Budget, ...] = ()
    downgrade_modes: tuple[DowngradeMode, ...] = (ECONOMY,)

    @property
    def downgrade(self) -> DowngradeMode:
        """The mode `tripwire.downgrade_mode` names (validated to exist).

        >>> EnergyConfig().downgrade.trust_floor
        0.75
        """
        return next(m for m in self.downgrade_modes if m.name == self.tripwire.downgrade_mode)

    def budget_for(self, tenant: str, workflow: str) -> ScopedBudget | None:
        """The most specific entry: tenant+workflow, then tenant, then "*"; None if none."""
        for b in self.budgets:
            if b.tenant == tenant and b.workflow == workflow:
                return ScopedBudget(b, f"{tenant}/{workflow}")
        return self.tenant_budget(tenant)

    def tenant_budget(self, tenant: str) -> ScopedBudget | None:
        """The tenant-wide entry (the tenant's own, else "*"): its period paces the tripwire."""
        for wanted in (tenant, ANY_TENANT):
            for b in self.budgets:
                if b.tenant == wanted and b.workflow is None:
                    return ScopedBudget(b, tenant)
        return None

    def explicit(self) -> list[ScopedBudget]:
        """Every entry naming a tenant (a "*" entry applies to tenants as they appear)."""
        return [ScopedBudget(b, b.tenant if b.workflow is None else f"{b.tenant}/{b.workflow}")
                for b in self.budgets if b.tenant != ANY_TENANT]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_check = Checks(ConfigError)


def _pct(key: str, value: object) -> float:
    return _check.real(key, value, 0.0, 1000.0, lo_open=True)


def _non_negative(key: str, value: object) -> float:
    return _check.real(key, value, 0.0)


def _positive(key: str, value: object) -> float:
    return _check.real(key, value, 0.0, lo_open=True)


def _budget(key: str, raw: object) -> Budget:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"must be a mapping, got {type(raw).__name__}")
    allowed = ("tenant", "workflow", "period", "usd", "tokens")
    for name in raw:
        if name not in allowed:
            raise ConfigError(f"{key}.{name}", f"unknown key (expected one of {', '.join(allowed)})")
    for name in ("tenant", "period", "usd"):
        if name not in raw:
            raise ConfigError(f"{key}.{name}", "is required")
    if raw["period"] not in PERIODS:
        raise ConfigError(f"{key}.period", f"must be one of {', '.join(PERIODS)}, got {raw['period']!r}")
    workflow = raw.get("workflow")
    return Budget(
        tenant=_check.name(f"{key}.tenant", raw["tenant"]),
        workflow=None if workflow is None else _check.name(f"{key}.workflow", workflow),
        period=raw["period"],
        usd=_check.real(f"{key}.usd", raw["usd"], lo=1e-6),  # counted in micro-dollars
        tokens=None if raw.get("tokens") is None else _check.integer(f"{key}.tokens", raw["tokens"], 1),
    )


def energy_config_from(mapping: object) -> EnergyConfig:
    """Validate a parsed `energy_governance.yaml`; the first problem is raised, naming its key."""
    if not isinstance(mapping, Mapping):
        raise ConfigError("<config>", f"must be a mapping, got {type(mapping).__name__}")
    known = ("budget_limits", "multipliers", "budget_tripwire", "recovery", "budgets", "downgrade_modes")
    for name in mapping:
        if name not in known:
            raise ConfigError(str(name), f"unknown key (expected one of {', '.join(known)})")
    section = _check.section
    limits = section(mapping.get("budget_limits"), "budget_limits", Limits, {
        "hard_limit_percentage": _pct, "auto_review_threshold": _pct,
        "approval_threshold": lambda k, v: _check.integer(k, v, 0)})
    if limits.auto_review_threshold > limits.hard_limit_percentage:
        raise ConfigError("budget_limits.auto_review_threshold", "must not exceed hard_limit_percentage")
    multipliers = section(mapping.get("multipliers"), "multipliers", Multipliers, {
        "high_complexity": _pct, "low_trust": _pct, "high_entropy": _pct, "emergency_discount": _pct,
        "complexity_threshold": lambda k, v: _check.real(k, v, 0.0, 1.0),
        "entropy_threshold": lambda k, v: _check.real(k, v, 0.0, 1.0)})
    tripwire = section(mapping.get("budget_tripwire"), "budget_tripwire", Tripwire, {
        "breach_threshold": _non_negative, "consecutive_limit": lambda k, v: _check.integer(k, v, 1),
        "auto_recovery": _check.boolean, "downgrade_mode": _check.name})
    recovery = section(mapping.get("recovery"), "recovery", Recovery, {
        "insight_cache_ttl_s": _non_negative, "retry_base_s": _positive, "retry_max_s": _positive})
    raw_budgets = mapping.get("budgets")
    if raw_budgets is None:
        raw_budgets = []
    if not isinstance(raw_budgets, list):
        raise ConfigError("budgets", f"must be a list, got {type(raw_budgets).__name__}")
    budgets = tuple(_budget(f"budgets[{i}]", raw) for i, raw in enumerate(raw_budgets))
    seen: set[tuple[str, str | None]] = set()
    for i, b in enumerate(budgets):
        if (b.tenant, b.workflow) in seen:
            raise ConfigError(f"budgets[{i}]", f"a second entry for tenant {b.tenant!r} workflow {b.workflow!r}")
        seen.add((b.tenant, b.workflow))
        if b.tenant == ANY_TENANT and b.workflow is not None:
            raise ConfigError(f"budgets[{i}].workflow", 'a "*" entry applies to whole tenants: drop the workflow')
    modes = _downgrade_modes(mapping.get("downgrade_modes"))
    if tripwire.downgrade_mode not in [m.name for m in modes]:
        raise ConfigError("budget_tripwire.downgrade_mode", f"names no mode of downgrade_modes "
                                                            f"({', '.join(m.name for m in modes) or 'none defined'}), "
                                                            f"got {tripwire.downgrade_mode!r}")
    return EnergyConfig(limits, multipliers, tripwire, recovery, budgets, modes)


def _downgrade_modes(raw: object) -> tuple[DowngradeMode, ...]:
    """`downgrade_modes`: name → overrides; absent (or null) gives `(ECONOMY,)`."""
    if raw is None:
        return (ECONOMY,)
    if not isinstance(raw, Mapping):
        raise ConfigError("downgrade_modes", f"must be a mapping of mode names, got {type(raw).__name__}")
    convert = {
        "max_estimate_tokens": lambda k, v: _check.integer(k, v, 0), "max_estimate_usd": _non_negative,
        "trust_floor": lambda k, v: _check.real(k, v, 0.0, 1.0), "review_all": _check.boolean}
    return tuple(_check.section(overrides, f"downgrade_modes.{name}", partial(DowngradeMode, _check.name(
        f"downgrade_modes.{name}", name)), convert) for name, overrides in raw.items())


def load_energy_config(path: str | os.PathLike[str]) -> EnergyConfig:
    """Read and validate the file; a bad file is refused whole, naming the key."""
    return energy_config_from(_check.read_yaml(path))
