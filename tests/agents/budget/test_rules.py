from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.budget import (
    STATUS_RANK,
    STATUS_VERB,
    ConfigError,
    Multipliers,
    Tripwire,
    TripwireState,
    cost_multiplier,
    is_breach,
    retry_after_s,
    to_micros,
    tripwire_step,
)

from ._support import config, judge

NAMES = ("high_complexity", "low_trust", "high_entropy", "emergency_discount")
# Hand-computed: product of the applied multipliers, and the effective cost of a $10 estimate.
PRODUCTS = {
    (): (1.0, 10.0), ("high_complexity",): (1.5, 15.0), ("low_trust",): (1.3, 13.0),
    ("high_entropy",): (1.4, 14.0), ("emergency_discount",): (0.6, 6.0),
    ("high_complexity", "low_trust"): (1.95, 19.5), ("high_complexity", "high_entropy"): (2.1, 21.0),
    ("high_complexity", "emergency_discount"): (0.9, 9.0), ("low_trust", "high_entropy"): (1.82, 18.2),
    ("low_trust", "emergency_discount"): (0.78, 7.8), ("high_entropy", "emergency_discount"): (0.84, 8.4),
    ("high_complexity", "low_trust", "high_entropy"): (2.73, 27.3),
    ("high_complexity", "low_trust", "emergency_discount"): (1.17, 11.7),
    ("high_complexity", "high_entropy", "emergency_discount"): (1.26, 12.6),
    ("low_trust", "high_entropy", "emergency_discount"): (1.092, 10.92),
    NAMES: (1.638, 16.38),
}


def test_status_verbs_and_ranks() -> None:
    assert STATUS_VERB == {"ok": "execute", "review": "review", "braked": "abort", "blocked": "defer"}
    assert sorted(STATUS_RANK, key=STATUS_RANK.__getitem__) == ["ok", "review", "braked", "blocked"]


def test_to_micros_is_exact_for_decimal_money() -> None:
    assert to_micros(0.1) + to_micros(0.2) == to_micros(0.3) == 300_000
    assert (to_micros(0.0000005), to_micros(0.0000015), to_micros(1e-7)) == (0, 2, 0)  # half to even


@pytest.mark.parametrize(("usd", "spent", "estimate", "pct", "status"), [
    (7.0, 0.35, 5.6, 85, "review"),   # float: 84.99999999999999 %
    (3.0, 1.4, 1.45, 95, "braked"),   # float: 94.99999999999999 %
    (0.3, 0.1, 0.2, 100, "braked"),   # float: 100.00000000000003 %
    (1.0, 0.8, 0.05, 85, "review"),   # float: 85.00000000000001 %
])
def test_exact_boundaries_whatever_the_float_rounding(usd: float, spent: float, estimate: float, pct: int,
                                                      status: str) -> None:
    assert (spent + estimate) / usd * 100 != pct  # the premise: naive float arithmetic misses the boundary
    a = judge(config(usd), spent_usd=spent, estimate_usd=estimate)
    assert (a.status, a.utilization, a.verb) == (status, pct / 100, STATUS_VERB[status])
    assert a.remaining_usd == pytest.approx(usd - spent, abs=1e-9)
    assert (a.effective_cost_usd, a.multiplier, a.multipliers) == (estimate, 1.0, ())


@pytest.mark.parametrize(("spent", "status"), [
    (0.0, "ok"), (84.999999, "ok"), (85.0, "review"), (94.999999, "review"), (95.0, "braked"),
    (100.0, "braked"), (100.000001, "blocked"), (250.0, "blocked"),
])
def test_no_estimate_is_judged_on_spend_so_far(spent: float, status: str) -> None:
    a = judge(config(100.0), spent_usd=spent, complexity=0.9)
    assert (a.status, a.effective_cost_usd) == (status, 0.0)
    assert a.remaining_usd == pytest.approx(100.0 - spent, abs=1e-9)
    assert a.multiplier == 1.5  # still reported, applied to nothing


