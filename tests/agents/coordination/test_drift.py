"""Quality drift and ineffective coordination, each raised once per crossing."""

from __future__ import annotations

import pytest

from resontinex.agents.coordination import ConfigError, DriftSettings, RunHistory


def run(history: RunHistory, qualities: list[float], gamma: float = 1.2) -> tuple[RunHistory, list[str]]:
    kinds = []
    for q in qualities:
        history, signals = history.observe(q, gamma=gamma)
        kinds += [s.kind for s in signals]
    return history, kinds


def test_no_drift_before_twenty_samples_nor_within_the_threshold() -> None:
    h, kinds = run(RunHistory(), [0.9] * 10 + [0.2] * 9)
    assert kinds == []
    h, kinds = run(RunHistory(), [0.8] * 10 + [0.75] * 30)  # a shift of 0.05
    assert kinds == []


def test_drift_is_raised_once_then_again_after_it_cleared() -> None:
    h, kinds = run(RunHistory(), [0.8] * 10 + [0.5] * 15)
    assert kinds == ["coordination_drift"] and h.drifting
    h, kinds = run(h, [0.5] * 100)  # the earlier window becomes 0.5 too: cleared
    assert kinds == [] and not h.drifting
    h, kinds = run(h, [0.9] * 10)
    assert kinds == ["coordination_drift"]


def test_ineffective_when_the_mean_gamma_of_the_window_is_below_one() -> None:
    h, kinds = run(RunHistory(), [0.5] * 9, gamma=0.8)
    assert kinds == []
    h, kinds = run(h, [0.5] * 5, gamma=0.8)
    assert kinds == ["coordination_ineffective"]
    h, kinds = run(h, [0.5] * 10, gamma=1.3)
    assert kinds == [] and not h.ineffective


def test_history_round_trips_through_a_table_value() -> None:
    settings = DriftSettings(kept=30)
    h, _ = run(RunHistory(settings), [0.1 * (i % 7) for i in range(50)], gamma=0.9)
    assert RunHistory.from_dict(h.as_dict(), settings) == h
    assert RunHistory.from_dict(None, settings) == RunHistory(settings)


@pytest.mark.parametrize("bad", [dict(recent=0), dict(recent=20), dict(min_samples=200), dict(threshold=0),
                                 dict(gamma_window=0)])
def test_settings_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        DriftSettings(**bad)  # type: ignore[arg-type]
