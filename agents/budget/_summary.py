"""What a decision says about its budget: the `budget` object, the reasons, the alerts.

>>> from resontinex.agents.budget import energy_config_from, assess
>>> cfg = energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100}]})
>>> scoped = cfg.budget_for("acme", "default")
>>> a = assess(cfg, scoped, spent_micros=96_000_000, spent_tokens=0, estimate_usd=1.0, estimate_tokens=None,
...            complexity=None, entropy=None, low_trust=False, braked=False)
>>> [r["code"] for r in budget_reasons(a, scoped, cfg, downgraded=False, retry_after=None)]
['emergency_brake']
>>> transition_alert(Mark(level=1), a.level)
('emergency_brake', 'critical')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._config import EnergyConfig, ScopedBudget
from ._periods import iso
from ._rules import STATUS_RANK, Assessment

TRANSITION_ALERTS = {
    "review": ("budget_warning", "warning"),
    "braked": ("emergency_brake", "critical"),
    "blocked": ("budget_blocked", "critical"),
}
"""The alert raised the first time in a period a budget reaches each status."""


@dataclass(frozen=True, slots=True)
class Mark:
    """Per budget and period: the highest status reached (by utilization), and since when
    decisions have been over budget without a break (None: the last one was not)."""

    level: int = 0
    blocked_since: float | None = None

    @property
    def braked(self) -> bool:
        return self.level >= STATUS_RANK["braked"]

    def after(self, level: str, at: float) -> "Mark":
        """The mark once a decision whose budget `level` is this was made at time `at`.

        >>> Mark().after("blocked", 10.0).after("blocked", 20.0), Mark(3, 10.0).after("braked", 30.0)
        (Mark(level=3, blocked_since=10.0), Mark(level=3, blocked_since=None))
        """
        since = (self.blocked_since if self.blocked_since is not None else at) if level == "blocked" else None
        return Mark(max(self.level, STATUS_RANK.get(level, 0)), since)

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "blocked_since": self.blocked_since}


def mark_key(scope: str, period_start: str) -> str:
    """The key of a budget's mark for the period starting at `period_start` (RFC 3339)."""
    return f"{scope}|{period_start}"


def transition_alert(mark: Mark, level: str) -> tuple[str, str] | None:
    """(kind, severity) when the utilization `level` is new for this budget this period
    (an approval-only review is not a budget level), else None."""
    if STATUS_RANK.get(level, 0) > mark.level:
        return TRANSITION_ALERTS[level]
    return None


def budget_summary(a: Assessment, scoped: ScopedBudget, start: float, end: float, *, downgraded: bool,
                   mode: str | None, retry_after: float | None, blocked_since: float | None = None) -> dict[str, Any]:
    """CONTRACT §3.2 `budget`, plus where it applies: scope, period and its bounds."""
    return {
        "status": "downgraded" if downgraded and a.status == "ok" else a.status,
        "utilization": a.utilization,
        "remaining_usd": a.remaining_usd,
        "effective_cost_usd": a.effective_cost_usd,
        "multiplier": a.multiplier,
        "multipliers": list(a.multipliers),
        "scope": scoped.scope,
        "period": scoped.period,
        "period_start": iso(start),
        "period_end": iso(end),
        "limit_usd": scoped.usd,
        "downgraded": downgraded,
        "mode": mode if downgraded else None,
        "retry_after_s": retry_after,
        "blocked_since": iso(blocked_since) if blocked_since is not None else None,
    }


def budget_reasons(a: Assessment, scoped: ScopedBudget, cfg: EnergyConfig, *, downgraded: bool,
                   retry_after: float | None) -> list[dict[str, str]]:
    """Why the budget says what it says; empty for an ok budget with nothing to note."""
    where = f"{scoped.scope} {scoped.period} budget of ${scoped.usd:g}"
    used = f"utilization {a.utilization:.4f} of the {where}"
    mult = f" (effective cost ${a.effective_cost_usd:g} = estimate × {a.multiplier:g}: {', '.join(a.multipliers)})" \
        if a.multipliers else ""
    limits = cfg.limits
    out = []
    if a.status == "blocked":
        out.append({"component": "budget", "code": "budget_exceeded",
                    "message": f"{used} is over 100%{mult}; retry after {retry_after:g} s"})
    elif a.status == "braked":
        out.append({"component": "budget", "code": "emergency_brake",
                    "message": f"{used}{mult}: emergency brake (engaged at {limits.hard_limit_percentage:g}%, "
                               f"held for the rest of the period)"})
    elif a.level == "review":
        out.append({"component": "budget", "code": "budget_review",
                    "message": f"{used} ≥ {limits.auto_review_threshold:g}%{mult}"})
    if a.approval_required:
        out.append({"component": "budget", "code": "approval_required",
                    "message": f"estimated tokens exceed the approval threshold of {limits.approval_threshold}"})
    if downgraded:
        out.append({"component": "budget", "code": "tripwire_downgraded",
                    "message": f"token use grew past the tripwire {cfg.tripwire.consecutive_limit} windows in a row: "
                               f"run in {cfg.tripwire.downgrade_mode} mode"})
    return out
