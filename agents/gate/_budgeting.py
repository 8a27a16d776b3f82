"""The budget part of a decision, and the insight cache, for the gate's plan.

`BudgetJudge` reads the spend so far (the budget tables: same worker, same partition, as
tenant-keyed topics are co-partitioned) and the per-period marks through the gate's view,
and says what the budget makes of one request. `InsightCache` lets an identical request
inside a short TTL reuse the earlier decision. Both read state only through the view and
hand back what changed (`touched`, `puts`) for the shell to keep.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, NamedTuple

import orjson

from resontinex.agents import budget as bg
from resontinex.schemas import DecisionRequest

from ._decide import alert_event, most_restrictive
from ._view import GateView

_STATUS_BY_RANK = {rank: name for name, rank in bg.STATUS_RANK.items()}
LAG_LIMIT = 1000
"""Cost records not yet folded beyond which the spend so far is too stale to execute on."""


class Judged(NamedTuple):
    budget: dict[str, Any]
    verb: str
    reasons: list[dict[str, str]]
    alert: dict[str, Any] | None  # the first time this period the budget reaches this status
    change: dict[str, Any] | None  # its audit body
    mark: tuple[str, bg.Mark]  # (mark key, the budget period's mark after this decision)


class BudgetJudge:
    """One per batch, judging at the batch's wall-clock time: a decision is about spend so
    far, now (a request's own `ts` could otherwise pick an empty future window). Table
    reads are memoised for the batch: it runs with no `await`, so the budget agent cannot
    change them meanwhile.

    A budget's mark (highest level, over since) comes from the partition state (recovered
    from the audit tail), else from the `budget-marks` table the gate writes after each
    batch's audit (`touched`), for marks older than the tail.
    """

    def __init__(self, energy: bg.EnergyConfig, view: GateView, now: float) -> None:
        self.energy, self.view, self.now = energy, view, now
        self.touched: dict[tuple[int, str], bg.Mark] = {}
        """(partition, mark key) → the mark after this batch."""
        self.statuses: Counter[str] = Counter()
        self._spent: dict[tuple[bg.Period, str], tuple[int, int]] = {}
        self._downgraded: dict[str, bool] = {}
        self._lags: dict[int, int | None] = {}
        self.lagging = 0
        """Decisions judged on spend that lags (a failed state read, for the circuit breaker)."""

    def __call__(self, tenant: str, request: DecisionRequest, partition: int, ts: str, low_trust: bool,
                 score: float) -> Judged | None:
        """The budget's part of `request`'s decision; `score` is its trust score, `low_trust`
        whether that is under the trust gate's floor. While the tenant is downgraded, its
        mode's overrides (`bg.downgrade_reasons`) can make the verb at least `review`."""
        cfg = self.energy
        scoped = cfg.budget_for(tenant, request.workflow)
        if scoped is None:
            return None
        at = self.now
        start = bg.period_start(scoped.period, at)
        end = bg.period_end(scoped.period, start)
        if (scoped.period, scoped.scope) not in self._spent:
            self._spent[(scoped.period, scoped.scope)] = self.view.spent(scoped.period, scoped.scope, at)
        micros, tokens = self._spent[(scoped.period, scoped.scope)]
        key = bg.mark_key(scoped.scope, bg.iso(start))
        mark = self._mark(partition, key)
        est = request.estimate
        usd, est_tokens = (est.cost_usd, est.tokens) if est else (None, None)
        a = bg.assess(cfg, scoped, spent_micros=micros, spent_tokens=tokens,
                      estimate_usd=usd, estimate_tokens=est_tokens,
                      complexity=est.complexity if est else None, entropy=est.entropy if est else None,
                      low_trust=low_trust, braked=mark.braked)
        lag = self._lag(partition)
        if lag is not None and lag > LAG_LIMIT and a.status == "ok":
            a = dataclasses.replace(a, status="review")  # fail safe: the spend so far is understated
        after = mark.after(a.level, at)
        retry = None
        if a.status == "blocked":
            over_for = at - (after.blocked_since or at)
            retry = bg.retry_after_s(over_for, cfg.recovery.retry_base_s, cfg.recovery.retry_max_s, end - at)
        if tenant not in self._downgraded:
            self._downgraded[tenant] = self.view.downgraded(tenant)
        downgraded = self._downgraded[tenant]
        budget = bg.budget_summary(a, scoped, start, end, downgraded=downgraded, mode=cfg.tripwire.downgrade_mode,
                                   retry_after=retry, blocked_since=after.blocked_since)
        reasons = bg.budget_reasons(a, scoped, cfg, downgraded=downgraded, retry_after=retry)
        verb = a.verb
        if downgraded:
            held = bg.downgrade_reasons(cfg.downgrade, estimate_tokens=est_tokens, estimate_usd=usd, score=score)
            reasons.extend(held)
            verb = most_restrictive((verb, "review")) if held else verb
        if lag is not None and lag > LAG_LIMIT:
            self.lagging += 1
            reasons.append({"component": "budget", "code": "budget_lagging",
                            "message": f"{lag} cost records not counted yet: the spend so far is understated"})
        alert = change = None
        transition = bg.transition_alert(mark, a.level)
        if transition is not None:
            kind, severity = transition
            details = {"scope": scoped.scope, "period": scoped.period, "period_start": budget["period_start"],
                       "period_end": budget["period_end"], "from": _STATUS_BY_RANK[mark.level], "to": a.level,
                       "utilization": a.utilization, "limit_usd": scoped.usd, "request_id": request.event_id}
            alert = alert_event(id_source=key, kind=kind, tenant=tenant, severity=severity,
                                message=f"{scoped.scope} {scoped.period} budget reached {a.level} "
                                        f"(utilization {a.utilization:.4f} of ${scoped.usd:g})",
                                details=details, source_event_id=request.event_id, ts=ts)
            change = {"budget": details}
        self.touched[(partition, key)] = after
        self.statuses[budget["status"]] += 1
        return Judged(budget, verb, reasons, alert, change, (key, after))

    def resume(self, partition: int, key: str, mark: bg.Mark) -> None:
        """A decision made before (`_plan`'s resumed ones) left its budget period at `mark`."""
        self.touched[(partition, key)] = mark

    def _lag(self, partition: int) -> int | None:
        if partition not in self._lags:
            self._lags[partition] = self.view.budget_lag(partition)
        return self._lags[partition]

    def _mark(self, partition: int, key: str) -> bg.Mark:
        return self.touched.get((partition, key)) or self.view.mark(partition, key)


