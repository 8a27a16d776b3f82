"""The coordination agent's core, around the run (which the shell awaits): admit a request,
say whether it may run, then turn its report into effects.

- `admit_request`: decode (a bad request is a dead letter), drop a repeated event id;
- `refusal`: why a request is answered `failed` before any call — the model's circuit
  breaker open, the tenant's budget braked or blocked, its hourly cap reached;
- `plan_run`: the result, a `costs` event per call, the baselines kept for the cache, the
  tenant's coordination state (spend this hour, runs, γ, drift history) and the drift and
  ineffectiveness alerts, audited on the request's partition;
- `breaker_effects`: a `circuit_open` / `circuit_closed` alert for a model, audited.

>>> TenantState().charged(0.5, 3600.0 * 5 + 10).hour_usd
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from resontinex.agents import budget as bg
from resontinex.agents.effects import AuditItem, Effects, EffectsBuilder, Output, Record, TableWrite, audit_item
from resontinex.agents.events import alert_event
from resontinex.schemas import SYSTEM_TENANT, CoordinationRequest, InvalidEvent, decode_keyed, ms_to_ts

from ._breaker import ModelBreaker, Transition
from ._config import CoordinationConfig
from ._drift import RunHistory
from ._result import cost_events, result_event
from ._run import RunReport, RunRequest

__all__ = ["BASELINES_TABLE", "STATE_TABLE", "Admitted", "TenantState", "admit_request", "breaker_effects",
           "budget_status", "plan_run", "refusal", "refused_report", "run_request"]

BASELINES_TABLE = "coordination-baselines"
STATE_TABLE = "coordination-tenants"
HOUR_S = 3600.0
ANSWERED_KEPT = 1000


@dataclass(frozen=True, slots=True)
class Admitted:
    record: Record
    request: CoordinationRequest


@dataclass(frozen=True, slots=True)
class TenantState:
    """A tenant's coordination figures (`coordination-tenants` table): spend in the current
    clock hour (the hourly cap), runs, γ so far, and the drift history per strategy."""

    hour_start: float = 0.0
    hour_usd: float = 0.0
    runs: int = 0
    gamma_sum: float = 0.0
    gamma_runs: int = 0
    history: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    answered: tuple[str, ...] = ()
    """The last `ANSWERED_KEPT` request ids answered: a request redelivered after its result
    went out (a crash before its offset was committed) is not run, nor counted, again."""

    def spent_this_hour(self, now: float) -> float:
        return self.hour_usd if self.hour_start == now - now % HOUR_S else 0.0

    def charged(self, usd: float, now: float) -> TenantState:
        hour = now - now % HOUR_S
        return replace(self, hour_start=hour, hour_usd=self.spent_this_hour(now) + usd)

    def as_dict(self) -> dict[str, Any]:
        return {"hour_start": self.hour_start, "hour_usd": self.hour_usd, "runs": self.runs,
                "gamma_sum": self.gamma_sum, "gamma_runs": self.gamma_runs, "history": dict(self.history),
                "answered": list(self.answered)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> TenantState:
        if not d:
            return cls()
        return cls(**{**d, "answered": tuple(d.get("answered", ()))})


def admit_request(record: Record, *, seen: Callable[[int, str, str], bool], max_message_bytes: int,
                  now: float) -> tuple[Effects, Admitted | None]:
    """The request in `record`, or its dead letter; a request `seen(partition, tenant,
    event_id)` already is dropped (counted)."""
    out = EffectsBuilder()
    out.count("EVENTS", record.topic)
    try:
        _, _, request = decode_keyed(CoordinationRequest, record.key, record.value, max_bytes=max_message_bytes)
    except InvalidEvent as exc:
        out.reject(record, exc.code, exc.message, round(now * 1000))
        return out.effects(), None
    if seen(record.partition, request.tenant, request.event_id):
        out.count("DUPLICATES", record.topic)
        return out.effects(), None
    return out.effects(), Admitted(record, request)


def run_request(request: CoordinationRequest, cfg: CoordinationConfig) -> RunRequest:
    """What to run: the configured model unless the request names one."""
    return RunRequest(request.task, request.num_agents, request.strategy, request.model or cfg.model,
                      request.rounds, request.budget_usd)


def refusal(run: RunRequest, *, breaker_open: bool, budget_status: str | None, hour_left_usd: float,
            cfg: CoordinationConfig) -> tuple[str, str] | None:
    """(code, message) when the request must be answered `failed` without a call; None when it may run.

    >>> refusal(RunRequest("t", 2, "parallel", "claude-haiku-4-5"), breaker_open=False, budget_status="braked", hour_left_usd=5.0,
    ...         cfg=CoordinationConfig())[0]
    'budget_braked'
    """
    if run.model not in cfg.prices:
        return "unknown_model", f"no price for model {run.model!r} in coordination.yaml (known: " \
                                f"{', '.join(sorted(cfg.prices))}): its spend could not be governed"
    if breaker_open:
        return "circuit_open", f"the circuit breaker of model {run.model} is open: no call made"
    if budget_status in ("braked", "blocked"):
        return f"budget_{budget_status}", f"the tenant's budget is {budget_status}: agent teams are not run"
    if hour_left_usd <= 0:
        return "hourly_cap_reached", f"the tenant spent its hourly cap of {cfg.tenant_hourly_cap_usd:g} USD " \
                                     "on coordination runs this hour"
    return None


def refused_report(code: str, message: str) -> RunReport:
    """A run that made no call."""
    return RunReport("failed", ((code, message),), (), None, None, (), False, None, ())


def budget_status(energy: bg.EnergyConfig, tenant: str, workflow: str, *,
                  spent: Callable[[bg.Period, str, float], tuple[int, int]],
                  mark: Callable[[str], bg.Mark], now: float) -> str | None:
    """The budget's status for the tenant's workflow now (None without a budget), as the gate judges it."""
    scoped = energy.budget_for(tenant, workflow)
    if scoped is None:
        return None
    micros, tokens = spent(scoped.period, scoped.scope, now)
    start = bg.period_start(scoped.period, now)
    held = mark(bg.mark_key(scoped.scope, bg.iso(start)))
    return bg.assess(energy, scoped, spent_micros=micros, spent_tokens=tokens, estimate_usd=None,
                     estimate_tokens=None, complexity=None, entropy=None, low_trust=False,
                     braked=held.braked).status


def plan_run(admitted: Admitted, run: RunRequest, report: RunReport, state: TenantState, *,
             cfg: CoordinationConfig, baseline_key: str, policy_version: str, now: float) -> tuple[Effects, TenantState]:
    """Everything a finished (or refused) run leaves behind; the tenant's state after it."""
    record, request = admitted.record, admitted.request
    p, key = record.partition, record.key
    ts = request.ts or ms_to_ts(round(record.timestamp * 1000))
    out = EffectsBuilder()
    result = result_event(run, report, tenant=request.tenant, request_event_id=request.event_id, ts=ts)
    out.outputs.append(Output("coordination_results", p, key, orjson.dumps(result)))
    # spent now, whatever the request's own ts says: the budget charges the period of a cost's ts
    for cost in cost_events(report, tenant=request.tenant, workflow=request.workflow,
                            request_event_id=request.event_id, ts=ms_to_ts(round(now * 1000))):
        out.outputs.append(Output("costs", p, key, orjson.dumps(cost)))
    if request.event_id in state.answered:  # a repeat after a crash: its figures were counted
        return out.effects(), state
    out.count("COORDINATION_RUNS", run.strategy, report.status)
    if report.calls or report.status != "failed":
        out.count("COORDINATION_BASELINE_CACHE", "hit" if report.baseline_cached else "miss")
    if report.baseline_qualities and not report.baseline_cached:
        out.late.append(TableWrite(BASELINES_TABLE, baseline_key,
                                   {"qualities": list(report.baseline_qualities), "at": now}, p, now))
    state = replace(state.charged(report.cost_usd, now), runs=state.runs + 1,
                    answered=(*state.answered, request.event_id)[-ANSWERED_KEPT:])
    g = result["gamma"]
    if g is not None and report.coordinated_quality is not None:
        out.observe("COORDINATION_GAMMA", g)
        history, signals = RunHistory.from_dict(state.history.get(run.strategy), cfg.drift).observe(
            report.coordinated_quality, gamma=g)
        state = replace(state, gamma_sum=state.gamma_sum + g, gamma_runs=state.gamma_runs + 1,
                        history={**state.history, run.strategy: history.as_dict()})
        for signal in signals:
            alert = alert_event(id_source=f"{request.tenant}|{run.strategy}|{request.event_id}", kind=signal.kind,
                                tenant=request.tenant, severity="warning", message=f"{run.strategy}: {signal.message}",
                                details={"strategy": run.strategy, "model": run.model, **signal.details,
                                         "result_id": result["event_id"]},
                                source_event_id=request.event_id, ts=ts)
            _alert(out, alert, p, key, policy_version)
    out.late.append(TableWrite(STATE_TABLE, request.tenant, state.as_dict(), p, now))
    return out.effects(), state


