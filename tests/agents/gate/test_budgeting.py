"""The budget part of a decision (`BudgetJudge`) and the insight cache, over a dict-backed view."""

from __future__ import annotations

import orjson
import pytest

from resontinex.agents import budget as bg
from resontinex.agents.gate._budgeting import LAG_LIMIT, BudgetJudge, InsightCache
from resontinex.schemas import DecisionRequest, decode_json

from .views import DictView

CFG = bg.energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100}]})
NOW = 1_767_261_600.0  # 2026-01-01T10:00:00Z
DAY = "2026-01-01T00:00:00Z"
TS = "2026-01-01T10:00:00.000Z"
MARK = f"acme|{DAY}"


def spending(micros: int = 0, lagging: int | None = 0, down: bool = False) -> DictView:
    """A view where acme spent `micros` today, the budget agent is `lagging` records behind."""
    return DictView(spend={("day", "acme"): (micros, 0)}, lags={0: lagging}, down={"acme"} if down else set())


def request(estimate: float | None = None, event_id: str = "r-1") -> tuple[dict, DecisionRequest]:
    raw = {"event_id": event_id, "tenant": "acme",
           "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
    if estimate is not None:
        raw["estimate"] = {"cost_usd": estimate}
    return decode_json(DecisionRequest, orjson.dumps(raw))


def judge(view: DictView, now: float = NOW) -> BudgetJudge:
    return BudgetJudge(CFG, view, now)


def test_a_tenant_without_a_budget_gets_none() -> None:
    _, req = request(1.0)
    other = req.model_copy(update={"tenant": "zeta"})
    j = judge(spending())
    assert j("zeta", other, 0, TS, False, 0.9) is None
    assert not j.touched and not j.statuses


def test_one_alert_per_level_per_period_and_the_brake_holds() -> None:
    j = judge(spending(90_000_000))
    first = j("acme", request(6.0)[1], 0, TS, False, 0.9)  # 96 %: braked
    assert (first.verb, first.alert["kind"]) == ("abort", "emergency_brake")
    assert first.change["budget"] == {**first.change["budget"], "from": "ok", "to": "braked", "period_start": DAY}
    again = j("acme", request(1.0, "r-2")[1], 0, TS, False, 0.9)  # 91 % alone, but the brake holds
    assert (again.verb, again.alert) == ("abort", None)
    assert j.touched == {(0, MARK): bg.Mark(2, None)}
    assert j.statuses == {"braked": 2}


def test_a_mark_kept_from_an_earlier_batch_holds_the_brake_without_a_new_alert() -> None:
    view = spending(10_000_000)
    view.marks[(0, MARK)] = bg.Mark(2, None)
    j = judge(view)
    judged = j("acme", request(1.0)[1], 0, TS, False, 0.9)
    assert judged.verb == "abort" and judged.alert is None
    assert j.touched == {(0, MARK): bg.Mark(2, None)}  # what the plan writes back to `budget-marks`


def test_marks_are_per_partition() -> None:
    view = spending(10_000_000)
    view.marks[(1, MARK)] = bg.Mark(2, None)  # another partition's mark says nothing about partition 0
    j = judge(view)
    assert j("acme", request(1.0)[1], 0, TS, False, 0.9).verb == "execute"
    assert j.touched == {(0, MARK): bg.Mark(0, None)}


def test_an_exhausted_budget_defers_with_a_backoff_from_when_it_was_first_exhausted() -> None:
    view = spending(101_000_000)
    j = judge(view)
    first = j("acme", request()[1], 0, TS, False, 0.9)
    assert (first.verb, first.budget["retry_after_s"], first.alert["kind"]) == ("defer", 30.0, "budget_blocked")
    view.marks.update(j.touched)  # what the shell keeps after the batch
    later = judge(view, now=NOW + 30)("acme", request(None, "r-2")[1], 0, TS, False, 0.9)
    assert (later.budget["retry_after_s"], later.budget["blocked_since"], later.alert) == (60.0, "2026-01-01T10:00:00Z", None)


def test_the_view_is_read_once_per_scope_and_partition_in_a_batch() -> None:
    reads: list[str] = []

    class Counting(DictView):
        def spent(self, period, scope, at):
            reads.append("spent")
            return super().spent(period, scope, at)

        def budget_lag(self, partition):
            reads.append("lag")
            return super().budget_lag(partition)

        def downgraded(self, tenant):
            reads.append("downgraded")
            return super().downgraded(tenant)

    j = judge(Counting(spend={("day", "acme"): (1_000_000, 0)}))
    for i in range(3):
        j("acme", request(1.0, f"r-{i}")[1], 0, TS, False, 0.9)
    assert sorted(reads) == ["downgraded", "lag", "spent"]
    assert j.statuses == {"ok": 3}


def test_an_approval_only_review_raises_no_budget_alert() -> None:
    raw, req = request(0.1)
    req = req.model_copy(update={"estimate": req.estimate.model_copy(update={"tokens": 20_000})})
    judged = judge(spending(1_000_000))("acme", req, 0, TS, False, 0.9)
    assert judged.verb == "review" and judged.alert is None
    assert [r["code"] for r in judged.reasons] == ["approval_required"]


@pytest.mark.parametrize(("lag", "verb"), [(None, "execute"), (LAG_LIMIT, "execute"), (LAG_LIMIT + 1, "review")])
def test_a_budget_agent_far_behind_turns_execute_into_review(lag: int | None, verb: str) -> None:
    j = judge(spending(1_000_000, lagging=lag))
    judged = j("acme", request(1.0)[1], 0, TS, False, 0.9)
    assert judged.verb == verb
    assert ("budget_lagging" in [r["code"] for r in judged.reasons]) is (verb == "review")
    assert j.lagging == (verb == "review")  # counted for the circuit breaker


def _tokens(req: DecisionRequest, tokens: int) -> DecisionRequest:
    return req.model_copy(update={"estimate": req.estimate.model_copy(update={"tokens": tokens})})


@pytest.mark.parametrize(("tokens", "score", "held"), [
    (5000, 0.9, ["downgrade_tokens_over_limit"]),
    (100, 0.7, ["downgrade_trust_floor"]),
    (5000, 0.7, ["downgrade_tokens_over_limit", "downgrade_trust_floor"]),
])
def test_a_downgraded_tenant_runs_in_economy_mode(tokens: int, score: float, held: list[str]) -> None:
    req = _tokens(request(0.1)[1], tokens)
    judged = judge(spending(1_000_000, down=True))("acme", req, 0, TS, False, score)
    assert judged.verb == "review" and judged.alert is None
    assert [r["code"] for r in judged.reasons] == ["tripwire_downgraded", *held]
    assert (judged.budget["status"], judged.budget["mode"]) == ("downgraded", "economy")


def test_a_downgraded_request_within_every_override_still_executes() -> None:
    judged = judge(spending(1_000_000, down=True))("acme", _tokens(request(0.1)[1], 2000), 0, TS, False, 0.75)
    assert judged.verb == "execute" and [r["code"] for r in judged.reasons] == ["tripwire_downgraded"]


def test_the_overrides_hold_only_while_downgraded() -> None:
    judged = judge(spending(1_000_000))("acme", _tokens(request(5.0)[1], 5000), 0, TS, False, 0.61)
    assert judged.verb == "execute" and judged.reasons == []


def test_a_downgrade_never_lightens_a_stricter_budget_verb() -> None:
    judged = judge(spending(96_000_000, down=True))("acme", _tokens(request(0.1)[1], 5000), 0, TS, False, 0.9)
    assert judged.verb == "abort"
    assert [r["code"] for r in judged.reasons] == ["emergency_brake", "tripwire_downgraded",
                                                   "downgrade_tokens_over_limit"]


def test_the_configured_mode_is_the_one_applied() -> None:
    cfg = bg.energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100}],
                                 "budget_tripwire": {"downgrade_mode": "strict"},
                                 "downgrade_modes": {"strict": {"review_all": True}}})
    j = BudgetJudge(cfg, spending(down=True), NOW)
    judged = j("acme", _tokens(request(0.1)[1], 5000), 0, TS, False, 0.9)
    assert judged.verb == "review" and judged.budget["mode"] == "strict"
    assert [r["code"] for r in judged.reasons] == ["tripwire_downgraded", "downgrade_review_all"]


