"""One coordination run over a scripted model: strategies, judge retries, budget, baselines, events."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from resontinex.agents.coordination import (Call, CallFailed, Reply, RunReport, RunRequest, SharedCap,
                                            coordination_config_from,
                                            cost_events, result_event, run_coordination)
from resontinex.schemas import Cost, CoordinationResult

CFG = coordination_config_from({})
CRITERIA = CFG.judge.criteria


def scores(q: float) -> dict[str, Any]:
    return {"scores": {c: q for c in CRITERIA}, "reason": "judged"}


@dataclass
class Scripted:
    """A `Model` stand-in: each call answers "<call id> answer"; the judge gives `team` to the
    team's answer and `alone[i]` to baseline i; `broken` call ids fail, `garbled` judge calls
    reply without a parseable judgement."""

    team: float = 0.84
    alone: Sequence[float] = (0.6, 0.8)
    broken: dict[str, str] = field(default_factory=dict)
    garbled: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    running: int = 0
    most_at_once: int = 0

    async def __call__(self, call: Call) -> Reply:
        self.calls.append(call)
        if call.call_id in self.broken:  # at once, while the calls beside it still run
            raise CallFailed(self.broken[call.call_id], "scripted failure")
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        if call.tool is None:
            return Reply(f"{call.call_id} answer", 100, 20, latency_ms=5.0)
        if call.call_id in self.garbled:
            return Reply("I think it is fine", 80, 10, tool_input={"verdict": "fine"})
        answer = call.messages[0]["content"].rsplit("Answer to judge:\n", 1)[1]
        q = self.alone[int(answer.split("-")[1].split()[0]) - 1] if answer.startswith("baseline-") else self.team
        return Reply("", 80, 10, tool_input=scores(q))


async def embed(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([[1.0, float(i)] for i in range(len(texts))])


def run(model: Scripted, strategy: str = "parallel", agents: int = 2, cached: Sequence[float] | None = None,
        **request: Any) -> RunReport:
    req = RunRequest("Explain TCP slow start.", agents, strategy, CFG.model, **request)  # type: ignore[arg-type]
    return asyncio.run(run_coordination(req, model, embed, criteria=CRITERIA, max_tokens=256, judge_max_tokens=128,
                                        price=CFG.cost_usd, cached_baselines=cached))


def ids(model: Scripted) -> list[str]:
    return [c.call_id for c in model.calls]


def test_sequential_agents_see_the_answers_before_them() -> None:
    model = Scripted(alone=(0.6, 0.8, 0.7))
    report = run(model, "sequential", agents=3)
    assert ids(model)[:4] == ["agent-1", "agent-2", "agent-3", "judge-team-1"]
    assert "agent-1 answer" in model.calls[1].messages[0]["content"]
    assert "agent-2 answer" in model.calls[2].messages[0]["content"] and model.calls[0].messages[0]["content"] \
        .startswith("Task:")
    assert report.final == "agent-3 answer" and report.status == "ok" and report.baseline_qualities == (0.6, 0.8, 0.7)


def test_parallel_answers_at_once_then_a_synthesis() -> None:
    model = Scripted()
    report = run(model, "parallel", agents=2)
    assert ids(model)[:4] == ["agent-1", "agent-2", "synthesis", "judge-team-1"]
    assert report.final == "synthesis answer" and [a.text for a in report.answers] == ["agent-1 answer",
                                                                                        "agent-2 answer"]
    assert model.most_at_once == 2


def test_debate_runs_its_rounds_each_agent_seeing_the_others() -> None:
    model = Scripted(alone=(0.5, 0.5, 0.5))
    report = run(model, "debate", agents=3, rounds=2)
    assert ids(model)[:10] == ["agent-1", "agent-2", "agent-3", "agent-1-r1", "agent-2-r1", "agent-3-r1",
                               "agent-1-r2", "agent-2-r2", "agent-3-r2", "synthesis"]
    r2 = model.calls[6].messages[0]["content"]
    assert "agent-1-r1 answer" in r2 and "agent-2-r1 answer" in r2 and "Round 2" in r2
    assert [a.text for a in report.answers] == ["agent-1-r2 answer", "agent-2-r2 answer", "agent-3-r2 answer"]


def test_gamma_and_omega_on_fixed_judge_scores_the_contract_example() -> None:
    report = run(Scripted(team=0.84, alone=(0.6, 0.8)))
    event = result_event(RunRequest("t", 2, "parallel", CFG.model), report, tenant="acme", request_event_id="c-1",
                         ts="2026-01-01T00:00:00Z")
    assert event["gamma"] == pytest.approx(1.2) and event["omega"] == pytest.approx(0.04)
    assert event["effective"] and event["emergence"] and event["status"] == "ok" and not event["baseline_cached"]
    assert event["consensus_rate"] == pytest.approx(report.consensus_rate)
    CoordinationResult.model_validate(event)


def test_a_judge_reply_that_does_not_parse_is_asked_again_once() -> None:
    model = Scripted(garbled={"judge-team-1"})
    assert run(model).status == "ok" and "judge-team-2" in ids(model)
    model = Scripted(garbled={"judge-team-1", "judge-team-2"})
    report = run(model)
    assert report.status == "partial" and report.errors[0][0] == "judge_unparseable"
    assert report.coordinated_quality is None and report.final == "synthesis answer"
    event = result_event(RunRequest("t", 2, "parallel", CFG.model), report, tenant="acme", request_event_id="c-1",
                         ts="2026-01-01T00:00:00Z")
    assert event["gamma"] is None and event["effective"] is None  # never a made-up score
    CoordinationResult.model_validate(event)


def test_a_failed_team_call_fails_the_run_and_a_failed_baseline_makes_it_partial() -> None:
    report = run(Scripted(broken={"agent-2": "rate_limited"}))
    assert report.status == "failed" and report.errors == (("rate_limited", "scripted failure"),)
    assert [c.call_id for c in report.calls] == ["agent-1"]  # the call that answered is still counted
    report = run(Scripted(broken={"baseline-1": "api_error"}))
    assert report.status == "partial" and report.baseline_qualities == () and report.coordinated_quality == 0.84


def worst_case(call: Call) -> float:
    """A call's cost with its prompt at 3 characters a token and all of `max_tokens` out."""
    chars = len(call.system) + sum(len(m["content"]) for m in call.messages)
    return CFG.cost_usd(call.model, math.ceil(chars / 3), call.max_tokens)


