"""The coordination agent's core around the run: admission, refusals, the effects of a report."""

from __future__ import annotations

import orjson
import pytest

from resontinex.agents.budget import Mark, energy_config_from
from resontinex.agents.coordination import (BASELINES_TABLE, STATE_TABLE, Answer, ModelBreaker, RunReport, RunRequest,
                                            Spent, TenantState, admit_request, breaker_effects, budget_status,
                                            coordination_config_from, plan_run, refusal, refused_report, run_request)
from resontinex.agents.coordination._plan import Admitted
from resontinex.agents.events import derived_id
from resontinex.schemas import Alert, Cost, CoordinationRequest, CoordinationResult, decode

from tests.agents.gate.views import Rec

NOW = 1_700_000_000.0
CFG = coordination_config_from({})
TOPIC = "coordination-requests"


def record(offset: int = 0, **fields: object) -> Rec:
    body = {"event_id": f"cq-{offset}", "tenant": "acme", "task": "Name a prime.", "num_agents": 2,
            "strategy": "parallel"} | fields
    return Rec(TOPIC, 1, offset, b"acme", orjson.dumps(body), NOW)


def admitted(**fields: object) -> Admitted:
    _, a = admit_request(record(**fields), seen=lambda p, t, i: False, max_message_bytes=1 << 20, now=NOW)
    assert a is not None
    return a


def report(team: float | None = 0.84, alone: tuple[float, ...] = (0.6, 0.8), cached: bool = False,
           status: str = "ok") -> RunReport:
    calls = (Spent("agent-1", "claude-haiku-4-5", 100, 20, 0.0002, 5.0),
             Spent("agent-2", "claude-haiku-4-5", 100, 30, 0.00025, 6.0))
    return RunReport(status, (), (Answer(1, "two", 20), Answer(2, "three", 30)), "two", team,  # type: ignore[arg-type]
                     alone, cached, 0.9, calls)


def plan(rep: RunReport, state: TenantState = TenantState(), **fields: object):
    a = admitted(**fields)
    run = run_request(a.request, CFG)
    return plan_run(a, run, rep, state, cfg=CFG, baseline_key="k", policy_version="v1", now=NOW)


def outputs(effects, topic: str) -> list[dict]:
    return [orjson.loads(o.value) for o in effects.outputs if o.topic == topic]


def test_a_bad_request_is_a_dead_letter_and_a_repeat_is_dropped() -> None:
    effects, a = admit_request(record(num_agents=1), seen=lambda p, t, i: False, max_message_bytes=1 << 20, now=NOW)
    assert a is None and [o.topic for o in effects.outputs] == ["dead_letters"]
    effects, a = admit_request(record(), seen=lambda p, t, i: (p, t, i) == (1, "acme", "cq-0"),
                               max_message_bytes=1 << 20, now=NOW)
    assert a is None and not effects.outputs and ("DUPLICATES", (TOPIC,)) in [(c.metric, c.labels) for c in effects.counts]


def test_the_run_takes_the_request_budget_and_the_configured_model_unless_named() -> None:
    req = decode(CoordinationRequest, record(budget_usd=2.0).value)
    assert (run_request(req, CFG).budget_usd, run_request(req, CFG).model) == (2.0, CFG.model)
    named = decode(CoordinationRequest, record(model="claude-opus-4-1").value)
    assert (run_request(named, CFG).budget_usd, run_request(named, CFG).model) == (None, "claude-opus-4-1")


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"breaker_open": True}, "circuit_open"),
    ({"budget_status": "braked"}, "budget_braked"),
    ({"budget_status": "blocked"}, "budget_blocked"),
    ({"hour_left_usd": 0.0}, "hourly_cap_reached"),
    ({"budget_status": "review"}, None),
    ({}, None),
])
def test_refusals_before_any_call(kwargs: dict, code: str | None) -> None:
    args = {"breaker_open": False, "budget_status": None, "hour_left_usd": 5.0} | kwargs
    got = refusal(RunRequest("t", 2, "parallel", CFG.model), cfg=CFG, **args)
    assert (got[0] if got else None) == code


def test_a_model_without_a_price_is_refused() -> None:
    got = refusal(RunRequest("t", 2, "parallel", "unpriced"), breaker_open=False, budget_status=None,
                  hour_left_usd=5.0, cfg=CFG)
    assert got is not None and got[0] == "unknown_model"


def test_budget_status_as_the_gate_judges_it() -> None:
    energy = energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 10.0}]})
    spent = {"acme": (9_900_000, 0)}  # $9.90 of $10: past the emergency threshold

    def status(mark: Mark = Mark(), tenant: str = "acme") -> str | None:
        return budget_status(energy, tenant, "default", spent=lambda period, scope, at: spent.get(scope, (0, 0)),
                             mark=lambda key: mark, now=NOW)

    assert status() in ("braked", "blocked")
    assert status(tenant="globex") is None  # no budget for it
    spent["acme"] = (1_000_000, 0)
    assert status() == "ok"
    assert status(Mark(2, None)) == "braked"  # a brake engaged this period holds


