"""Energy governance: budgets per tenant and workflow, enforced on the stream.

The pure rules live here (`assess`, `tripwire_step`, `downgrade_reasons`, periods,
configuration) and the batch cores `plan_costs` and `plan_reset`; the shell that keeps
spend in windowed Faust tables is `resontinex.app.wiring.budget`.
"""

from ._config import (
    ANY_TENANT,
    ECONOMY,
    Budget,
    DowngradeMode,
    EnergyConfig,
    Limits,
    Multipliers,
    Recovery,
    ScopedBudget,
    Tripwire,
    energy_config_from,
    load_energy_config,
)
from ._downgrade import downgrade_reasons
from ._plan import FUTURE_TOLERANCE_S, BudgetView, CostBatch, CostsPlan, plan_costs, plan_reset, spend_table
from ._periods import LONGEST_S, PERIODS, Period, iso, period_end, period_start, previous_start
from ._rules import (
    MICROS,
    STATUS_RANK,
    STATUS_VERB,
    Assessment,
    TripwireState,
    assess,
    cost_multiplier,
    is_breach,
    retry_after_s,
    status_of,
    to_micros,
    tripwire_step,
)
from ._usage import COST_OPERATION, tokens_observations
from ._summary import TRANSITION_ALERTS, Mark, budget_reasons, budget_summary, mark_key, transition_alert
from .exceptions import BudgetError, ConfigError

__all__ = [
    "ANY_TENANT", "ECONOMY", "FUTURE_TOLERANCE_S", "LONGEST_S", "MICROS", "PERIODS", "STATUS_RANK", "STATUS_VERB", "TRANSITION_ALERTS",
    "Assessment", "Budget", "BudgetError", "BudgetView", "CostBatch", "CostsPlan", "ConfigError", "DowngradeMode", "EnergyConfig", "Limits", "Mark", "Multipliers",
    "Period", "Recovery", "ScopedBudget", "Tripwire", "TripwireState",
    "assess", "budget_reasons", "budget_summary", "cost_multiplier", "downgrade_reasons", "energy_config_from", "is_breach", "iso",
    "load_energy_config", "mark_key", "plan_costs", "plan_reset", "spend_table",
    "period_end", "period_start", "previous_start", "retry_after_s", "status_of", "to_micros",
    "transition_alert", "tripwire_step",
]
