from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.budget import STATUS_RANK, TRANSITION_ALERTS, Mark, budget_reasons, budget_summary, transition_alert

from ._support import config, judge

DAY = 1_700_006_400.0  # 2023-11-15T00:00:00Z
CFG = config(100.0)
SCOPED = CFG.budget_for("acme", "default")
assert SCOPED is not None


@pytest.mark.parametrize(("mark", "level", "after"), [
    (Mark(), "ok", Mark(0)), (Mark(), "review", Mark(1)), (Mark(1), "blocked", Mark(3, 50.0)),
    (Mark(3, 10.0), "blocked", Mark(3, 10.0)), (Mark(3, 10.0), "ok", Mark(3)), (Mark(3, 10.0), "braked", Mark(3)),
    (Mark(2), "review", Mark(2)), (Mark(0, 4.0), "downgraded", Mark(0)),
])
def test_mark_after_keeps_the_highest_level_and_since_when_over_budget(mark: Mark, level: str, after: Mark) -> None:
    assert mark.after(level, 50.0) == after


@pytest.mark.parametrize(("level", "braked"), [(0, False), (1, False), (2, True), (3, True)])
def test_mark_braked_from_braked_on(level: int, braked: bool) -> None:
    assert Mark(level).braked is braked


@pytest.mark.parametrize(("level", "status", "alert"), [
    (0, "ok", None), (0, "review", ("budget_warning", "warning")), (1, "review", None),
    (1, "braked", ("emergency_brake", "critical")), (0, "blocked", ("budget_blocked", "critical")),
    (2, "blocked", ("budget_blocked", "critical")), (3, "braked", None), (3, "blocked", None), (2, "review", None),
])
def test_transition_alert_only_on_a_new_higher_status(level: int, status: str, alert: tuple[str, str] | None) -> None:
    assert transition_alert(Mark(level), status) == alert


def fold(statuses: list[str]) -> list[tuple[str, str]]:
    mark, alerts = Mark(), []
    for status in statuses:
        alert = transition_alert(mark, status)
        alerts += [alert] if alert else []
        mark = mark.after(status, 0.0)
    return alerts


def test_one_emergency_brake_per_period_however_many_braked_decisions() -> None:
    assert fold(["ok", "braked", "braked", "review", "braked"]) == [("emergency_brake", "critical")]
    assert fold(["review", "review", "blocked", "braked", "blocked"]) == [TRANSITION_ALERTS["review"],
                                                                          TRANSITION_ALERTS["blocked"]]


@given(st.lists(st.sampled_from(list(STATUS_RANK)), max_size=30))
def test_one_alert_per_status_first_reached_in_increasing_rank(statuses: list[str]) -> None:
    records, best = [], 0
    for status in statuses:
        if STATUS_RANK[status] > best:
            records.append(TRANSITION_ALERTS[status])
            best = STATUS_RANK[status]
    assert fold(statuses) == records
    assert len(set(records)) == len(records) <= 3


def test_budget_summary_fields() -> None:
    a = judge(CFG, spent_usd=80.0, estimate_usd=5.0, complexity=0.9, low_trust=True)
    assert budget_summary(a, SCOPED, DAY, DAY + 86_400, downgraded=False, mode="economy", retry_after=None) == {
        "status": "review", "utilization": 0.8975, "remaining_usd": 20.0, "effective_cost_usd": 9.75,
        "multiplier": 1.95, "multipliers": ["high_complexity", "low_trust"], "scope": "acme", "period": "day",
        "period_start": "2023-11-15T00:00:00Z", "period_end": "2023-11-16T00:00:00Z", "limit_usd": 100.0,
        "downgraded": False, "mode": None, "retry_after_s": None, "blocked_since": None,
    }


@pytest.mark.parametrize(("spent", "downgraded", "status", "mode"), [
    (0.0, False, "ok", None), (0.0, True, "downgraded", "economy"), (90.0, True, "review", "economy"),
    (96.0, True, "braked", "economy"), (101.0, True, "blocked", "economy"), (101.0, False, "blocked", None),
])
def test_summary_says_downgraded_only_when_otherwise_ok(spent: float, downgraded: bool, status: str,
                                                        mode: str | None) -> None:
    summary = budget_summary(judge(CFG, spent_usd=spent), SCOPED, DAY, DAY + 86_400, downgraded=downgraded,
                             mode="economy", retry_after=None)
    assert (summary["status"], summary["downgraded"], summary["mode"]) == (status, downgraded, mode)


@pytest.mark.parametrize(("spent", "tokens", "downgraded", "retry", "codes"), [
    (0.0, None, False, None, []),
    (90.0, None, False, None, ["budget_review"]),
    (96.0, None, False, None, ["emergency_brake"]),
    (101.0, None, False, 60.0, ["budget_exceeded"]),
    (0.0, 10_001, False, None, ["approval_required"]),
    (96.0, 10_001, False, None, ["emergency_brake", "approval_required"]),
    (0.0, None, True, None, ["tripwire_downgraded"]),
    (101.0, 10_001, True, 30.0, ["budget_exceeded", "approval_required", "tripwire_downgraded"]),
])
def test_budget_reason_codes(spent: float, tokens: int | None, downgraded: bool, retry: float | None,
                             codes: list[str]) -> None:
    reasons = budget_reasons(judge(CFG, spent_usd=spent, estimate_tokens=tokens), SCOPED, CFG,
                             downgraded=downgraded, retry_after=retry)
    assert [r["code"] for r in reasons] == codes
    assert all(r["component"] == "budget" and r["message"] for r in reasons)


@pytest.mark.parametrize(("kwargs", "downgraded", "message"), [
    ({"spent_usd": 100.5}, False,
     "utilization 1.0050 of the acme day budget of $100 is over 100%; retry after 60 s"),
    ({"spent_usd": 80.0, "estimate_usd": 5.0, "complexity": 0.9, "low_trust": True}, False,
     "utilization 0.8975 of the acme day budget of $100 ≥ 85% "
     "(effective cost $9.75 = estimate × 1.95: high_complexity, low_trust)"),
    ({"spent_usd": 97.0}, False, "utilization 0.9700 of the acme day budget of $100: emergency brake (engaged at 95%, held for the rest of the period)"),
    ({}, True, "token use grew past the tripwire 3 windows in a row: run in economy mode"),
])
def test_budget_reason_messages(kwargs: dict[str, Any], downgraded: bool, message: str) -> None:
    reasons = budget_reasons(judge(CFG, **kwargs), SCOPED, CFG, downgraded=downgraded, retry_after=60.0)
    assert [r["message"] for r in reasons] == [message]


def test_review_by_utilization_is_reported_alongside_approval() -> None:
    reasons = budget_reasons(judge(CFG, spent_usd=90.0, estimate_tokens=10_001), SCOPED, CFG,
                             downgraded=False, retry_after=None)
    assert [r["code"] for r in reasons] == ["budget_review", "approval_required"]
