from datetime import datetime, timezone

from resontinex.agents.gate import break_glass
from resontinex.agents.trust import default_config, evaluate_values

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_an_abort_is_overridden_with_the_operator_on_record():
    applied, why, body = break_glass(evaluate_values(0.1, 0.9, 0.5, default_config()), "ops-1", "incident", "r-1", NOW)
    assert applied and why["code"] == "break_glass" and "ops-1" in why["message"]
    assert body["applied"] and body["operator_id"] == "ops-1" and body["reason"] == "incident"
    assert body["original_decision"] == "abort" and body["decision"] == "execute" and body["request_id"] == "r-1"


def test_nothing_to_override_is_refused_but_recorded():
    applied, why, body = break_glass(evaluate_values(0.95, 0.05, 0.05, default_config()), "ops-1", "why not", "r-2", NOW)
    assert not applied and why["code"] == "break_glass_refused"
    assert body == {"applied": False, "request_id": "r-2", "operator_id": "ops-1", "reason": "why not", "refused": body["refused"]}