def breaker_effects(model: str, transition: Transition, breaker: ModelBreaker, *, partition: int,
                    system_partition: int, policy_version: str, now: float) -> Effects:
    """The `circuit_open` / `circuit_closed` alert of `model`'s breaker (tenant `_system`),
    sent on `_system`'s partition and audited on `partition`'s chain."""
    ts = ms_to_ts(round(now * 1000))
    s = breaker.settings
    if transition == "open":
        message = (f"model {model}: {s.failures} calls failed in a row; no call goes out for {s.open_s:g} s, "
                   "then a trial call")
    else:
        message = f"model {model}: {s.successes} trial calls succeeded; calls go out again"
    alert = alert_event(id_source=f"coordination|{model}|{now}", kind=f"circuit_{transition}",
                        tenant=SYSTEM_TENANT, severity="critical" if transition == "open" else "info",
                        message=message, details={"component": "coordination", "model": model,
                                                  "failures": s.failures, "open_s": s.open_s,
                                                  "successes": s.successes},
                        source_event_id=None, ts=ts)
    out = EffectsBuilder()
    _alert(out, alert, system_partition, SYSTEM_TENANT.encode(), policy_version, audit_partition=partition)
    return out.effects()


def _alert(out: EffectsBuilder, alert: dict[str, Any], partition: int, key: bytes | None, policy_version: str,
           audit_partition: int | None = None) -> None:
    out.outputs.append(Output("alerts", partition, key, orjson.dumps(alert)))
    out.audit.append(AuditItem(partition if audit_partition is None else audit_partition,
                               audit_item("au-" + alert["event_id"].removeprefix("a-"), "alert", alert["tenant"],
                                          alert["ts"], policy_version, {"alert": alert})))
    out.count("ALERTS", alert["kind"])
