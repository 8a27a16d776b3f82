from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.router import AnomalyConfig, QJumpDetector, RouterError, SuccessRateMonitor, TableError

S = "llm:a100:us"


def feed(d: QJumpDetector, deltas: list[float], state: str = S, pid: str = "a") -> QJumpDetector:
    for delta in deltas:
        d, _ = d.observe(state, pid, 0.0, delta)
    return d


# -- Q jumps ------------------------------------------------------------------------------

def test_no_judgement_before_min_samples() -> None:
    d = feed(QJumpDetector(k=3.0, window=10, min_samples=4), [0.1, 0.1, 0.1])
    _, anomaly = d.observe(S, "a", 0.0, 1e6)
    assert anomaly is None


def test_fires_exactly_beyond_k_sigma() -> None:
    d = feed(QJumpDetector(k=3.0, window=10, min_samples=4), [1.0, -1.0, 1.0, -1.0])  # μ 0, σ 1
    assert d.is_jump(S, "a", 3.0) == (False, 0.0, 1.0)
    assert d.observe(S, "a", 0.0, 3.0)[1] is None          # exactly 3σ: not beyond
    assert d.observe(S, "a", 0.0, -3.0)[1] is None
    jump = d.observe(S, "a", 0.0, 3.001)[1]
    assert jump is not None and jump.kind == "q_jump"
    assert d.observe(S, "a", 0.0, -3.001)[1] is not None


def test_deviation_is_measured_from_the_recent_mean() -> None:
    d = feed(QJumpDetector(k=2.0, window=10, min_samples=4), [5.0, 6.0, 5.0, 6.0])  # μ 5.5, σ 0.5
    assert d.observe(S, "a", 0.0, 6.4)[1] is None  # far from 0, but 0.9 from μ < 2σ = 1
    assert d.observe(S, "a", 0.0, 4.4)[1] is not None


def test_when_every_recent_change_was_equal_any_other_change_is_a_jump() -> None:
    d = feed(QJumpDetector(k=3.0, window=10, min_samples=3), [0.5, 0.5, 0.5])
    assert d.observe(S, "a", 0.0, 0.5)[1] is None
    assert d.observe(S, "a", 0.0, 0.51)[1] is not None


