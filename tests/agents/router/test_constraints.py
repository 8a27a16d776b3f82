from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.router import (
    SOFT,
    VIOLATION_TYPES,
    Constraints,
    RouterError,
    ViolationType,
    WorkloadContext,
    check,
    screen,
)
from resontinex.schemas import Constraints as ConstraintsModel
from resontinex.schemas import Provider as ProviderModel

from ._support import CONTEXT, offer

LIMITS = Constraints(max_price=3.0, max_latency_ms=300.0, min_reputation=80.0)


def types(violations: tuple) -> list[str]:
    return [v.type.value for v in violations]


def test_seed_002s_six_types() -> None:
    assert [t.value for t in VIOLATION_TYPES] == ["price_exceeded", "latency_exceeded", "reputation_too_low",
                                                  "region_mismatch", "gpu_unavailable", "capacity_insufficient"]
    assert ViolationType("price_exceeded") is ViolationType.PRICE_EXCEEDED
    assert {ViolationType.PRICE_EXCEEDED, ViolationType.LATENCY_EXCEEDED, ViolationType.REPUTATION_TOO_LOW} == SOFT


def test_a_compliant_provider_has_no_violation() -> None:
    assert check(offer("a"), CONTEXT, LIMITS) == ()


@pytest.mark.parametrize(("provider", "expected", "limit", "actual"), [
    (offer("a", price=3.01), "price_exceeded", 3.0, 3.01),
    (offer("a", latency=301), "latency_exceeded", 300.0, 301),
    (offer("a", reputation=79.9), "reputation_too_low", 80.0, 79.9),
    (offer("a", regions=("eu-central",)), "region_mismatch", "us-west", ("eu-central",)),
    (offer("a", gpus=("t4",)), "gpu_unavailable", "a100", ("t4",)),
    (offer("a", capacity=1.5), "capacity_insufficient", 2.0, 1.5),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_violation_type(provider: object, expected: str, limit: object, actual: object) -> None:
    (violation,) = check(provider, CONTEXT, LIMITS)  # type: ignore[arg-type]
    assert violation.type.value == expected
    assert (violation.provider_id, violation.limit, violation.actual) == ("a", limit, actual)
    assert violation.soft == (violation.type in SOFT)
    assert expected in violation.message()


def test_limits_are_inclusive() -> None:
    edge = offer("a", price=3.0, latency=300.0, reputation=80.0, capacity=2.0)
    assert check(edge, CONTEXT, LIMITS) == ()


def test_every_violation_is_reported_in_type_order() -> None:
    bad = offer("a", price=9, latency=999, reputation=1, capacity=0.5, gpus=(), regions=())
    assert types(check(bad, CONTEXT, LIMITS)) == [t.value for t in VIOLATION_TYPES]


def test_unset_limits_and_context_parts_are_not_checked() -> None:
    bad = offer("a", price=99, latency=9999, reputation=0, capacity=0.0, gpus=(), regions=())
    assert check(bad, None, None) == ()
    assert check(bad, WorkloadContext(), Constraints()) == ()


def test_unreported_capacity_is_not_judged_but_zero_capacity_is() -> None:
    assert check(offer("a", capacity=None), CONTEXT, None) == ()
    assert types(check(offer("a", capacity=0.0), CONTEXT, None)) == ["capacity_insufficient"]


def test_empty_declarations_offer_nothing() -> None:
    assert types(check(offer("a", gpus=(), regions=()), CONTEXT, None)) == ["region_mismatch", "gpu_unavailable"]


def test_schema_models_are_checked_directly() -> None:
    p = ProviderModel.model_validate({"provider_id": "akash", "price_usd_per_hour": 3.5, "latency_ms": 120,
                                      "reputation": 95, "gpu_types": ["a100"], "regions": ["us-west"]})
    assert types(check(p, CONTEXT, ConstraintsModel(max_price=3.0))) == ["price_exceeded"]


OFFERS = [offer("ok"), offer("pricey", price=5.0), offer("slow", latency=900.0), offer("wrong_gpu", gpus=("t4",))]


def test_strict_routes_only_to_compliant_providers() -> None:
    s = screen(OFFERS, CONTEXT, LIMITS, "strict")
    assert s.candidates == s.compliant == ("ok",)
    assert s.feasible and not s.flagged
    assert set(s.violations) == {"pricey", "slow", "wrong_gpu"}
    assert types(s.violations_of("pricey")) == ["price_exceeded"]
    assert s.violations_of("ok") == ()


def test_lenient_prefers_compliant_providers() -> None:
    s = screen(OFFERS, CONTEXT, LIMITS, "lenient")
    assert s.candidates == ("ok",) and not s.flagged


def test_strict_rejects_when_nobody_complies() -> None:
    s = screen(OFFERS[1:], CONTEXT, LIMITS, "strict")
    assert s.candidates == () and not s.feasible
    assert [t.value for t in s.violation_types()] == ["price_exceeded", "latency_exceeded", "gpu_unavailable"]


def test_lenient_falls_back_to_soft_violators_only_and_flags_them() -> None:
    s = screen(OFFERS[1:], CONTEXT, LIMITS, "lenient")
    assert s.candidates == ("pricey", "slow")
    assert s.compliant == ()
    assert s.flagged and s.feasible


def test_lenient_never_routes_to_a_hard_violator() -> None:
    hard = [offer("wrong_gpu", gpus=("t4",)), offer("far", regions=("eu",)), offer("full", capacity=0.1)]
    assert screen(hard, CONTEXT, LIMITS, "lenient").candidates == ()


def test_no_providers_is_not_feasible() -> None:
    s = screen([], CONTEXT, LIMITS, "strict")
    assert (s.offered, s.candidates, s.feasible, s.violation_types()) == ((), (), False, ())


def test_candidates_are_sorted_and_duplicates_reported() -> None:
    s = screen([offer("b"), offer("a"), offer("b", price=99.0)], CONTEXT, LIMITS, "strict")
    assert s.candidates == ("a", "b")  # the first offer of "b" counts
    assert s.duplicates == ("b",)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(RouterError):
        screen(OFFERS, CONTEXT, LIMITS, "loose")  # type: ignore[arg-type]


numbers = st.floats(min_value=0, max_value=1000, allow_nan=False)


@given(st.lists(st.tuples(numbers, numbers, st.floats(0, 100)), min_size=1, max_size=6),
       st.sampled_from(["strict", "lenient"]), numbers, numbers, st.floats(0, 100))
def test_screening_rules_hold_for_any_offers(rows: list, mode: str, max_price: float, max_latency: float,
                                             min_rep: float) -> None:
    offers = [offer(f"p{i}", price=p, latency=lat, reputation=rep) for i, (p, lat, rep) in enumerate(rows)]
    limits = Constraints(max_price, max_latency, min_rep)
    s = screen(offers, CONTEXT, limits, mode)  # type: ignore[arg-type]
    by_id = {o.provider_id: o for o in offers}
    for pid in s.compliant:
        o = by_id[pid]
        assert o.price_usd_per_hour <= max_price and o.latency_ms <= max_latency and o.reputation >= min_rep
    assert set(s.candidates) <= set(s.offered)
    if mode == "strict" or s.compliant:
        assert s.candidates == s.compliant
    else:
        assert s.candidates == s.offered  # only soft limits here, so lenient keeps every offer
    assert set(s.compliant).isdisjoint(s.violations)
