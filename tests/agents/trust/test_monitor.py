from __future__ import annotations

import json

import pytest

from resontinex.agents.trust import InvalidInput, TrustMonitor, default_config, policy_version


def test_counts_and_health() -> None:
    monitor = TrustMonitor(default_config())
    assert monitor.evaluate(0.8, 0.3, 0.2).decision == "execute"
    assert monitor.evaluate(0.55, 0.5, 0.5).decision == "review"  # floor violation
    assert monitor.evaluate(0.9, 0.1, 0.9).decision == "defer"  # entropy flag
    assert monitor.evaluate(0.1, 0.9, 0.5).decision == "abort"
    with pytest.raises(InvalidInput):
        monitor.evaluate(0.5, float("nan"), 0.5)
    health = monitor.health()
    assert json.loads(json.dumps(health)) == health
    assert health["status"] == "healthy"
    assert health["evaluation_count"] == 4 and health["error_count"] == 1
    assert health["config_hash"] == policy_version(default_config())
    assert health["decisions"] == {"execute": 1, "review": 1, "defer": 1, "abort": 1}
    assert sum(health["tiers"].values()) == 4 and health["tiers"]["block"] == 1
    assert health["floor_violations"] == 2 and health["entropy_flags"] == 1
    assert health["uptime_seconds"] >= 0


def test_degraded_when_errors_exceed_half_a_percent() -> None:
    monitor = TrustMonitor(default_config())
    for _ in range(199):
        monitor.evaluate(0.8, 0.3, 0.2)
    with pytest.raises(InvalidInput):
        monitor.evaluate(2.0, 0.3, 0.2)
    assert monitor.health()["status"] == "healthy"  # exactly 0.5%
    with pytest.raises(InvalidInput):
        monitor.evaluate(True, 0.3, 0.2)
    assert monitor.health()["status"] == "degraded"
