"""The budget part of a decision (`BudgetJudge`) and the insight cache, over stand-in tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pytest

from agents import budget as bg
from agents.gate._budgeting import LAG_LIMIT, BudgetJudge, InsightCache
from app.partition_state import recover
from schemas import DecisionRequest, decode_json

CFG = bg.energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100}]})
NOW = 1_767_261_600.0  # 2026-01-01T10:00:00Z
DAY = "2026-01-01T00:00:00Z"
TS = "2026-01-01T10:00:00.000Z"


@dataclass
class Tables:
    micros: int = 0
    lagging: int | None = 0
    down: bool = False

    def spent(self, period, scope, at):
        return self.micros, 0

    def downgraded(self, tenant):
        return self.down

    def lag(self, partition):
        return self.lagging


@dataclass
class Message:
    partition: int = 0


@dataclass
class Event:
    message: Message = field(default_factory=Message)


def request(estimate: float | None = None, event_id: str = "r-1") -> tuple[dict, DecisionRequest]:
    raw = {"event_id": event_id, "tenant": "acme",
           "signals": {"alignment_score": 0.9, "epistemic_risk": 0.1, "confidence_band": 0.1}}
    if estimate is not None:
        raw["estimate"] = {"cost_usd": estimate}
    return decode_json(DecisionRequest, orjson.dumps(raw))


def judge(tables: Tables, marks: dict | None = None, state=None, now: float = NOW) -> BudgetJudge:
    return BudgetJudge(CFG, tables, {0: state or recover([], 100)}, marks if marks is not None else {}, now)


def test_a_tenant_without_a_budget_gets_none() -> None:
    _, req = request(1.0)
    other = req.model_copy(update={"tenant": "zeta"})
    assert judge(Tables())("zeta", other, Event(), TS, False, 0.9) is None


def test_one_alert_per_level_per_period_and_the_brake_holds() -> None:
    tables, state = Tables(micros=90_000_000), recover([], 100)
    j = judge(tables, state=state)
    first = j("acme", request(6.0)[1], Event(), TS, False, 0.9)  # 96 %: braked
    assert (first.verb, first.alert["kind"]) == ("abort", "emergency_brake")
    assert first.change["budget"] == {**first.change["budget"], "from": "ok", "to": "braked", "period_start": DAY}
    again = j("acme", request(1.0, "r-2")[1], Event(), TS, False, 0.9)  # 91 % alone, but the brake holds
    assert (again.verb, again.alert) == ("abort", None)
    assert state.marks.get(f"acme|{DAY}") == bg.Mark(2, None)


def test_marks_older_than_the_audit_tail_come_from_the_table() -> None:
    j = judge(Tables(micros=10_000_000), marks={f"acme|{DAY}": {"level": 2, "blocked_since": None}})
    judged = j("acme", request(1.0)[1], Event(), TS, False, 0.9)
    assert judged.verb == "abort" and judged.alert is None
    saved = {}
    j.marks = saved
    j.save()
    assert saved == {f"acme|{DAY}": {"level": 2, "blocked_since": None}}


def test_an_exhausted_budget_defers_with_a_backoff_from_when_it_was_first_exhausted() -> None:
    state = recover([], 100)
    first = judge(Tables(micros=101_000_000), state=state)("acme", request()[1], Event(), TS, False, 0.9)
    assert (first.verb, first.budget["retry_after_s"], first.alert["kind"]) == ("defer", 30.0, "budget_blocked")
    later = judge(Tables(micros=101_000_000), state=state, now=NOW + 30)("acme", request(None, "r-2")[1], Event(), TS, False, 0.9)
    assert (later.budget["retry_after_s"], later.budget["blocked_since"], later.alert) == (60.0, "2026-01-01T10:00:00Z", None)


def test_an_approval_only_review_raises_no_budget_alert() -> None:
    raw, req = request(0.1)
    req = req.model_copy(update={"estimate": req.estimate.model_copy(update={"tokens": 20_000})})
    judged = judge(Tables(micros=1_000_000))("acme", req, Event(), TS, False, 0.9)
    assert judged.verb == "review" and judged.alert is None
    assert [r["code"] for r in judged.reasons] == ["approval_required"]


@pytest.mark.parametrize(("lag", "verb"), [(None, "execute"), (LAG_LIMIT, "execute"), (LAG_LIMIT + 1, "review")])
def test_a_budget_agent_far_behind_turns_execute_into_review(lag: int | None, verb: str) -> None:
    judged = judge(Tables(micros=1_000_000, lagging=lag))("acme", request(1.0)[1], Event(), TS, False, 0.9)
    assert judged.verb == verb
    assert ("budget_lagging" in [r["code"] for r in judged.reasons]) is (verb == "review")


def _tokens(req: DecisionRequest, tokens: int) -> DecisionRequest:
    return req.model_copy(update={"estimate": req.estimate.model_copy(update={"tokens": tokens})})


@pytest.mark.parametrize(("tokens", "score", "held"), [
    (5000, 0.9, ["downgrade_tokens_over_limit"]),
    (100, 0.7, ["downgrade_trust_floor"]),
    (5000, 0.7, ["downgrade_tokens_over_limit", "downgrade_trust_floor"]),
])
def test_a_downgraded_tenant_runs_in_economy_mode(tokens: int, score: float, held: list[str]) -> None:
    req = _tokens(request(0.1)[1], tokens)
    judged = judge(Tables(micros=1_000_000, down=True))("acme", req, Event(), TS, False, score)
    assert judged.verb == "review" and judged.alert is None
    assert [r["code"] for r in judged.reasons] == ["tripwire_downgraded", *held]
    assert (judged.budget["status"], judged.budget["mode"]) == ("downgraded", "economy")


def test_a_downgraded_request_within_every_override_still_executes() -> None:
    judged = judge(Tables(micros=1_000_000, down=True))("acme", _tokens(request(0.1)[1], 2000), Event(), TS, False,
                                                       0.75)
    assert judged.verb == "execute" and [r["code"] for r in judged.reasons] == ["tripwire_downgraded"]


def test_the_overrides_hold_only_while_downgraded() -> None:
    judged = judge(Tables(micros=1_000_000))("acme", _tokens(request(5.0)[1], 5000), Event(), TS, False, 0.61)
    assert judged.verb == "execute" and judged.reasons == []


def test_a_downgrade_never_lightens_a_stricter_budget_verb() -> None:
    judged = judge(Tables(micros=96_000_000, down=True))("acme", _tokens(request(0.1)[1], 5000), Event(), TS, False,
                                                        0.9)
    assert judged.verb == "abort"
    assert [r["code"] for r in judged.reasons] == ["emergency_brake", "tripwire_downgraded",
                                                   "downgrade_tokens_over_limit"]


def test_the_configured_mode_is_the_one_applied() -> None:
    cfg = bg.energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100}],
                                 "budget_tripwire": {"downgrade_mode": "strict"},
                                 "downgrade_modes": {"strict": {"review_all": True}}})
    j = BudgetJudge(cfg, Tables(down=True), {0: recover([], 100)}, {}, NOW)
    judged = j("acme", _tokens(request(0.1)[1], 5000), Event(), TS, False, 0.9)
    assert judged.verb == "review" and judged.budget["mode"] == "strict"
    assert [r["code"] for r in judged.reasons] == ["tripwire_downgraded", "downgrade_review_all"]


def _decision(status: str, period_start: str = DAY, verb: str = "execute", request_id: str = "r-1",
              downgraded: bool = False) -> dict:
    return {"event_id": "d-" + request_id, "request_id": request_id, "verb": verb, "trust": {"score": 0.9},
            "reasons": [], "budget": {"status": status, "scope": "acme", "period_start": period_start,
                                      "downgraded": downgraded}}


def test_the_insight_cache_reuses_an_identical_request_while_the_budget_is_unchanged() -> None:
    cache = InsightCache(ttl_s=30)
    raw = {"event_id": "r-1", "tenant": "acme", "signals": {"alignment_score": 0.9}}
    first = cache.reuse(raw, _decision("ok", verb="execute"))
    assert first["reasons"] == []
    hit = cache.reuse({**raw, "event_id": "r-2"}, _decision("ok", verb="review", request_id="r-2"))
    assert hit["verb"] == "execute" and hit["reasons"][-1]["code"] == "insight_cache"
    assert hit["event_id"] == "d-r-2"  # its own decision id
    changed = cache.reuse({**raw, "event_id": "r-3"}, _decision("review", verb="review", request_id="r-3"))
    assert changed["verb"] == "review" and not changed["reasons"]
    next_day = cache.reuse({**raw, "event_id": "r-4"}, _decision("review", "2026-01-02T00:00:00Z", "review", "r-4"))
    assert not next_day["reasons"]


@pytest.mark.parametrize(("raw_extra", "status"), [({"override": {"operator_id": "o"}}, "ok"), ({}, "blocked")])
def test_break_glass_and_over_budget_defers_never_come_from_the_cache(raw_extra: dict, status: str) -> None:
    cache = InsightCache(ttl_s=30)
    raw = {"event_id": "r-1", "tenant": "acme", **raw_extra}
    cache.reuse(raw, _decision(status))
    again = cache.reuse({**raw, "event_id": "r-2"}, _decision(status, request_id="r-2"))
    assert again["reasons"] == []


def test_the_cache_never_carries_a_downgrade_review_past_a_reset() -> None:
    cache = InsightCache(ttl_s=30)
    raw = {"event_id": "r-1", "tenant": "acme"}
    cache.reuse(raw, _decision("review", verb="review", downgraded=True))
    after_reset = cache.reuse({**raw, "event_id": "r-2"}, _decision("review", verb="review", request_id="r-2"))
    assert after_reset["reasons"] == []