def _decision(status: str, period_start: str = DAY, verb: str = "execute", request_id: str = "r-1",
              downgraded: bool = False) -> dict:
    return {"event_id": "d-" + request_id, "request_id": request_id, "verb": verb, "trust": {"score": 0.9},
            "reasons": [], "budget": {"status": status, "scope": "acme", "period_start": period_start,
                                      "downgraded": downgraded}}


def cache(view: DictView | None = None, now: float = 100.0) -> InsightCache:
    return InsightCache(30, view or DictView(), now)


def test_the_insight_cache_reuses_an_identical_request_while_the_budget_is_unchanged() -> None:
    c = cache()
    raw = {"event_id": "r-1", "tenant": "acme", "signals": {"alignment_score": 0.9}}
    first = c.reuse(raw, _decision("ok", verb="execute"))
    assert first["reasons"] == []
    hit = c.reuse({**raw, "event_id": "r-2"}, _decision("ok", verb="review", request_id="r-2"))
    assert hit["verb"] == "execute" and hit["reasons"][-1]["code"] == "insight_cache"
    assert hit["event_id"] == "d-r-2"  # its own decision id
    changed = c.reuse({**raw, "event_id": "r-3"}, _decision("review", verb="review", request_id="r-3"))
    assert changed["verb"] == "review" and not changed["reasons"]
    next_day = c.reuse({**raw, "event_id": "r-4"}, _decision("review", "2026-01-02T00:00:00Z", "review", "r-4"))
    assert not next_day["reasons"]
    assert (c.hits, c.misses) == (1, 3)
    assert len(c.puts) == 1  # one key (the request apart from its id), holding the latest miss
    (expiry, kept), = c.puts.values()
    assert expiry == 130.0 and kept["request_id"] == "r-4"