class InsightCache:
    """Identical requests (same tenant, workflow, signals, estimate and the rest, apart from
    `event_id` and `ts`) inside the TTL get the earlier decision's verdict, as long as the
    trust verdict (the tenant's calibration may have been fitted since), the budget status
    (and its period) and the tripwire downgrade have not changed since.
    Break-glass requests and over-budget defers (whose `retry_after_s` backs off) are never
    answered from it. The entries live in memory per worker (`GateView.cached`); `puts`
    holds this batch's new ones, which later requests of the batch see."""

    def __init__(self, ttl_s: float, view: GateView, now: float) -> None:
        self.ttl_s, self.view, self.now = ttl_s, view, now
        self.puts: dict[str, tuple[float, dict[str, Any]]] = {}
        self.hits = self.misses = 0

    def reuse(self, raw: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        """`decision`, or the earlier identical request's verdict in its place; `now` is monotonic."""
        if self.ttl_s <= 0 or "override" in raw:
            return decision
        key = orjson.dumps({k: v for k, v in raw.items() if k not in ("event_id", "ts")},
                           option=orjson.OPT_SORT_KEYS).decode()
        hit = self.puts.get(key) or self.view.cached(key)
        budget = decision["budget"] or {}
        if budget.get("status") == "blocked":
            return decision
        earlier_budget = (hit[1]["budget"] or {}) if hit is not None else {}
        same = all(earlier_budget.get(k) == budget.get(k) for k in ("status", "scope", "period_start", "downgraded")) \
            and hit is not None and hit[1]["trust"] == decision["trust"]
        if hit is not None and hit[0] > self.now and same:
            earlier = hit[1]
            self.hits += 1
            return {**decision, "verb": earlier["verb"], "trust": earlier["trust"], "budget": earlier["budget"],
                    "reasons": [*earlier["reasons"], {
                        "component": "budget", "code": "insight_cache",
                        "message": f"identical to request {earlier['request_id']}: its decision is reused"}]}
        self.puts[key] = (self.now + self.ttl_s, decision)
        self.misses += 1
        return decision
