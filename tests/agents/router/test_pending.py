from __future__ import annotations

import json

import pytest

from resontinex.agents.router import PendingDecision, TableError

P = PendingDecision("d-1", "llm:a100:us", "akash", "linucb", 1.0, None, (1.0, 0.3, 0.2, 0.95, 0.5), 1000.0)


def test_expires_strictly_after_the_ttl() -> None:
    assert P.expires_at(60.0) == 1060.0
    assert not P.is_expired(1000.0, 60.0)
    assert not P.is_expired(1060.0, 60.0)
    assert P.is_expired(1060.001, 60.0)


def test_round_trips_through_json() -> None:
    assert PendingDecision.from_dict(json.loads(json.dumps(P.to_dict()))) == P


@pytest.mark.parametrize(("change", "path"), [
    ({"decision_id": ""}, "pending.decision_id"),
    ({"policy": "softmax"}, "pending.policy"),
    ({"propensity": 1.5}, "pending.propensity"),
    ({"q_value": "x"}, "pending.q_value"),
    ({"features": [1.0, 2.0]}, "pending.features"),
    ({"decided_at": None}, "pending.decided_at"),
])
def test_bad_pending_records_are_refused_naming_the_path(change: dict, path: str) -> None:
    with pytest.raises(TableError) as err:
        PendingDecision.from_dict({**P.to_dict(), **change})
    assert err.value.path == path