def test_an_entry_from_an_earlier_batch_is_reused_until_it_expires() -> None:
    raw = {"event_id": "r-1", "tenant": "acme", "signals": {"alignment_score": 0.9}}
    first = cache()
    first.reuse(raw, _decision("ok"))
    view = DictView(cache=dict(first.puts))  # what the shell keeps in memory after the batch
    later = cache(view, now=129.9)
    assert later.reuse({**raw, "event_id": "r-2"}, _decision("ok", verb="review", request_id="r-2"))["verb"] == "execute"
    assert (later.hits, later.misses, later.puts) == (1, 0, {})
    expired = cache(view, now=130.0)
    assert expired.reuse({**raw, "event_id": "r-3"}, _decision("ok", verb="review", request_id="r-3"))["verb"] == "review"
    assert (expired.hits, expired.misses, len(expired.puts)) == (0, 1, 1)
    assert view.cache == first.puts  # the view is only read


def test_a_zero_ttl_turns_the_cache_off() -> None:
    c = InsightCache(0, DictView(), 100.0)
    raw = {"event_id": "r-1", "tenant": "acme"}
    c.reuse(raw, _decision("ok"))
    again = c.reuse({**raw, "event_id": "r-2"}, _decision("ok", verb="review", request_id="r-2"))
    assert again["verb"] == "review" and (c.hits, c.misses, c.puts) == (0, 0, {})


@pytest.mark.parametrize(("raw_extra", "status"), [({"override": {"operator_id": "o"}}, "ok"), ({}, "blocked")])
def test_break_glass_and_over_budget_defers_never_come_from_the_cache(raw_extra: dict, status: str) -> None:
    c = cache()
    raw = {"event_id": "r-1", "tenant": "acme", **raw_extra}
    c.reuse(raw, _decision(status))
    again = c.reuse({**raw, "event_id": "r-2"}, _decision(status, request_id="r-2"))
    assert again["reasons"] == []
    assert c.hits == 0 and c.puts == {}


def test_the_cache_never_carries_a_downgrade_review_past_a_reset() -> None:
    c = cache()
    raw = {"event_id": "r-1", "tenant": "acme"}
    c.reuse(raw, _decision("review", verb="review", downgraded=True))
    after_reset = c.reuse({**raw, "event_id": "r-2"}, _decision("review", verb="review", request_id="r-2"))
    assert after_reset["reasons"] == []
