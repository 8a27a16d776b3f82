"""The per-model breaker: 5 consecutive failures open it, 30 s half-open it, 2 successes close it."""

from __future__ import annotations

import pytest

from resontinex.agents.coordination import BreakerSettings, ConfigError, ModelBreaker


def failed(b: ModelBreaker, times: int, at: float = 0.0) -> tuple[ModelBreaker, list[str | None]]:
    changes = []
    for _ in range(times):
        b, change = b.failed(at)
        changes.append(change)
    return b, changes


def test_consecutive_failures_open_it_and_a_success_between_resets_the_count() -> None:
    b, changes = failed(ModelBreaker(), 4)
    assert changes == [None] * 4 and b.allows(0.0)
    b, _ = b.succeeded(0.0)
    b, changes = failed(b, 4)
    assert b.state_at(0.0) == "closed"
    b, change = b.failed(1.0)
    assert change == "open" and not b.allows(1.0) and b.state_at(30.99) == "open"


def test_half_open_after_the_wait_two_successes_close_it() -> None:
    b, _ = failed(ModelBreaker(), 5, at=100.0)
    assert b.state_at(130.0) == "half_open" and b.allows(130.0)
    b, change = b.succeeded(130.0)
    assert change is None and b.state_at(130.0) == "half_open"
    b, change = b.succeeded(131.0)
    assert change == "closed" and b == ModelBreaker()


def test_a_failure_half_open_reopens_it_for_another_wait_without_a_new_transition() -> None:
    b, _ = failed(ModelBreaker(), 5, at=0.0)
    b, _ = b.succeeded(30.0)
    b, change = b.failed(31.0)
    assert change is None and not b.allows(60.0) and b.allows(61.0)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        BreakerSettings(failures=0)
    with pytest.raises(ConfigError):
        BreakerSettings(open_s=0)
    b, change = failed(ModelBreaker(BreakerSettings(failures=1, open_s=1.0, successes=1)), 1)
    assert change == ["open"] and b.succeeded(1.0) == (ModelBreaker(b.settings), "closed")


def test_a_reply_to_a_call_made_before_it_opened_does_not_close_it() -> None:
    b = ModelBreaker()
    for t in range(5):
        b, _ = b.failed(float(t))
    for t in (4.1, 4.2):  # calls that were in flight when it opened answer late
        b, change = b.succeeded(t)
        assert change is None and b.state_at(t) == "open"
    b, change = b.succeeded(40.0)
    b, change = b.succeeded(41.0)
    assert change == "closed"
