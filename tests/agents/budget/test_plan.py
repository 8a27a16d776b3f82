"""The budget's pure cores (`plan_costs`, `plan_reset`) over a dict-backed view, no broker."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from resontinex.agents.budget import EnergyConfig, energy_config_from, load_energy_config
from resontinex.agents.budget._plan import FUTURE_TOLERANCE_S, CostBatch, plan_costs, plan_reset, spend_table
from resontinex.agents.budget._periods import PERIODS, iso, period_start
from resontinex.agents.effects import Count, Effects, TableWrite
from resontinex.schemas import Alert, Control, ms_to_ts
from tests.agents.gate.views import Rec

PACKAGED = Path(__file__).resolve().parents[3] / "config" / "energy_governance.yaml"
PV = "pv-test"
MAX = 1 << 20
DAY = 86_400.0
NOW = datetime(2026, 1, 10, 12, 30, tzinfo=timezone.utc).timestamp()
D = period_start("day", NOW)  # today's window
D1, D2, D3 = D - DAY, D - 2 * DAY, D - 3 * DAY


@dataclass
class DictView:
    seen: dict[int, set[str]] = field(default_factory=dict)
    spends: dict[tuple[str, str, float], dict[str, Any]] = field(default_factory=dict)
    tripwires: dict[str, dict[str, Any]] = field(default_factory=dict)

    def seen_cost(self, partition: int, event_id: str) -> bool:
        return event_id in self.seen.get(partition, set())

    def spend(self, period: str, scope: str, start: float) -> dict[str, Any] | None:
        return self.spends.get((period, scope, start))

    def tripwire(self, tenant: str) -> dict[str, Any] | None:
        return self.tripwires.get(tenant)

    def snapshot(self) -> DictView:
        return copy.deepcopy(self)


def cost_value(event_id: str = "c-1", *, tenant: str = "acme", workflow: str = "refunds", tokens: tuple[int, int] = (60, 40),
               usd: float = 0.25, ts: float | None = NOW) -> bytes:
    body: dict[str, Any] = {"event_id": event_id, "tenant": tenant, "workflow": workflow, "provider": "p", "model": "m",
                            "input_tokens": tokens[0], "output_tokens": tokens[1], "cost_usd": usd, "latency_ms": 5.0}
    if ts is not None:
        body["ts"] = ms_to_ts(round(ts * 1000))
    return orjson.dumps(body)


def rec(offset: int, value: bytes | None = None, *, key: bytes | None = b"acme", partition: int = 3,
        timestamp: float = NOW, topic: str = "costs") -> Rec:
    return Rec(topic, partition, offset, key, value if value is not None else cost_value(), timestamp)


def tripwire_cfg(limit: int = 2, **tripwire: Any) -> EnergyConfig:
    return energy_config_from({"budgets": [{"tenant": "acme", "period": "day", "usd": 100.0}],
                               "budget_tripwire": {"consecutive_limit": limit, **tripwire}})


def plan(records: list[Rec], view: DictView, cfg: EnergyConfig | None = None, now: float = NOW):
    return plan_costs(CostBatch(records, now), view, cfg if cfg is not None else EnergyConfig(),
                      max_message_bytes=MAX, policy_version=PV)


def counts(effects: Effects) -> dict[tuple[str, tuple[str, ...]], float]:
    out: dict[tuple[str, tuple[str, ...]], float] = {}
    for c in effects.counts:
        out[(c.metric, c.labels)] = out.get((c.metric, c.labels), 0) + c.amount
    return out


def writes(effects: Effects) -> dict[tuple[str, str, float], TableWrite]:
    return {(w.table, w.key, w.at): w for w in effects.early_writes}


def alerts(effects: Effects) -> list[Alert]:
    return [Alert.model_validate_json(o.value) for o in effects.outputs if o.topic == "alerts"]


def dead_codes(effects: Effects) -> list[str]:
    return [orjson.loads(o.value)["error"]["code"] for o in effects.outputs if o.topic == "dead_letters"]


def spent(tokens: int, offset: int = 0) -> dict[str, Any]:
    return {"micros": tokens * 10, "tokens": tokens, "n": 1, "offset": offset}


# --- token usage (OTel GenAI) ------------------------------------------------------------


def test_each_cost_folded_is_observed_once_as_gen_ai_token_usage() -> None:
    records = [rec(0, cost_value("c1", tokens=(100, 10))), rec(1, cost_value("c1", tokens=(100, 10))),  # a retry
               rec(2, cost_value("c2", tokens=(7, 3))), rec(3, cost_value("c3", tokens=(1000, 1))),
               rec(4, b"not json")]
    p = plan(records, DictView(seen={3: {"c3"}}))  # c3: folded by an earlier batch
    assert [(o.metric, o.labels, o.values) for o in p.effects.observations] == [
        ("GEN_AI_TOKEN_USAGE", ("input", "p", "m", "chat"), (100, 7)),
        ("GEN_AI_TOKEN_USAGE", ("output", "p", "m", "chat"), (10, 3))]
    assert plan([rec(0, b"not json")], DictView()).effects.observations == ()


# --- folding ---------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [EnergyConfig(), load_energy_config(PACKAGED)], ids=["defaults", "packaged"])
def test_a_cost_folds_into_tenant_and_workflow_for_every_period(cfg: EnergyConfig) -> None:
    p = plan([rec(5)], DictView(), cfg)
    w = writes(p.effects)
    assert len(p.effects.early_writes) == 2 * len(PERIODS) == 6
    for period in ("hour", "day", "month"):
        start = period_start(period, NOW)
        for scope in ("acme", "acme/refunds"):
            tw = w[(spend_table(period), scope, start)]
            assert tw.partition == 3 and not tw.delete
            assert tw.value == {"micros": 250_000, "tokens": 100, "n": 1, "offset": 5}
    assert p.seen == ((3, "c-1"),)
    assert counts(p.effects)[("EVENTS", ("costs",))] == 1


def test_costs_of_a_batch_add_up_and_the_ts_picks_the_window() -> None:
    earlier = NOW - 2 * 3600
    p = plan([rec(1, cost_value("a")), rec(2, cost_value("b", tokens=(1, 1), usd=1.0)),
              rec(3, cost_value("c", ts=earlier, workflow="other"))], DictView())
    w = writes(p.effects)
    assert w[("budget-spend-day", "acme", D)].value == {"micros": 1_500_000, "tokens": 202, "n": 3, "offset": 3}
    assert w[("budget-spend-day", "acme/refunds", D)].value == {"micros": 1_250_000, "tokens": 102, "n": 2, "offset": 2}
    assert w[("budget-spend-hour", "acme/other", period_start("hour", earlier))].value["n"] == 1
    assert w[("budget-spend-hour", "acme", period_start("hour", NOW))].value["n"] == 2


def test_a_cost_without_ts_uses_the_record_timestamp() -> None:
    at = NOW - 3 * 3600
    p = plan([rec(1, cost_value(ts=None), timestamp=at)], DictView())
    assert ("budget-spend-hour", "acme", period_start("hour", at)) in writes(p.effects)


def test_a_view_value_at_or_after_the_offset_skips_the_record_but_is_written_again() -> None:
    stored = {"micros": 7, "tokens": 9, "n": 1, "offset": 7}
    view = DictView(spends={("day", "acme", D): dict(stored), ("hour", "acme", period_start("hour", NOW)): {
        "micros": 1, "tokens": 1, "n": 1, "offset": 10}})
    p = plan([rec(6, cost_value("x")), rec(7, cost_value("y"))], view)
    w = writes(p.effects)
    assert w[("budget-spend-day", "acme", D)].value == stored
    assert w[("budget-spend-hour", "acme", period_start("hour", NOW))].value["offset"] == 10
    assert w[("budget-spend-day", "acme/refunds", D)].value["n"] == 2  # not in the view: both fold
    p = plan([rec(7, cost_value("y")), rec(8, cost_value("z"))], view)
    assert writes(p.effects)[("budget-spend-day", "acme", D)].value == {
        "micros": 7 + 250_000, "tokens": 109, "n": 2, "offset": 8}


# --- dedupe ----------------------------------------------------------------------------


def test_ids_already_seen_or_repeated_in_the_batch_fold_once() -> None:
    view = DictView(seen={3: {"old"}, 4: {"other-partition"}})
    p = plan([rec(1, cost_value("old")), rec(2, cost_value("new")), rec(3, cost_value("new")),
              rec(4, cost_value("other-partition"))], view)
    assert counts(p.effects)[("DUPLICATES", ("costs",))] == 2
    assert p.seen == ((3, "new"), (3, "other-partition"))
    assert writes(p.effects)[("budget-spend-day", "acme", D)].value == {
        "micros": 500_000, "tokens": 200, "n": 2, "offset": 4}


def test_the_same_id_on_another_partition_is_not_a_duplicate() -> None:
    p = plan([rec(1, cost_value("a"), partition=0), rec(1, cost_value("a"), partition=1)], DictView())
    assert p.seen == ((0, "a"), (1, "a"))
    assert ("DUPLICATES", ("costs",)) not in counts(p.effects)


def test_all_duplicates_write_nothing() -> None:
    p = plan([rec(1, cost_value("old"))], DictView(seen={3: {"old"}}))
    assert p.effects.early_writes == () and p.seen == ()


# --- dead letters ----------------------------------------------------------------------


@pytest.mark.parametrize(("record", "code"), [
    (rec(1, b"{not json"), None),
    (rec(1, cost_value(tenant="globex")), "key_mismatch"),
    (rec(1, cost_value(ts=NOW + FUTURE_TOLERANCE_S + 1)), "out_of_range"),
    (rec(1, cost_value(ts=None), timestamp=NOW + FUTURE_TOLERANCE_S + 1), "out_of_range"),
], ids=["bad_json", "key_mismatch", "future_ts", "future_record_time"])
def test_bad_costs_become_dead_letters(record: Rec, code: str | None) -> None:
    p = plan([record, rec(2, cost_value("ok"))], DictView(), tripwire_cfg())
    codes = dead_codes(p.effects)
    assert len(codes) == 1
    if code is not None:
        assert codes == [code]
    dl = next(o for o in p.effects.outputs if o.topic == "dead_letters")
    assert dl.partition == 3 and dl.key == record.key and orjson.loads(dl.value)["offset"] == 1
    assert counts(p.effects)[("DEAD_LETTERS", ("costs", codes[0]))] == 1
    assert counts(p.effects)[("EVENTS", ("costs",))] == 2
    assert p.seen == ((3, "ok"),)
    assert writes(p.effects)[("budget-spend-day", "acme", D)].value["n"] == 1


def test_a_ts_just_within_the_tolerance_is_folded() -> None:
    p = plan([rec(1, cost_value(ts=NOW + FUTURE_TOLERANCE_S))], DictView())
    assert dead_codes(p.effects) == [] and p.seen == ((3, "c-1"),)


# --- tripwire --------------------------------------------------------------------------


def growing_view(**entry: Any) -> DictView:
    """Day token use doubling three windows in a row; last judged at D3."""
    return DictView(spends={("day", "acme", D3): spent(100), ("day", "acme", D2): spent(200),
                            ("day", "acme", D1): spent(400)},
                    tripwires={"acme": {"checked": D3, "consecutive": 0, "downgraded": False, "period": "day", **entry}})


def test_consecutive_breaches_downgrade_with_alert_audit_and_late_write() -> None:
    cfg = tripwire_cfg(limit=2)
    p = plan([rec(9)], growing_view(), cfg)
    [alert] = alerts(p.effects)
    assert alert.kind == "tripwire_downgrade" and alert.tenant == "acme" and alert.severity == "warning"
    assert alert.details["window_start"] == iso(D1) and alert.details["consecutive"] == 2
    assert (alert.details["previous_tokens"], alert.details["tokens"]) == (200, 400)
    assert alert.details["mode"] == cfg.tripwire.downgrade_mode
    assert alert.ts == ms_to_ts(round(D * 1000))  # the end of the breaching window
    out = next(o for o in p.effects.outputs if o.topic == "alerts")
    assert out.partition == 3 and out.key == b"acme"
    assert [(a.partition, a.item["kind"]) for a in p.effects.audit] == [(3, "state_change"), (3, "alert")]
    sc, au = (a.item for a in p.effects.audit)
    assert sc["record"]["tripwire"]["change"] == "downgraded" and sc["policy_version"] == PV
    assert au["record"]["alert"]["event_id"] == alert.event_id
    assert sc["event_id"][3:] == au["event_id"][3:] == alert.event_id[2:]
    [late] = p.effects.late_writes
    assert (late.table, late.key, late.partition) == ("budget-tripwire", "acme", 3)
    assert late.value == {"checked": D1, "consecutive": 2, "downgraded": True, "period": "day"}
    assert counts(p.effects)[("ALERTS", ("tripwire_downgrade",))] == 1


def test_windows_are_judged_oldest_first() -> None:
    # One breach carried over; D2 grows (the second breach: downgrade at D2), then D1 shrinks.
    view = growing_view(consecutive=1)
    view.spends[("day", "acme", D1)] = spent(150)
    p = plan([rec(9)], view, tripwire_cfg(limit=2))
    [alert] = alerts(p.effects)
    assert alert.details["window_start"] == iso(D2) and alert.ts == ms_to_ts(round(D1 * 1000))
    assert p.effects.late_writes[0].value == {"checked": D1, "consecutive": 0, "downgraded": True, "period": "day"}
    # Reversed (D2 shrinks, D1 grows): the carried breach is reset first, so no downgrade.
    view.spends[("day", "acme", D2)] = spent(50)
    view.spends[("day", "acme", D1)] = spent(400)
    p = plan([rec(9)], view, tripwire_cfg(limit=2))
    assert alerts(p.effects) == [] and p.effects.late_writes[0].value["consecutive"] == 1


def test_the_batch_own_late_cost_counts_for_a_closed_window() -> None:
    view = DictView(spends={("day", "acme", D2): spent(100), ("day", "acme", D1): spent(100)},
                    tripwires={"acme": {"checked": D2, "consecutive": 1, "downgraded": False, "period": "day"}})
    cfg = tripwire_cfg(limit=2)
    assert alerts(plan([rec(9)], view, cfg).effects) == []  # flat without the late cost
    late_cost = rec(8, cost_value("late", tokens=(100, 0), ts=D1 + 3600))
    p = plan([late_cost, rec(9)], view, cfg)
    [alert] = alerts(p.effects)
    assert alert.kind == "tripwire_downgrade"
    assert (alert.details["previous_tokens"], alert.details["tokens"]) == (100, 200)
    assert p.effects.late_writes[0].value["downgraded"] is True


def test_no_change_writes_the_entry_with_the_new_checked_and_no_alert() -> None:
    view = DictView(spends={("day", "acme", D2): spent(100), ("day", "acme", D1): spent(105)},
                    tripwires={"acme": {"checked": D2, "consecutive": 0, "downgraded": False, "period": "day"}})
    p = plan([rec(9)], view, tripwire_cfg())
    assert alerts(p.effects) == [] and p.effects.audit == ()
    assert [w.value for w in p.effects.late_writes] == [
        {"checked": D1, "consecutive": 0, "downgraded": False, "period": "day"}]


def test_nothing_closed_since_checked_writes_nothing() -> None:
    p = plan([rec(9)], growing_view(checked=D1), tripwire_cfg())
    assert p.effects.late_writes == () and alerts(p.effects) == []


def test_first_sight_records_checked_without_judging() -> None:
    p = plan([rec(9)], DictView(spends=growing_view().spends), tripwire_cfg(limit=1))
    assert alerts(p.effects) == []
    assert p.effects.late_writes[0].value == {"checked": D1, "consecutive": 0, "downgraded": False, "period": "day"}


@pytest.mark.parametrize("cfg", [EnergyConfig(), energy_config_from(
    {"budgets": [{"tenant": "globex", "period": "day", "usd": 1.0},
                 {"tenant": "acme", "workflow": "refunds", "period": "day", "usd": 1.0}],
     "budget_tripwire": {"consecutive_limit": 1}})], ids=["no_budgets", "other_tenant_and_workflow_only"])
def test_a_tenant_without_a_budget_is_not_judged(cfg: EnergyConfig) -> None:
    p = plan([rec(9)], growing_view(), cfg)
    assert p.effects.late_writes == () and alerts(p.effects) == [] and p.effects.audit == ()
    assert len(p.effects.early_writes) == 6


# --- plan_reset ------------------------------------------------------------------------


def reset_cmd(event_id: str = "r-1", ts: float | None = None) -> Control:
    body: dict[str, Any] = {"event_id": event_id, "tenant": "acme", "action": "tripwire_reset",
                            "operator_id": "ops-1", "reason": "reviewed"}
    if ts is not None:
        body["ts"] = ms_to_ts(round(ts * 1000))
    return Control.model_validate(body)


def test_reset_lifts_the_downgrade() -> None:
    entry = {"checked": D1, "consecutive": 3, "downgraded": True, "period": "day"}
    view = DictView(tripwires={"acme": dict(entry)})
    before = view.snapshot()
    record = rec(4, b"{}", topic="control", partition=1)
    eff = plan_reset(record, reset_cmd(), view, tripwire_cfg(), PV)
    assert view == before
    [late] = eff.late_writes
    assert (late.table, late.key, late.partition) == ("budget-tripwire", "acme", 1)
    assert late.value == {**entry, "consecutive": 0, "downgraded": False, "resets": ["r-1"]}
    [alert] = alerts(eff)
    assert alert.kind == "tripwire_reset" and alert.severity == "info" and alert.source_event_id == "r-1"
    assert alert.details == {"operator_id": "ops-1", "reason": "reviewed", "was_downgraded": True}
    assert alert.ts == ms_to_ts(round(NOW * 1000))  # the record's time when the command has none
    assert [(a.partition, a.item["kind"]) for a in eff.audit] == [(1, "state_change"), (1, "alert")]
    assert eff.audit[0].item["record"]["tripwire"]["change"] == "reset"
    assert counts(eff)[("ALERTS", ("tripwire_reset",))] == 1
    assert eff.early_writes == ()


def test_reset_of_a_tenant_never_judged_and_with_a_ts() -> None:
    eff = plan_reset(rec(4, b"{}", topic="control"), reset_cmd(ts=NOW - 60), DictView(), EnergyConfig(), PV)
    [alert] = alerts(eff)
    assert alert.details["was_downgraded"] is False and alert.ts == ms_to_ts(round((NOW - 60) * 1000))
    assert eff.late_writes[0].value == {"checked": None, "consecutive": 0, "downgraded": False, "resets": ["r-1"]}


def test_a_reset_applied_before_only_counts_a_duplicate() -> None:
    view = DictView(tripwires={"acme": {"checked": D1, "consecutive": 0, "downgraded": False, "resets": ["r-0", "r-1"]}})
    eff = plan_reset(rec(4, b"{}", topic="control"), reset_cmd("r-1"), view, tripwire_cfg(), PV)
    assert eff == Effects(counts=(Count("DUPLICATES", ("control",)),))
    eff = plan_reset(rec(5, b"{}", topic="control"), reset_cmd("r-2"), view, tripwire_cfg(), PV)
    assert eff.late_writes[0].value["resets"] == ["r-0", "r-1", "r-2"]


# --- purity ----------------------------------------------------------------------------


def test_the_view_is_never_mutated_and_plans_are_deterministic() -> None:
    view = growing_view()
    view.spends[("day", "acme", D)] = spent(5, offset=1)
    view.seen = {3: {"dup"}}
    before = view.snapshot()
    batch = [rec(1, b"nope"), rec(2, cost_value("dup")), rec(3, cost_value("a")), rec(4, cost_value("a")),
             rec(5, cost_value("late", ts=D1 + 1))]
    first, second = plan(batch, view, tripwire_cfg()), plan(batch, view, tripwire_cfg())
    assert view == before
    assert first == second
    assert first.effects.outputs == second.effects.outputs and alerts(first.effects)
