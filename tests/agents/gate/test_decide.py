from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.gate import VERB_RANK, alert_id, decision_id, floor_alert, most_restrictive, trust_reasons

verbs = st.sampled_from(sorted(VERB_RANK))


@given(st.lists(verbs, min_size=1))
def test_most_restrictive_is_the_highest_rank(vs):
    got = most_restrictive(vs)
    assert got in vs
    assert all(VERB_RANK[got] >= VERB_RANK[v] for v in vs)


def test_most_restrictive_of_nothing_is_execute():
    assert most_restrictive([]) == "execute"


def test_abort_beats_everything():
    assert most_restrictive(["execute", "review", "defer", "abort"]) == "abort"


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_decision_id_is_deterministic_and_separates_tenants(tenant, request_id):
    assert decision_id(tenant, request_id) == decision_id(tenant, request_id)
    assert decision_id(tenant, request_id) != decision_id(tenant + "x", request_id)
    assert 1 <= len(decision_id(tenant, request_id)) <= 128


def test_decision_id_is_not_ambiguous_across_the_separator():
    assert decision_id("a", "bc") != decision_id("ab", "c")


def test_clean_pass_has_no_reasons():
    assert trust_reasons("pass", "execute", 0.9, False, False, 0.6, 0.72, 0.1) == []


def test_every_modifier_is_explained():
    codes = [r["code"] for r in trust_reasons("monitor", "execute", 0.55, True, True, 0.6, 0.72, 0.8)]
    assert codes == ["tier_monitor", "entropy_flag", "trust_floor_violation"]
    assert all(r["component"] == "trust" for r in trust_reasons("block", "abort", 0.1, True, False, 0.6, 0.72, 0.1))


def test_floor_alert_points_at_its_decision_and_request():
    decision = {"event_id": "d-1", "request_id": "r-1", "tenant": "acme", "ts": "2026-01-01T00:00:00Z", "verb": "review",
                "trust": {"score": 0.55, "tier": "monitor"}}
    alert = floor_alert(decision, 0.6)
    assert alert["kind"] == "trust_floor_violation" and alert["severity"] == "warning"
    assert alert["source_event_id"] == "r-1" and alert["details"]["decision_id"] == "d-1"
    assert alert["event_id"] == alert_id("d-1", "trust_floor_violation")