def test_spend_plus_effective_cost_counts() -> None:
    a = judge(config(100.0), spent_usd=80.0, estimate_usd=5.0)
    assert (a.status, a.utilization, a.remaining_usd, a.effective_cost_usd) == ("review", 0.85, 20.0, 5.0)
    multiplied = judge(config(100.0), spent_usd=80.0, estimate_usd=5.0, complexity=0.71, low_trust=True)
    assert (multiplied.status, multiplied.utilization, multiplied.effective_cost_usd) == ("review", 0.8975, 9.75)


@pytest.mark.parametrize("flags", list(itertools.product((False, True), repeat=4)))
def test_every_multiplier_combination(flags: tuple[bool, bool, bool, bool]) -> None:
    hc, lt, he, ed = flags
    kwargs = {"complexity": math.nextafter(0.7, 1.0) if hc else 0.7,  # exactly 0.7 is not high
              "entropy": math.nextafter(0.72, 1.0) if he else 0.72, "low_trust": lt, "braked": ed}
    names = tuple(n for n, on in zip(NAMES, flags) if on)
    product, effective = PRODUCTS[names]
    assert cost_multiplier(Multipliers(), **kwargs) == (product, names)
    a = judge(config(1000.0), estimate_usd=10.0, **kwargs)
    assert (a.multiplier, a.multipliers, a.effective_cost_usd) == (product, names, effective)


def test_missing_complexity_or_entropy_applies_nothing() -> None:
    assert cost_multiplier(Multipliers(), complexity=None, entropy=None, low_trust=False, braked=False) == (1.0, ())
    assert cost_multiplier(Multipliers(), complexity=1.0, entropy=1.0, low_trust=False, braked=False) \
        == (2.1, ("high_complexity", "high_entropy"))


def test_custom_thresholds_are_strict_too() -> None:
    m = Multipliers(complexity_threshold=0.5, entropy_threshold=0.9, high_complexity=2.0)
    assert cost_multiplier(m, complexity=0.5, entropy=0.9, low_trust=False, braked=False) == (1.0, ())
    assert cost_multiplier(m, complexity=0.51, entropy=0.91, low_trust=False, braked=False) \
        == (2.8, ("high_complexity", "high_entropy"))


def test_emergency_discount_can_pull_a_request_back_under_the_limit() -> None:
    cfg = config(100.0)
    assert judge(cfg, spent_usd=90.0, estimate_usd=15.0).status == "blocked"
    braked = judge(cfg, spent_usd=90.0, estimate_usd=15.0, braked=True)
    assert (braked.status, braked.effective_cost_usd, braked.utilization) == ("braked", 9.0, 0.99)


@pytest.mark.parametrize(("spent_usd", "spent_tokens", "estimate_tokens", "status", "utilization"), [
    (10.0, 800, None, "ok", 0.8),
    (10.0, 800, 50, "review", 0.85),
    (10.0, 900, 60, "braked", 0.96),
    (10.0, 1000, None, "braked", 1.0),
    (10.0, 1000, 1, "blocked", 1.001),
    (90.0, 100, 0, "review", 0.9),  # dollars are the larger share
])
def test_token_budget_counts_utilization_is_the_max(spent_usd: float, spent_tokens: int, estimate_tokens: int | None,
                                                    status: str, utilization: float) -> None:
    a = judge(config(100.0, tokens=1000), spent_usd=spent_usd, spent_tokens=spent_tokens,
              estimate_tokens=estimate_tokens)
    assert (a.status, a.utilization) == (status, utilization)


def test_tokens_are_ignored_without_a_token_budget() -> None:
    a = judge(config(100.0), spent_tokens=10**9, estimate_tokens=5)
    assert (a.status, a.utilization) == ("ok", 0.0)


@pytest.mark.parametrize(("spent", "tokens", "status", "approval"), [
    (0.0, None, "ok", False), (0.0, 10_000, "ok", False), (0.0, 10_001, "review", True),
    (90.0, 10_001, "review", True), (96.0, 10_001, "braked", True), (101.0, 10_001, "blocked", True),
])
def test_approval_threshold_forces_review_but_never_relaxes(spent: float, tokens: int | None, status: str,
                                                            approval: bool) -> None:
    a = judge(config(100.0), spent_usd=spent, estimate_tokens=tokens)
    assert (a.status, a.approval_required, a.verb) == (status, approval, STATUS_VERB[status])