def test_a_measured_run_gives_result_costs_baselines_and_state() -> None:
    effects, state = plan(report())
    [result] = outputs(effects, "coordination_results")
    CoordinationResult.model_validate(result)
    assert (result["gamma"], round(result["omega"], 12), result["effective"], result["emergence"]) == (1.2, 0.04, True, True)
    costs = outputs(effects, "costs")
    for c in costs:
        Cost.model_validate(c)
    assert [c["event_id"] for c in costs] == [derived_id("cc-", "acme", "cq-0", i) for i in ("agent-1", "agent-2")]
    assert sum(c["cost_usd"] for c in costs) == pytest.approx(result["cost_usd"])
    writes = {w.table: w for w in effects.late_writes}
    assert writes[BASELINES_TABLE].value["qualities"] == [0.6, 0.8] and writes[BASELINES_TABLE].key == "k"
    assert writes[STATE_TABLE].key == "acme" and state.runs == 1 and state.gamma_runs == 1
    assert state.spent_this_hour(NOW) == pytest.approx(0.00045)
    assert all(o.partition == 1 and o.key == b"acme" for o in effects.outputs)


def test_costs_carry_the_time_they_were_spent_not_the_request_ts() -> None:
    effects, _ = plan(report(), ts="2020-01-01T00:00:00.000Z")  # a past period would dodge today's brake
    [result] = outputs(effects, "coordination_results")
    assert result["ts"] == "2020-01-01T00:00:00.000Z"
    assert {c["ts"] for c in outputs(effects, "costs")} == {"2023-11-14T22:13:20.000Z"}  # NOW


def test_a_request_answered_before_a_crash_is_not_counted_again() -> None:
    effects, state = plan(report())
    again, after = plan(report(), state)
    assert after == state and not again.late_writes and not again.audit
    assert len(outputs(again, "coordination_results")) == 1  # the same result id again: consumers drop it
    assert outputs(again, "costs") == outputs(effects, "costs")  # the same ids: the budget counts them once


def test_cached_baselines_are_not_written_again_and_count_as_hits() -> None:
    effects, _ = plan(report(cached=True))
    assert BASELINES_TABLE not in {w.table for w in effects.late_writes}
    assert ("COORDINATION_BASELINE_CACHE", ("hit",)) in [(c.metric, c.labels) for c in effects.counts]


def test_a_refused_request_is_answered_failed_with_no_cost() -> None:
    effects, state = plan(refused_report("budget_braked", "the tenant's budget is braked"))
    [result] = outputs(effects, "coordination_results")
    assert result["status"] == "failed" and result["errors"][0]["code"] == "budget_braked"
    assert result["cost_usd"] == 0 and result["gamma"] is None and not outputs(effects, "costs")
    assert state.gamma_runs == 0


def test_drift_is_alerted_once_and_audited_on_the_request_partition() -> None:
    state, raised = TenantState(), []
    for i, q in enumerate([0.9] * 10 + [0.5] * 10):
        effects, state = plan(report(team=q, alone=(0.5, 0.5)), state, event_id=f"cq-{i}")
        raised += outputs(effects, "alerts")
        assert [a.partition for a in effects.audit] == [1] * len(outputs(effects, "alerts"))
    assert [a["kind"] for a in raised] == ["coordination_drift"]
    Alert.model_validate(raised[0])
    assert raised[0]["details"]["strategy"] == "parallel"


def test_gamma_under_one_over_the_window_is_ineffective() -> None:
    state, kinds = TenantState(), []
    for i in range(CFG.drift.gamma_window):
        effects, state = plan(report(team=0.5, alone=(0.8, 0.8)), state, event_id=f"cq-{i}")
        kinds += [a["kind"] for a in outputs(effects, "alerts")]
    assert kinds == ["coordination_ineffective"]


def test_the_hourly_spend_starts_again_each_clock_hour() -> None:
    state = TenantState().charged(4.0, NOW)
    assert state.spent_this_hour(NOW) == 4.0 and state.spent_this_hour(NOW + 3600) == 0.0
    assert TenantState.from_dict(state.as_dict()) == state


def test_breaker_transitions_are_system_alerts_audited() -> None:
    breaker = ModelBreaker()
    for t in range(5):
        breaker, transition = breaker.failed(float(t))
    assert transition == "open"
    effects = breaker_effects("claude-haiku-4-5", "open", breaker, partition=2, system_partition=3,
                              policy_version="v1", now=NOW)
    [alert] = outputs(effects, "alerts")
    Alert.model_validate(alert)
    assert (alert["kind"], alert["tenant"], alert["severity"]) == ("circuit_open", "_system", "critical")
    assert [o.partition for o in effects.outputs] == [3] and [a.partition for a in effects.audit] == [2]