def test_only_the_window_is_remembered_and_jumps_join_it() -> None:
    d = feed(QJumpDetector(k=3.0, window=4, min_samples=2), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert d.changes(S, "a") == (3.0, 4.0, 5.0, 6.0)
    d2, jump = d.observe(S, "a", 0.0, 100.0)
    assert jump is not None and d2.changes(S, "a")[-1] == 100.0


def test_changes_are_new_minus_old() -> None:
    d, _ = QJumpDetector().observe(S, "a", 2.5, 2.0)
    assert d.changes(S, "a") == (-0.5,)


def test_state_and_provider_are_tracked_apart() -> None:
    d = feed(QJumpDetector(k=3.0, window=10, min_samples=3), [0.1, 0.2, 0.1], pid="a")
    assert d.observe(S, "b", 0.0, 50.0)[1] is None
    assert d.observe("other:*:*", "a", 0.0, 50.0)[1] is None
    assert d.observe(S, "a", 0.0, 50.0)[1] is not None


def test_jump_alert_names_the_place_and_the_numbers() -> None:
    d = feed(QJumpDetector(k=3.0, window=10, min_samples=4), [1.0, -1.0, 1.0, -1.0])
    jump = d.observe(S, "akash", 1.0, 11.0)[1]
    assert jump is None  # different provider: no history
    d = feed(d, [1.0, -1.0, 1.0, -1.0], pid="akash")
    jump = d.observe(S, "akash", 1.0, 11.0)[1]
    assert jump is not None
    alert = jump.alert()
    assert alert["kind"] == "routing_anomaly" and alert["severity"] == "warning"
    assert alert["details"]["anomaly"] == "q_jump" and alert["details"]["provider_id"] == "akash"
    assert alert["details"]["state_key"] == S and alert["details"]["delta"] == 10.0
    assert "akash" in alert["message"]


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(RouterError):
        QJumpDetector().observe(S, "a", 0.0, math.inf)


@given(st.lists(st.floats(-10, 10), min_size=5, max_size=30), st.floats(-50, 50))
def test_jump_iff_beyond_k_sigma_of_the_window(history: list[float], delta: float) -> None:
    d = feed(QJumpDetector(k=2.5, window=8, min_samples=5), history)
    recent = history[-8:]
    mu = sum(recent) / len(recent)
    sigma = math.sqrt(sum((x - mu) ** 2 for x in recent) / len(recent))
    _, anomaly = d.observe(S, "a", 0.0, delta)
    off = abs(delta - mu)
    if sigma > 1e-9 and abs(off - 2.5 * sigma) > 1e-6 * max(1.0, off):  # clear of the boundary
        assert (anomaly is not None) == (off > 2.5 * sigma)


def test_q_jump_round_trips_through_json() -> None:
    cfg = AnomalyConfig(q_jump_window=4, q_jump_min_samples=2)
    d = feed(QJumpDetector.from_config(cfg), [0.1, 0.2, 0.3])
    back = QJumpDetector.from_dict(json.loads(json.dumps(d.to_dict())), cfg)
    assert back == d


@pytest.mark.parametrize(("data", "path"), [
    ({}, "q_jump.history"),
    ({"history": {S: {"a": "x"}}}, f"q_jump.history[{S!r}].a"),
    ({"history": {S: {"a": [0.1, None]}}}, f"q_jump.history[{S!r}].a[1]"),
])
def test_bad_q_jump_state_is_refused_naming_the_path(data: object, path: str) -> None:
    with pytest.raises(TableError) as err:
        QJumpDetector.from_dict(data, AnomalyConfig())
    assert err.value.path == path


# -- success rate -------------------------------------------------------------------------

def run(m: SuccessRateMonitor, outcomes: list[bool], pid: str = "akash") -> tuple[SuccessRateMonitor, list[bool]]:
    fired = []
    for ok in outcomes:
        m, anomaly = m.observe(pid, ok)
        fired.append(anomaly is not None)
    return m, fired


def test_no_judgement_until_the_window_is_full() -> None:
    _, fired = run(SuccessRateMonitor(window=5, minimum=0.5), [False] * 4)
    assert fired == [False] * 4


def test_fires_once_per_crossing() -> None:
    m, fired = run(SuccessRateMonitor(window=4, minimum=0.5), [False] * 10)
    assert fired == [False, False, False, True] + [False] * 6
    assert m.providers["akash"].below


def test_fires_again_after_recovering() -> None:
    m, fired = run(SuccessRateMonitor(window=4, minimum=0.5),
                   [False] * 4 + [True] * 4 + [False] * 3)
    # below at the 4th outcome, back at 0.5 by the 6th, below again at the 11th
    assert m.providers["akash"].below
    assert fired == [False, False, False, True, False, False, False, False, False, False, True]


def test_exactly_the_minimum_is_not_an_anomaly() -> None:
    _, fired = run(SuccessRateMonitor(window=4, minimum=0.5), [True, False, True, False, True, False])
    assert not any(fired)


def test_providers_are_tracked_apart() -> None:
    m, _ = run(SuccessRateMonitor(window=2, minimum=0.5), [False, False], pid="a")
    _, fired = run(m, [False], pid="b")
    assert fired == [False]
    assert m.rate("a") == 0.0 and m.rate("b") is None


def test_success_rate_alert() -> None:
    m = SuccessRateMonitor(window=2, minimum=0.75)
    m, _ = m.observe("vast", True)
    _, anomaly = m.observe("vast", False)
    assert anomaly is not None
    alert = anomaly.alert()
    assert alert["details"]["anomaly"] == "success_rate" and alert["details"]["success_rate"] == 0.5
    assert alert["details"]["state_key"] is None and "vast" in alert["message"]


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 8), st.sampled_from([0.25, 0.5, 0.8]))
def test_fires_exactly_on_each_entry_below_the_minimum(outcomes: list[bool], window: int, minimum: float) -> None:
    _, fired = run(SuccessRateMonitor(window=window, minimum=minimum), outcomes)
    expected, below = [], False
    for i in range(len(outcomes)):
        recent = outcomes[max(0, i + 1 - window):i + 1]
        now = len(recent) == window and sum(recent) / window < minimum
        expected.append(now and not below)
        below = now
    assert fired == expected


def test_success_monitor_round_trips_through_json() -> None:
    cfg = AnomalyConfig(success_rate_window=3)
    m, _ = run(SuccessRateMonitor.from_config(cfg), [True, False, False, False])
    back = SuccessRateMonitor.from_dict(json.loads(json.dumps(m.to_dict())), cfg)
    assert back == m


@pytest.mark.parametrize(("data", "path"), [
    ({"providers": {"a": {"outcomes": [1, 2], "below": False}}}, "success_rate.providers.a.outcomes[1]"),
    ({"providers": {"a": {"outcomes": [1], "below": "no"}}}, "success_rate.providers.a.below"),
    ({"providers": {"a": {"outcomes": [1]}}}, "success_rate.providers.a.below"),
])
def test_bad_success_state_is_refused_naming_the_path(data: object, path: str) -> None:
    with pytest.raises(TableError) as err:
        SuccessRateMonitor.from_dict(data, AnomalyConfig())
    assert err.value.path == path