def test_custom_limits_move_the_boundaries() -> None:
    cfg = config(200.0, budget_limits={"auto_review_threshold": 50, "hard_limit_percentage": 50})
    assert [judge(cfg, spent_usd=s).status for s in (99.999999, 100.0, 200.0, 200.000001)] \
        == ["ok", "braked", "braked", "blocked"]


def test_a_budget_under_one_micro_dollar_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        config(4e-7)  # it would round to a limit of 0 micro-dollars
    assert info.value.key == "budgets[0].usd"
    assert judge(config(1e-6)).status in STATUS_RANK


money = st.integers(0, 300_000_000).map(lambda micros: micros / 1e6)
estimates = st.one_of(st.none(), st.floats(0.0, 300.0))


@given(money, money, estimates)
def test_utilization_and_status_are_monotone_in_spend(spent: float, extra: float, estimate: float | None) -> None:
    less = judge(config(100.0), spent_usd=spent, estimate_usd=estimate)
    more = judge(config(100.0), spent_usd=spent + extra, estimate_usd=estimate)
    assert less.utilization <= more.utilization
    assert STATUS_RANK[less.status] <= STATUS_RANK[more.status]


@given(money, st.floats(0.0, 300.0), st.floats(0.0, 300.0), st.booleans(), st.booleans())
def test_utilization_and_status_are_monotone_in_estimate(spent: float, e1: float, e2: float, low_trust: bool,
                                                         braked: bool) -> None:
    lo, hi = sorted((e1, e2))
    less, more = (judge(config(100.0), spent_usd=spent, estimate_usd=e, low_trust=low_trust, braked=braked)
                  for e in (lo, hi))
    assert less.utilization <= more.utilization
    assert STATUS_RANK[less.status] <= STATUS_RANK[more.status]
    assert less.effective_cost_usd <= more.effective_cost_usd


@pytest.mark.parametrize(("over_for", "until_reset", "expected"), [
    (0, 10_000, 30.0), (29.9, 10_000, 30.0), (30, 10_000, 60.0), (89.9, 10_000, 60.0), (90, 10_000, 120.0),
    (210, 10_000, 240.0), (30 * 127, 10_000, 3600.0), (1e12, 10_000, 3600.0),   # capped at retry_max_s
    (90, 100.0, 100.0), (500, 42.5, 42.5),                                   # capped at the period reset
    (0, 0.2, 1.0), (500, 0.0, 1.0),                                          # never below 1 s
    (-5, 10_000, 30.0),                                                      # a clock step back
])
def test_retry_after_backs_off_and_caps(over_for: float, until_reset: float, expected: float) -> None:
    assert retry_after_s(over_for, 30.0, 3600.0, until_reset) == expected


@given(st.integers(0, 40), st.floats(1.0, 100.0))
def test_a_client_retrying_when_told_is_told_to_wait_twice_as_long(retries: int, base: float) -> None:
    waited = 0.0
    for _ in range(retries):  # each retry comes exactly when the previous answer said
        waited += retry_after_s(waited, base, math.inf, math.inf)
    nxt = retry_after_s(waited, base, math.inf, math.inf)
    assert nxt == base * 2.0 ** retries
    assert retry_after_s(waited, base, 3600.0, 86_400.0) == min(nxt, 3600.0)


def test_retry_after_survives_any_duration() -> None:
    assert retry_after_s(1e300, 30.0, 3600.0, 10_000.0) == 3600.0


def test_once_braked_the_brake_holds_for_the_period() -> None:
    cfg = config(100.0)
    # 90 % spend and a $3 estimate: 93 % is review on its own, braked once the brake engaged
    assert judge(cfg, spent_usd=90.0, estimate_usd=3.0).status == "review"
    held = judge(cfg, spent_usd=90.0, estimate_usd=3.0, braked=True)
    assert (held.status, held.level, held.verb) == ("braked", "braked", "abort")
    # the emergency discount still decides braked against blocked: 98 + 3 × 0.6 = 99.8 %
    assert judge(cfg, spent_usd=98.0, estimate_usd=3.0, braked=True).status == "braked"
    assert judge(cfg, spent_usd=98.0, estimate_usd=4.0, braked=True).status == "blocked"