def test_a_call_is_made_only_while_its_worst_case_fits_in_what_the_budget_has_left() -> None:
    unlimited = Scripted(alone=(0.5, 0.5, 0.5))
    run(unlimited, "sequential", agents=3)
    first, second, third = unlimited.calls[:3]
    spent_one = CFG.cost_usd(CFG.model, 100, 20)  # what a scripted call costs
    budget = spent_one + worst_case(second) + 1e-9  # the second call fits, the third cannot
    assert 2 * spent_one + worst_case(third) > budget
    model = Scripted()
    report = run(model, "sequential", agents=3, budget_usd=budget)
    assert ids(model) == ["agent-1", "agent-2"] and report.cost_usd <= budget
    assert report.status == "partial" and report.errors[0][0] == "budget_exhausted" and report.final is None
    assert [a.agent for a in report.answers] == [1, 2]


def test_parallel_calls_together_never_overshoot_the_budget() -> None:
    probe = Scripted(alone=(0.5,) * 5)
    run(probe, "parallel", agents=5)
    budget = 2.5 * worst_case(probe.calls[0])  # room for two opening answers in flight, not five
    model = Scripted()
    report = run(model, "parallel", agents=5, budget_usd=budget)
    assert len(model.calls) == 2 and report.cost_usd <= budget
    assert report.status == "failed" and report.errors[0][0] == "budget_exhausted"
    assert [c.call_id for c in report.calls] == ["agent-1", "agent-2"]  # made, so charged


def test_every_call_made_is_counted_when_a_baseline_judge_fails() -> None:
    model = Scripted(alone=(0.5, 0.5, 0.5), broken={"judge-baseline-1-1": "api_error"})
    report = run(model, "parallel", agents=3)
    assert report.status == "partial" and len(report.calls) == len(model.calls) - 1  # all but the failed one


def test_an_embedding_failure_keeps_the_run_partial_with_its_answers() -> None:
    async def broken(texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("model not loaded")

    req = RunRequest("t", 2, "parallel", CFG.model)
    report = asyncio.run(run_coordination(req, Scripted(), broken, criteria=CRITERIA, max_tokens=256,
                                          judge_max_tokens=128, price=CFG.cost_usd))
    assert report.status == "partial" and report.errors == (("embedding_failed", "RuntimeError: model not loaded"),)
    assert report.coordinated_quality == 0.84 and report.consensus_rate is None


def test_cached_baselines_make_no_baseline_calls() -> None:
    model = Scripted()
    report = run(model, cached=(0.6, 0.8))
    assert not any(i.startswith(("baseline", "judge-baseline")) for i in ids(model))
    assert report.baseline_cached and report.baseline_qualities == (0.6, 0.8)


def test_cost_events_sum_to_the_run_cost_with_ids_unique_and_repeatable() -> None:
    report = run(Scripted(), "debate", agents=2, rounds=1)
    events = cost_events(report, tenant="acme", workflow="default", request_event_id="c-1", ts="2026-01-01T00:00:00Z")
    assert len(events) == len(report.calls) == len({e["event_id"] for e in events})
    assert sum(e["cost_usd"] for e in events) == pytest.approx(report.cost_usd)
    assert {e["provider"] for e in events} == {"anthropic"}
    for e in events:
        Cost.model_validate(e)
    again = cost_events(run(Scripted(), "debate", agents=2, rounds=1), tenant="acme", workflow="default",
                        request_event_id="c-1", ts="2026-01-01T00:00:00Z")
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]


def test_runs_sharing_a_cap_together_never_pass_it() -> None:
    cap = SharedCap(0.004)  # a few calls' worth: the runs stop before it, whatever their order

    async def both() -> list[RunReport]:
        reqs = [RunRequest(f"Task {i}.", 3, "parallel", CFG.model) for i in range(2)]
        return list(await asyncio.gather(*(run_coordination(r, Scripted(alone=(0.6, 0.8, 0.7)), embed,
                                                            criteria=CRITERIA, max_tokens=256, judge_max_tokens=128,
                                                            price=CFG.cost_usd, shared_cap=cap) for r in reqs)))

    reports = asyncio.run(both())
    assert sum(r.cost_usd for r in reports) <= 0.004
    assert cap.spent == pytest.approx(sum(r.cost_usd for r in reports)) and cap.reserved == pytest.approx(0.0)
    assert any(code == "hourly_cap_reached" for r in reports for code, _ in r.errors)


def test_without_an_embedding_model_the_run_is_ok_and_says_consensus_is_unavailable() -> None:
    req = RunRequest("Explain TCP slow start.", 2, "parallel", CFG.model)
    report = asyncio.run(run_coordination(req, Scripted(), None, criteria=CRITERIA, max_tokens=256,
                                          judge_max_tokens=128, price=CFG.cost_usd))
    assert report.status == "ok" and report.consensus_rate is None
    assert [code for code, _ in report.errors] == ["consensus_unavailable"]
