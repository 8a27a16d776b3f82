"""`GET /budget/status`: every budget this worker owns, judged on spend so far (0 before
any cost).

The per-budget gauges of `/metrics` are set here too, each time, from scratch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from resontinex.app import metrics
from resontinex.topics import partition_of

from resontinex.agents.budget import ANY_TENANT, MICROS, STATUS_RANK, EnergyConfig, ScopedBudget, assess, iso, mark_key, period_end, period_start

from resontinex.app.wiring.budget import BudgetTables


def budget_rows(energy: EnergyConfig, tables: BudgetTables, marks: Any, decided: Iterable[str], owned: set[int],
                partitions: int, now: float) -> list[dict[str, Any]]:
    """One row per budget of a tenant on an `owned` partition: every named entry, the "*"
    entry for each tenant seen (in costs, or in `decided`: the tenants with decisions) that
    falls under it, and the "*" entry itself as scope "*" (on the owner of "*"'s partition),
    so a budget shows before anything is spent. `marks` is the gate's `budget-marks` table:
    a brake engaged this period holds."""
    scoped: dict[str, ScopedBudget] = {s.scope: s for s in energy.explicit()}
    for tenant in {*tables.tripwire.keys(), *decided, ANY_TENANT}:
        budget = energy.tenant_budget(tenant)
        if budget is not None:
            scoped.setdefault(budget.scope, budget)
    rows = []
    gauges = (metrics.BUDGET_UTILIZATION, metrics.BUDGET_REMAINING, metrics.BUDGET_STATUS, metrics.BUDGET_SPENT,
              metrics.TRIPWIRE_DOWNGRADED)
    for gauge in gauges:  # only what this worker owns now: a moved partition's series go
        gauge.clear()
    for scope, s in sorted(scoped.items()):
        tenant = s.budget.tenant if s.budget.tenant != ANY_TENANT else scope
        if partition_of(tenant, partitions) not in owned:
            continue
        micros, tokens = tables.spent(s.period, scope, now)
        start = period_start(s.period, now)
        mark = marks.get(mark_key(scope, iso(start))) or {}
        a = assess(energy, s, spent_micros=micros, spent_tokens=tokens, estimate_usd=None, estimate_tokens=None,
                   complexity=None, entropy=None, low_trust=False, braked=mark.get("level", 0) >= STATUS_RANK["braked"])
        downgraded = s.budget.workflow is None and tables.downgraded(tenant)
        rows.append({
            "scope": scope, "tenant": tenant, "workflow": s.budget.workflow, "period": s.period,
            "period_start": iso(start), "period_end": iso(period_end(s.period, start)),
            "limit_usd": s.usd, "spent_usd": micros / MICROS, "remaining_usd": a.remaining_usd,
            "limit_tokens": s.tokens, "tokens": tokens, "utilization": a.utilization,
            "status": "downgraded" if downgraded and a.status == "ok" else a.status, "downgraded": downgraded,
        })
        labels = (scope, s.period)
        metrics.BUDGET_UTILIZATION.labels(*labels).set(a.utilization)
        metrics.BUDGET_REMAINING.labels(*labels).set(a.remaining_usd)
        metrics.BUDGET_STATUS.labels(*labels).set(STATUS_RANK[a.status])
        metrics.BUDGET_SPENT.labels(*labels).set(micros / MICROS)
        if s.budget.workflow is None:
            metrics.TRIPWIRE_DOWNGRADED.labels(tenant).set(int(downgraded))
    return rows
