from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.router import (
    Constraints,
    ProviderState,
    RouterError,
    WorkloadContext,
    parse_state_key,
    state_key,
)
from resontinex.schemas import RoutingContext

parts = st.one_of(st.none(), st.text(min_size=1, max_size=12))


def test_state_key_is_workload_gpu_region() -> None:
    assert state_key(WorkloadContext("llm_inference", "a100", "us-west", 2.0)) == "llm_inference:a100:us-west"


def test_missing_parts_are_stars() -> None:
    assert state_key(None) == "*:*:*"
    assert state_key(WorkloadContext(gpu_type="t4")) == "*:t4:*"
    assert state_key(WorkloadContext(workload_type="", region="eu")) == "*:*:eu"


def test_gpu_hours_is_not_part_of_the_key() -> None:
    assert state_key(WorkloadContext("w", "g", "r", 1.0)) == state_key(WorkloadContext("w", "g", "r", 99.0))


def test_the_schema_model_works_directly() -> None:
    ctx = RoutingContext.model_validate({"workload_type": "llm", "gpu_type": "a100", "region": "us-west"})
    assert state_key(ctx) == "llm:a100:us-west"


@given(parts, parts, parts)
def test_state_key_round_trips_whatever_the_parts_hold(w: str | None, g: str | None, r: str | None) -> None:
    key = state_key(WorkloadContext(w, g, r))
    assert key.count(":") == 2
    assert parse_state_key(key) == (w, g, r)


@given(st.tuples(parts, parts, parts), st.tuples(parts, parts, parts))
def test_different_contexts_get_different_keys(a: tuple, b: tuple) -> None:
    if a != b:
        assert state_key(WorkloadContext(*a)) != state_key(WorkloadContext(*b))


@pytest.mark.parametrize("key", ["a:b", "a:b:c:d", "", 42])
def test_malformed_keys_are_refused(key: object) -> None:
    with pytest.raises(RouterError):
        parse_state_key(key)  # type: ignore[arg-type]


def test_from_mapping_builds_the_dataclasses() -> None:
    p = ProviderState.from_mapping({"provider_id": "akash", "price_usd_per_hour": 2.5, "latency_ms": 120,
                                    "reputation": 95, "gpu_types": ["a100"], "regions": ["us-west"], "extra": 1})
    assert p == ProviderState("akash", 2.5, 120, 95, None, ("a100",), ("us-west",))
    assert Constraints.from_mapping({"max_price": 3.0}) == Constraints(max_price=3.0)
    assert WorkloadContext.from_mapping({"region": "eu"}) == WorkloadContext(region="eu")
    with pytest.raises(RouterError):
        Constraints.from_mapping([1])  # type: ignore[arg-type]
