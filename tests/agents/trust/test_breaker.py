from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trust import BreakerConfig, CircuitBreaker, ConfigError, config_from_mapping, default_config, policy_version

CFG = BreakerConfig(open_rate=0.5, close_rate=0.1, window_s=10, min_events=20)


def test_it_opens_at_the_rate_only_over_enough_events() -> None:
    breaker = CircuitBreaker(CFG)
    assert breaker.record(0.0, events=19, errors=19) is None  # 100 % of too few events
    assert breaker.record(0.5, events=1, errors=0) == "open"  # 19 of 20
    assert breaker.is_open and breaker.counts() == (20, 19)


def test_between_the_close_and_open_rates_it_stays_as_it_is() -> None:
    breaker = CircuitBreaker(CFG)
    assert breaker.record(0.0, events=100, errors=30) is None  # 30 %: not open yet
    breaker.record(1.0, events=100, errors=70)  # 100 of 200 over the window
    assert breaker.is_open
    assert breaker.record(2.0, events=500, errors=0) is None  # 100 / 700 ≈ 14 %: still open
    assert breaker.record(3.0, events=400, errors=0) == "closed"  # 100 / 1,100 ≈ 9 %


def test_it_closes_when_the_errors_leave_the_window() -> None:
    breaker = CircuitBreaker(CFG)
    assert breaker.record(100.0, events=40, errors=40) == "open"
    assert breaker.record(109.9, events=0, errors=0) is None  # still inside the 10 s window
    assert breaker.record(110.0, events=0, errors=0) == "closed"
    assert breaker.counts() == (0, 0) and breaker.error_rate() == 0.0


@given(st.lists(st.tuples(st.floats(0, 5), st.integers(0, 50), st.integers(0, 50)), max_size=60))
def test_transitions_alternate_and_follow_the_windowed_rate(steps) -> None:
    breaker, now, last = CircuitBreaker(CFG), 0.0, "closed"
    for dt, events, errors in steps:
        now += dt
        errors = min(errors, events)
        transition = breaker.record(now, events=events, errors=errors)
        if transition is not None:
            assert transition != last
            last = transition
        seen, failed = breaker.counts()
        assert breaker.is_open == (last == "open")
        if transition == "open":
            assert seen >= CFG.min_events and failed / seen >= CFG.open_rate
        if transition == "closed":
            assert breaker.error_rate() < CFG.close_rate


@pytest.mark.parametrize(("values", "key"), [
    ({"open_rate": 0.0}, "open_rate"), ({"open_rate": 1.5}, "open_rate"),
    ({"close_rate": 0.5}, "close_rate"), ({"window_s": 0.5}, "window_s"),
    ({"min_events": 0}, "min_events"), ({"min_events": True}, "min_events"), ({"open_rate": "high"}, "open_rate"),
])
def test_a_bad_breaker_config_is_refused_naming_the_key(values, key) -> None:
    with pytest.raises(ConfigError, match=f"circuit_breaker.{key}"):
        BreakerConfig(**values)


def test_the_breaker_config_changes_the_policy_version_only_when_it_departs_from_the_defaults() -> None:
    base = default_config().as_dict()
    assert "circuit_breaker" not in base
    same = config_from_mapping({**base, "circuit_breaker": BreakerConfig().as_dict()})
    assert policy_version(same) == policy_version(default_config())
    tuned = config_from_mapping({**base, "circuit_breaker": {"window_s": 30}})
    assert tuned.circuit_breaker == BreakerConfig(window_s=30)
    assert policy_version(tuned) != policy_version(default_config())
    assert config_from_mapping(tuned.as_dict()) == tuned
    with pytest.raises(ConfigError, match="circuit_breaker"):
        config_from_mapping({**base, "circuit_breaker": {"threshold": 0.5}})
