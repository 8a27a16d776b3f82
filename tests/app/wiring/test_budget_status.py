"""`/budget/status` rows: every configured budget shows before any cost, at spend 0."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from resontinex.agents.budget import Period, energy_config_from, period_start
from resontinex.app.wiring.budget_status import budget_rows
from resontinex.topics import partition_of

PARTITIONS = 4
NOW = 1_700_000_000.0
ENERGY = energy_config_from({"budgets": [
    {"tenant": "acme", "workflow": "refunds", "period": "day", "usd": 50},
    {"tenant": "acme", "period": "month", "usd": 1000, "tokens": 20_000_000},
    {"tenant": "*", "period": "day", "usd": 100},
]})


class Tables:
    """The part of `BudgetTables` the rows read: spend per (period, scope), the tripwire table."""

    def __init__(self, spend: dict[tuple[Period, str], tuple[int, int]] | None = None) -> None:
        self.spend = spend or {}
        self.tripwire: dict[str, Any] = {}

    def spent(self, period: Period, scope: str, at: float) -> tuple[int, int]:
        assert period_start(period, at) == period_start(period, NOW)
        return self.spend.get((period, scope), (0, 0))

    def downgraded(self, tenant: str) -> bool:
        return False


def _rows(tables: Tables, decided: Iterable[str] = (), owned: Iterable[int] = range(PARTITIONS)) -> dict[str, Any]:
    rows = budget_rows(ENERGY, tables, {}, decided, set(owned), PARTITIONS, NOW)  # type: ignore[arg-type]
    return {row["scope"]: row for row in rows}


def test_before_any_cost_every_configured_budget_shows_at_spend_zero():
    rows = _rows(Tables())
    assert sorted(rows) == ["*", "acme", "acme/refunds"]
    for row in rows.values():
        assert (row["spent_usd"], row["tokens"], row["utilization"], row["status"]) == (0.0, 0, 0.0, "ok")
    assert rows["*"]["tenant"] == "*" and rows["*"]["limit_usd"] == 100.0
    assert rows["*"]["period_start"] == "2023-11-14T00:00:00Z" and rows["*"]["period_end"] == "2023-11-15T00:00:00Z"
    assert rows["acme"]["remaining_usd"] == 1000.0 and rows["acme"]["limit_tokens"] == 20_000_000


def test_a_tenant_seen_in_decisions_shows_under_the_star_budget_before_its_first_cost():
    rows = _rows(Tables(), decided={"zeta"})
    assert rows["zeta"]["tenant"] == "zeta" and rows["zeta"]["limit_usd"] == 100.0
    assert rows["zeta"]["spent_usd"] == 0.0


def test_a_tenant_seen_in_costs_shows_its_spend():
    tables = Tables({("day", "zeta"): (25_000_000, 500)})
    tables.tripwire["zeta"] = {"downgraded": False}
    row = _rows(tables)["zeta"]
    assert (row["spent_usd"], row["tokens"], row["utilization"], row["remaining_usd"]) == (25.0, 500, 0.25, 75.0)


def test_only_the_owner_of_a_tenants_partition_shows_its_rows():
    acme, zeta, star = (partition_of(t, PARTITIONS) for t in ("acme", "zeta", "*"))
    assert len({acme, zeta, star}) == 3
    assert sorted(_rows(Tables(), decided={"zeta"}, owned={acme})) == ["acme", "acme/refunds"]
    assert sorted(_rows(Tables(), decided={"zeta"}, owned={star})) == ["*"]
    assert sorted(_rows(Tables(), decided={"zeta"}, owned={zeta})) == ["zeta"]
