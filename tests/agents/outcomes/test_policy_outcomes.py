"""Outcomes of decisions made while the tenant's policy was under canary: forwarded to the
enhancement's ramp as `FEED_POLICY` items on the internal feed (and, for a routing policy,
taught to its candidate router too)."""

from __future__ import annotations

from typing import Any

import orjson

from resontinex.agents.effects import Effects, Output
from resontinex.agents.enhancement import FEED_POLICY, Ramp
from resontinex.agents.outcomes import Known

from resontinex.agents.gate import Candidate, candidate_of, router_value
from resontinex.agents.router import RouterState, candidate_state, routing_config_from

from .test_plan import Views, cfg, dead_letter_codes, outcome, pending, plan, routed_view


def part(enhancement_id: str = "floor-70", arm: str = "candidate", step: int = 2, verb: str = "review",
         shadow: dict[str, Any] | None = None) -> dict[str, Any]:
    """A decision's `canary` part with its verb, as the partition state remembers it."""
    return {"enhancement_id": enhancement_id, "arm": arm, "share": 0.5, "step": step,
            "candidate_policy_version": "pv-cand", "shadow": shadow, "verb": verb}


def fed(effects: Effects) -> list[tuple[Output, dict[str, Any]]]:
    return [(o, orjson.loads(o.value)) for o in effects.outputs if o.topic == "enhancement_feed"]


def test_an_outcome_of_a_canary_decision_goes_to_its_enhancements_ramp() -> None:
    view = Views({(0, "d-1"): Known("acme", 0.66, None, part())})
    e = plan([outcome("d-1", 4, label=False, success=True)], view)
    ((o, body),) = fed(e)
    assert (o.partition, o.key) == (0, b"acme")
    assert body == {"type": FEED_POLICY, "tenant": "acme", "enhancement_id": "floor-70", "outcomes": [
        {"outcome_id": "o-4", "decision_id": "d-1", "arm": "candidate", "step": 2, "activation": 0, "verb": "review",
         "part_verb": None, "shadow_verb": None, "label": False, "success": True}]}
    assert dead_letter_codes(e) == []


def test_a_shadow_decisions_outcome_carries_the_candidates_verdict() -> None:
    shadow = {"verb": "review", "tier": "monitor", "score": 0.6666, "policy_version": "pv-cand"}
    view = Views({(0, "d-1"): Known("acme", 0.66, None, part(arm="current", step=0, verb="execute",
                                                               shadow=shadow))})
    ((_, body),) = fed(plan([outcome("d-1", 0, label=True)], view))
    (o,) = body["outcomes"]
    assert (o["arm"], o["step"], o["verb"], o["shadow_verb"], o["label"], o["success"]) == (
        "current", 0, "execute", "review", True, True)


def test_one_item_per_tenant_and_enhancement_with_its_outcomes_in_order() -> None:
    view = Views({
        (3, "a-1"): Known("acme", 0.7, None, part("floor-70", arm="candidate")),
        (3, "a-2"): Known("acme", 0.7, None, part("floor-70", arm="current", verb="execute")),
        (3, "a-3"): Known("acme", 0.7, None, None),  # decided before the canary
        (3, "g-1"): Known("globex", 0.7, None, part("tiers-2", step=1)),
        (3, "a-4"): Known("acme", 0.7, None, part("floor-70", arm="candidate")),
    })
    records = [outcome("a-1", 0, partition=3, label=True), outcome("g-1", 1, tenant="globex", partition=3),
               outcome("a-2", 2, partition=3, success=False), outcome("a-3", 3, partition=3, label=True),
               outcome("a-4", 4, partition=3)]
    items = fed(plan(records, view))
    assert [(o.partition, o.key, b["tenant"], b["enhancement_id"]) for o, b in items] == [
        (3, b"acme", "acme", "floor-70"), (3, b"globex", "globex", "tiers-2")]
    acme = items[0][1]["outcomes"]
    assert [(x["decision_id"], x["arm"], x["verb"], x["label"], x["success"]) for x in acme] == [
        ("a-1", "candidate", "review", True, True), ("a-2", "current", "execute", None, False),
        ("a-4", "candidate", "review", None, True)]
    (globex,) = items[1][1]["outcomes"]
    assert (globex["decision_id"], globex["step"]) == ("g-1", 1)


