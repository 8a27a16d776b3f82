"""The mode a tripwire-downgraded tenant runs in (seed 000): cheaper and stricter.

`energy_governance.yaml` names the mode in `budget_tripwire.downgrade_mode` and defines
it under `downgrade_modes`. While the tenant is downgraded, every override of the mode
that bites adds a `budget` reason and makes the decision at least `review`; an override
left out changes nothing, and an estimate the request does not carry is not judged
(as `approval_threshold`).

>>> economy = DowngradeMode("economy", max_estimate_tokens=2000, trust_floor=0.75)
>>> [r["code"] for r in downgrade_reasons(economy, estimate_tokens=2500, estimate_usd=None, score=0.7)]
['downgrade_tokens_over_limit', 'downgrade_trust_floor']
>>> downgrade_reasons(economy, estimate_tokens=2000, estimate_usd=None, score=0.75)
[]
"""

from __future__ import annotations

from ._config import DowngradeMode
from ._rules import to_micros


def downgrade_reasons(mode: DowngradeMode, *, estimate_tokens: int | None, estimate_usd: float | None,
                      score: float) -> list[dict[str, str]]:
    """The reasons a downgraded tenant's request goes to `review` under `mode`, one per
    override that bites; empty when none does. `score` is the trust score the gate decided on.

    >>> from resontinex.agents.budget import ECONOMY
    >>> [r["message"] for r in downgrade_reasons(ECONOMY, estimate_tokens=None, estimate_usd=1.5, score=0.9)]
    ['economy mode (tripwire downgrade): estimated cost $1.5 is over its limit of $1: review']
    >>> downgrade_reasons(DowngradeMode("labels"), estimate_tokens=10**9, estimate_usd=10**6, score=0.0)
    []
    """
    where = f"{mode.name} mode (tripwire downgrade)"
    out: list[tuple[str, str]] = []
    if mode.review_all:
        out.append(("downgrade_review_all", f"{where}: every decision is reviewed"))
    if mode.max_estimate_tokens is not None and estimate_tokens is not None \
            and estimate_tokens > mode.max_estimate_tokens:
        out.append(("downgrade_tokens_over_limit",
                    f"{where}: estimated {estimate_tokens} tokens are over its limit of {mode.max_estimate_tokens}: "
                    f"review"))
    if mode.max_estimate_usd is not None and estimate_usd is not None \
            and to_micros(estimate_usd) > to_micros(mode.max_estimate_usd):
        out.append(("downgrade_cost_over_limit",
                    f"{where}: estimated cost ${estimate_usd:g} is over its limit of ${mode.max_estimate_usd:g}: "
                    f"review"))
    if mode.trust_floor is not None and score < mode.trust_floor:
        out.append(("downgrade_trust_floor",
                    f"{where}: trust score {score:.4f} is below its floor of {mode.trust_floor:g}: review"))
    return [{"component": "budget", "code": code, "message": message} for code, message in out]