@pytest.mark.parametrize(("previous", "tokens", "threshold", "breach"), [
    (100, 112, 12.0, False), (100, 113, 12.0, True), (1_000_000, 1_120_000, 12.0, False),
    (1_000_000, 1_120_001, 12.0, True),  # 12.0001 %
    (100, 50, 12.0, False), (100, 100, 0.0, False), (100, 101, 0.0, True),
    (1000, 1007, 0.7, False), (1000, 1008, 0.7, True),  # 0.7 as written, not its binary neighbour
    (0, 50, 12.0, None), (0, 0, 12.0, None),
])
def test_is_breach(previous: int, tokens: int, threshold: float, breach: bool | None) -> None:
    assert is_breach(previous, tokens, threshold) is breach


@given(st.integers(1, 10**9), st.integers(0, 10**9), st.integers(0, 200))
def test_is_breach_is_growth_strictly_above_threshold(previous: int, tokens: int, threshold: int) -> None:
    assert is_breach(previous, tokens, float(threshold)) is ((tokens - previous) * 100 > threshold * previous)


T, F = True, False


@pytest.mark.parametrize(("auto", "verdicts", "expected"), [
    (F, [T, T, T, F], [(1, F, None), (2, F, None), (3, T, "downgraded"), (0, T, None)]),
    (T, [T, T, T, F], [(1, F, None), (2, F, None), (3, T, "downgraded"), (0, F, "recovered")]),
    (F, [T, T, F, T, T, T], [(1, F, None), (2, F, None), (0, F, None), (1, F, None), (2, F, None),
                             (3, T, "downgraded")]),
    (F, [T, None, T, None, T], [(1, F, None), (1, F, None), (2, F, None), (2, F, None), (3, T, "downgraded")]),
    (F, [T, T, T, T, T], [(1, F, None), (2, F, None), (3, T, "downgraded"), (4, T, None), (5, T, None)]),
    (F, [T, T, T, F, T, T, T], [(1, F, None), (2, F, None), (3, T, "downgraded"), (0, T, None), (1, T, None),
                                (2, T, None), (3, T, None)]),
    (T, [T, T, T, None, F, T, T, T], [(1, F, None), (2, F, None), (3, T, "downgraded"), (3, T, None),
                                      (0, F, "recovered"), (1, F, None), (2, F, None), (3, T, "downgraded")]),
    (T, [F, None, F], [(0, F, None), (0, F, None), (0, F, None)]),
])
def test_tripwire_sequences(auto: bool, verdicts: list[bool | None],
                            expected: list[tuple[int, bool, str | None]]) -> None:
    state, cfg, seen = TripwireState(), Tripwire(auto_recovery=auto), []
    for verdict in verdicts:
        state, change = tripwire_step(state, verdict, cfg)
        seen.append((state.consecutive, state.downgraded, change))
    assert seen == expected
    assert state.as_dict() == {"consecutive": expected[-1][0], "downgraded": expected[-1][1]}


verdict_lists = st.lists(st.sampled_from([True, False, None]), max_size=40)


@given(verdict_lists, st.integers(1, 5))
def test_without_auto_recovery_a_downgrade_sticks(verdicts: list[bool | None], limit: int) -> None:
    state, cfg, changes, run = TripwireState(), Tripwire(consecutive_limit=limit), [], 0
    for verdict in verdicts:
        was = state.downgraded
        state, change = tripwire_step(state, verdict, cfg)
        run = run if verdict is None else (run + 1 if verdict else 0)
        assert state.consecutive == run
        assert state.downgraded == (was or run >= limit)
        changes.append(change)
    assert changes.count("downgraded") == int(state.downgraded) and "recovered" not in changes


@given(verdict_lists)
def test_with_auto_recovery_changes_alternate(verdicts: list[bool | None]) -> None:
    state, cfg, changes = TripwireState(), Tripwire(auto_recovery=True), []
    for verdict in verdicts:
        state, change = tripwire_step(state, verdict, cfg)
        changes += [change] if change else []
        assert state.downgraded == (state.consecutive >= 3)
    assert changes == ["downgraded", "recovered"] * (len(changes) // 2) + ["downgraded"] * (len(changes) % 2)