def test_outcomes_of_decisions_without_a_canary_part_feed_nothing() -> None:
    view = Views({(0, f"d-{i}"): Known("acme", 0.5, None) for i in range(3)})
    e = plan([outcome(f"d-{i}", i, label=i % 2 == 0) for i in range(3)], view)
    assert fed(e) == []
    assert [w.table for w in e.late_writes] == ["trust-calibration"]  # the labels still calibrate


def test_an_outcome_refused_as_a_dead_letter_feeds_nothing() -> None:
    view = Views({(0, "d-1"): Known("other", 0.5, None, part())})  # another tenant's decision
    e = plan([outcome("d-1", 0), outcome("d-9", 1)], view)
    assert dead_letter_codes(e) == ["unknown_decision", "unknown_decision"]
    assert fed(e) == []


def test_a_late_outcome_of_a_routed_canary_decision_feeds_nothing() -> None:
    config = cfg(pending_ttl_s=60)
    view = Views({(0, "d-1"): Known("acme", 0.8, pending("d-1", config, at=1_700_000_000.0 - 61), part())})
    e = plan([outcome("d-1", 0)], view, config)
    assert dead_letter_codes(e) == ["expired_decision"] and fed(e) == []


def test_a_routed_canary_decisions_outcome_teaches_the_router_and_the_ramp() -> None:
    config = cfg()
    view = Views({(0, "d-1"): Known("acme", 0.8, pending("d-1", config), part(arm="current", verb="execute"))})
    e = plan([outcome("d-1", 0, label=True)], view, config)
    assert [w.table for w in e.early_writes] == ["router-state"]
    ((_, body),) = fed(e)
    assert body["outcomes"][0]["arm"] == "current"


def test_a_candidate_router_learns_from_every_routed_outcome_once_and_is_kept() -> None:
    config = cfg()
    lenient = routing_config_from({"mode": "lenient"})
    candidate = Candidate("lenient", 1, lenient, candidate_state(RouterState.fresh(config.routing), lenient))
    view = routed_view(config, "d-1", "d-2")
    view.routers["acme"] = router_value(RouterState.fresh(config.routing), [], ["imp-1"], candidate)
    e = plan([outcome("d-1", 0), outcome("d-2", 1), outcome("d-1", 2)], view, config)
    (write,) = e.early_writes
    kept = candidate_of(write.value)
    assert kept is not None and (kept.enhancement_id, kept.activation, kept.cfg) == ("lenient", 1, lenient)
    current = RouterState.from_dict(write.value["state"], config.routing)
    assert kept.state.stats.outcomes == current.stats.outcomes == 2  # each decision once, whichever router chose
    key = "llm_inference:a100:us-west"
    assert kept.state.policy.value(key, "akash") == current.policy.value(key, "akash") is not None
    assert write.value["imports"] == ["imp-1"]


def test_the_items_are_what_the_ramp_counts() -> None:
    """End to end within the cores: the outcomes agent's item, added to the ramp of its step."""
    view = Views({(0, f"d-{i}"): Known("acme", 0.7, None, part(arm=("candidate", "current")[i % 2], step=1,
                                                                  verb=("review", "execute")[i % 2]))
                  for i in range(4)})
    ((_, body),) = fed(plan([outcome(f"d-{i}", i, label=True) for i in range(4)], view))
    r = Ramp((0.0, 0.1, 0.5, 1.0), 1, 0.0).add(body["outcomes"])
    assert (r.tallies["candidate"].labelled, r.tallies["candidate"].correct) == (2, 0)
    assert (r.tallies["current"].labelled, r.tallies["current"].correct, r.tallies["current"].succeeded) == (2, 2, 2)
