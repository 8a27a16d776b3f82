"""The budget part of a decision, and the insight cache, for the gate agent.

`BudgetJudge` reads the spend so far from the budget tables (same worker, same
partition: tenant-keyed topics are co-partitioned) and the per-period marks from the
partition state, and says what the budget makes of one request. `InsightCache` lets an
identical request inside a short TTL reuse the earlier decision.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

import orjson

from agents import budget as bg
from agents.budget.agent import BudgetTables
from app import metrics
from app.faust_compat import event_context
from app.partition_state import PartitionState
from app.recent import RecentMap
from schemas import DecisionRequest

from ._decide import alert_event, most_restrictive

_STATUS_BY_RANK = {rank: name for name, rank in bg.STATUS_RANK.items()}
LAG_LIMIT = 1000
"""Cost records not yet folded beyond which the spend so far is too stale to execute on."""


class Judged(NamedTuple):
    budget: dict[str, Any]
    verb: str
    reasons: list[dict[str, str]]
    alert: dict[str, Any] | None  # the first time this period the budget reaches this status
    change: dict[str, Any] | None  # its audit body


class BudgetJudge:
    """One per batch, judging at the batch's wall-clock time: a decision is about spend so
    far, now (a request's own `ts` could otherwise pick an empty future window). Table
    reads are memoised for the batch: it runs with no `await`, so the budget agent cannot
    change them meanwhile.

    A budget's mark (highest level, over since) comes from the partition state (recovered
    from the audit tail), else from the `budget-marks` table the gate writes after each
    batch's audit (`touched`), for marks older than the tail.
    """

    def __init__(self, energy: bg.EnergyConfig, tables: BudgetTables, states: dict[int, PartitionState],
                 marks: Any, now: float) -> None:
        self.energy, self.tables, self.states, self.marks, self.now = energy, tables, states, marks, now
        self.touched: dict[str, tuple[bg.Mark, Any]] = {}
        self._spent: dict[tuple[str, str], tuple[int, int]] = {}
        self._downgraded: dict[str, bool] = {}
        self._lags: dict[int, int | None] = {}
        self.lagging = 0
        """Decisions judged on spend that lags (a failed state read, for the circuit breaker)."""

    def __call__(self, tenant: str, request: DecisionRequest, event: Any, ts: str, low_trust: bool,
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
            self._spent[(scoped.period, scoped.scope)] = self.tables.spent(scoped.period, scoped.scope, at)
        micros, tokens = self._spent[(scoped.period, scoped.scope)]
        key = bg.mark_key(scoped.scope, bg.iso(start))
        mark = self._mark(event.message.partition, key)
        est = request.estimate
        a = bg.assess(cfg, scoped, spent_micros=micros, spent_tokens=tokens,
                      estimate_usd=est and est.cost_usd, estimate_tokens=est and est.tokens,
                      complexity=est and est.complexity, entropy=est and est.entropy,
                      low_trust=low_trust, braked=mark.braked)
        lag = self._lag(event.message.partition)
        if lag is not None and lag > LAG_LIMIT and a.status == "ok":
            a = dataclasses.replace(a, status="review")  # fail safe: the spend so far is understated
        after = mark.after(a.level, at)
        retry = None
        if a.status == "blocked":
            over_for = at - (after.blocked_since or at)
            retry = bg.retry_after_s(over_for, cfg.recovery.retry_base_s, cfg.recovery.retry_max_s, end - at)
        if tenant not in self._downgraded:
            self._downgraded[tenant] = self.tables.downgraded(tenant)
        downgraded = self._downgraded[tenant]
        budget = bg.budget_summary(a, scoped, start, end, downgraded=downgraded, mode=cfg.tripwire.downgrade_mode,
                                   retry_after=retry, blocked_since=after.blocked_since)
        reasons = bg.budget_reasons(a, scoped, cfg, downgraded=downgraded, retry_after=retry)
        verb = a.verb
        if downgraded:
            held = bg.downgrade_reasons(cfg.downgrade, estimate_tokens=est and est.tokens,
                                        estimate_usd=est and est.cost_usd, score=score)
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
        self.states[event.message.partition].marks.put(key, after)
        self.touched[key] = (after, event)
        metrics.BUDGET_DECISIONS.labels(budget["status"]).inc()
        return Judged(budget, verb, reasons, alert, change)

    def _lag(self, partition: int) -> int | None:
        if partition not in self._lags:
            self._lags[partition] = self.tables.lag(partition)
        return self._lags[partition]

    def _mark(self, partition: int, key: str) -> bg.Mark:
        mark = self.states[partition].marks.get(key)
        if mark is None:
            stored = self.marks.get(key)
            mark = bg.Mark(stored["level"], stored["blocked_since"]) if stored else bg.Mark()
        return mark

    def save(self) -> None:
        """Write this batch's marks; call once its audit records are acknowledged."""
        for key, (mark, event) in self.touched.items():
            with event_context(event):
                self.marks[key] = mark.as_dict()


class InsightCache:
    """Identical requests (same tenant, workflow, signals, estimate and the rest, apart from
    `event_id` and `ts`) inside `ttl_s` get the earlier decision's verdict, as long as the
    budget status (and its period) and the tripwire downgrade have not changed since. Break-glass requests and
    over-budget defers (whose `retry_after_s` backs off) are never answered from it. Kept
    in memory per worker."""

    def __init__(self, ttl_s: float, capacity: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._entries: RecentMap[tuple[float, dict[str, Any]]] = RecentMap(capacity)

    def reuse(self, raw: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        if self.ttl_s <= 0 or "override" in raw:
            return decision
        key = orjson.dumps({k: v for k, v in raw.items() if k not in ("event_id", "ts")},
                           option=orjson.OPT_SORT_KEYS).decode()
        now = time.monotonic()
        hit = self._entries.get(key)
        budget = decision["budget"] or {}
        if budget.get("status") == "blocked":
            return decision
        earlier_budget = (hit[1]["budget"] or {}) if hit is not None else {}
        same = all(earlier_budget.get(k) == budget.get(k) for k in ("status", "scope", "period_start", "downgraded"))
        if hit is not None and hit[0] > now and same:
            earlier = hit[1]
            metrics.INSIGHT_CACHE.labels("hit").inc()
            return {**decision, "verb": earlier["verb"], "trust": earlier["trust"], "budget": earlier["budget"],
                    "reasons": [*earlier["reasons"], {
                        "component": "budget", "code": "insight_cache",
                        "message": f"identical to request {earlier['request_id']}: its decision is reused"}]}
        self._entries.put(key, (now + self.ttl_s, decision))
        metrics.INSIGHT_CACHE.labels("miss").inc()
        return decision
