"""The enhancement plans for `trust_policy` enhancements: the ramp from activation to full
or rollback, on the outcomes the outcomes agent feeds back (`FEED_POLICY`).

The stand-ins and helpers are `test_plan`'s: each plan applies its writes to a `FakeView`
the next one reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
import pytest

from resontinex.agents.effects import Effects
from resontinex.agents.enhancement import (FEED_POLICY, POLICY_KINDS, STATE_TABLE, Context, EnhancementConfig, Ramp,
                                           RampSettings, Tally, candidate_problem, enhancement_config_from,
                                           plan_feed, plan_submissions)
from resontinex.agents.router import RoutingConfig
from resontinex.agents.trust import default_config
from resontinex.topics import partition_of

from .test_plan import (EID, EID2, OTHER, P, TENANT, T, FakeView, alerts, as_records, assert_on_the_wire, codes,
                        command, counts, dead_letters, events, feed, moves, outputs, sub_record, submission, submit,
                        tick, well_formed, writes)

MIN = 5
PCFG = enhancement_config_from({
    "telemetry": {"window": "PT1S", "grace": "PT0.1S", "keep": "PT60S"},
    "monitor": {"cooldown": {"critical": "PT10S", "consecutive": "PT5S", "canary_failed": "PT7S"}},
    "canary": {"interval": "PT1S"},
    "policy": {"min_outcomes": MIN},
})
CANARY_FAILED_S = 7.0
PAYLOAD = {"trust_floor": 0.7}


def policy(view: FakeView, now: float = T, cfg: EnhancementConfig = PCFG, **fields: Any) -> Effects:
    """A `trust_policy` submission through the plans (its canary share 0.2 unless given)."""
    fields = {"kind": "trust_policy", "payload": PAYLOAD, "canary_share": 0.2, "requirements": []} | fields
    return submit(view, now, cfg, **fields)


def outcome(i: int, *, step: int, arm: str = "current", verb: str = "execute", shadow_verb: str | None = None,
            label: bool | None = True, success: bool | None = True, prefix: str = "o") -> dict[str, Any]:
    return {"outcome_id": f"{prefix}-{step}-{arm}-{i}", "decision_id": f"d-{prefix}-{step}-{arm}-{i}", "arm": arm,
            "step": step, "verb": verb, "shadow_verb": shadow_verb, "label": label, "success": success}


def item(outcomes: Sequence[dict[str, Any]], enhancement_id: str = EID, tenant: str = TENANT) -> dict[str, Any]:
    return {"type": FEED_POLICY, "tenant": tenant, "enhancement_id": enhancement_id, "outcomes": list(outcomes)}


def good_outcomes(step: int, n: int = MIN, enhancement_id: str = EID) -> dict[str, Any]:
    """Both arms right every time (in shadow: the candidate's verdict agrees)."""
    if step == 0:
        return item([outcome(i, step=0, shadow_verb="execute") for i in range(n)], enhancement_id)
    return item([outcome(i, step=step, arm=arm) for arm in ("current", "candidate") for i in range(n)],
                enhancement_id)


def bad_outcomes(step: int, n: int = MIN) -> dict[str, Any]:
    """The current arm right every time, the candidate wrong every time."""
    if step == 0:
        return item([outcome(i, step=0, shadow_verb="review") for i in range(n)])
    return item([outcome(i, step=step, arm="current") for i in range(n)]
                + [outcome(i, step=step, arm="candidate", verb="review") for i in range(n)])


def ramp_of(view: FakeView, enhancement_id: str = EID) -> Ramp:
    e = view.state(enhancement_id)
    assert e.ramp is not None, f"{enhancement_id} has no ramp"
    return Ramp.from_dict(e.ramp)


def test_trust_and_routing_policies_are_the_policy_kinds() -> None:
    assert POLICY_KINDS == ("trust_policy", "routing_policy")


# === activation starts the ramp


@pytest.mark.parametrize(("share", "steps"), [
    (0.2, [0.0, 0.2, 0.5, 1.0]),  # the submission's share replaces the first step after shadow
    (0.0, [0.0, 0.1, 0.5, 1.0]),
    (0.5, [0.0, 0.5, 1.0]),
])
def test_activation_starts_the_ramp_in_shadow(share: float, steps: list[float]) -> None:
    view = FakeView()
    effects = policy(view, canary_share=share)
    assert moves(effects) == [(None, "pending", "submitted"), ("pending", "validated", "preflight_passed"),
                              ("validated", "active", "activated")]
    activated = events(effects)[-1]
    assert (activated["phase"], activated["share"]) == ("canary", 0.0)
    assert activated["evidence"]["ramp"] == steps
    assert_on_the_wire(effects)
    e = view.state()
    assert (e.state, e.phase, e.share, e.activated_at) == ("active", "canary", 0.0, T)
    assert e.ramp == Ramp.start(steps, T).as_dict()
    r = ramp_of(view)
    assert (r.step, r.shadow, r.tallies) == (0, True, {"current": Tally(), "candidate": Tally()})


def test_without_a_shadow_step_in_the_config_the_canary_share_is_the_first_step() -> None:
    cfg = replace(PCFG, policy=RampSettings(steps=(0.1, 0.5, 1.0), min_outcomes=MIN))
    view = FakeView()
    activated = events(policy(view, cfg=cfg, canary_share=0.2))[-1]
    assert (activated["phase"], activated["share"], activated["evidence"]["ramp"]) == ("canary", 0.2,
                                                                                        [0.2, 0.5, 1.0])
    assert ramp_of(view).steps == (0.2, 0.5, 1.0)


def test_a_canary_share_of_one_activates_in_full_with_a_one_step_ramp() -> None:
    view = FakeView()
    activated = events(policy(view, canary_share=1.0))[-1]
    assert (activated["phase"], activated["share"], activated["evidence"]["ramp"]) == ("full", 1.0, [1.0])
    e = view.state()
    assert (e.phase, e.share) == ("full", 1.0) and ramp_of(view).last
    # full: nothing left to ramp, however good the outcomes
    feed(view, [item([outcome(i, step=0, arm="candidate") for i in range(MIN)])], cfg=PCFG)
    assert events(tick(view, T + 1, PCFG)) == []


def test_other_kinds_get_no_ramp() -> None:
    view = FakeView()
    submit(view, T, PCFG, canary_share=0.2)  # a model switch
    e = view.state()
    assert (e.kind, e.phase, e.share, e.ramp) == ("model", "canary", 0.2, None)


# === FEED_POLICY: outcomes tallied


def test_policy_outcomes_are_tallied_on_the_ramp_once() -> None:
    view = FakeView()
    policy(view)
    effects = feed(view, [item([outcome(0, step=0, shadow_verb="review", label=True),
                                outcome(1, step=0, verb="review", shadow_verb="review", label=False, success=None),
                                outcome(2, step=1)])], cfg=PCFG)  # step 1's is not this step's
    assert not effects.outputs and not effects.audit  # a tally is state only
    (w,) = writes(effects, STATE_TABLE).values()
    assert w.partition == partition_of(TENANT, P)
    r = ramp_of(view)
    assert r.tallies == {"current": Tally(2, 2, 1, 1), "candidate": Tally(2, 1, 0, 0)}
    assert len(r.seen) == 2
    again = feed(view, [item([outcome(0, step=0, shadow_verb="review", label=True)])], cfg=PCFG)  # redelivered
    assert ramp_of(view).tallies == r.tallies
    assert counts(again).get(("ENHANCEMENT_TELEMETRY_DROPPED", "outcome_not_ramping")) is None


def test_policy_outcomes_of_two_items_in_one_batch_add_up() -> None:
    view = FakeView()
    policy(view)
    feed(view, [item([outcome(0, step=0, shadow_verb="execute")]), item([outcome(1, step=0, shadow_verb="execute")])],
         cfg=PCFG)
    assert ramp_of(view).tallies["current"].labelled == 2


def test_policy_outcomes_of_an_enhancement_not_ramping_are_dropped_and_counted() -> None:
    view = FakeView()
    submit(view, T, PCFG, canary_share=0.2)  # active, but a model: no ramp
    before = view.state()
    effects = feed(view, [item([outcome(0, step=0)]), item([outcome(0, step=0)], enhancement_id="nobody")],
                   cfg=PCFG)
    assert counts(effects)[("ENHANCEMENT_TELEMETRY_DROPPED", "outcome_not_ramping")] == 2
    assert not effects.late_writes and view.state() == before


def test_policy_outcomes_are_dropped_once_the_policy_is_not_active() -> None:
    view = FakeView()
    policy(view)
    command(view, "enhancement_retire", T + 1)
    assert view.state().state == "retired"
    effects = feed(view, [good_outcomes(0)], cfg=PCFG)
    assert counts(effects)[("ENHANCEMENT_TELEMETRY_DROPPED", "outcome_not_ramping")] == 1
    assert not effects.late_writes


def test_policy_outcomes_of_a_policy_waiting_in_validated_are_dropped() -> None:
    view = FakeView()
    policy(view)
    policy(view, enhancement_id=EID2, event_id="sub-2")
    assert view.state(EID2).state == "validated"
    effects = feed(view, [good_outcomes(0, enhancement_id=EID2)], cfg=PCFG)
    assert counts(effects)[("ENHANCEMENT_TELEMETRY_DROPPED", "outcome_not_ramping")] == 1
    assert view.state(EID2).ramp is None


# === the tick: the ramp judged


def test_a_step_without_enough_outcomes_waits() -> None:
    view = FakeView()
    policy(view)
    feed(view, [good_outcomes(0, n=MIN - 1)], cfg=PCFG)
    before = view.state()
    effects = tick(view, T + 1, PCFG)
    assert not effects.outputs and not effects.audit
    assert view.state() == before
    assert counts(effects).get(("ENHANCEMENT_CANARY_JUDGEMENTS", "wait")) is None


def test_a_passed_step_ramps_to_the_next_with_an_event_an_alert_and_audit_records() -> None:
    view = FakeView()
    policy(view)
    feed(view, [good_outcomes(0)], cfg=PCFG)
    effects = tick(view, T + 1, PCFG)
    assert moves(effects) == [("active", "active", "ramp_step")]
    (event,) = events(effects)
    assert (event["phase"], event["share"], event["operator_id"]) == ("canary", 0.2, None)
    assert event["evidence"]["step"] == 0 and event["evidence"]["tallies"]["candidate"]["labelled"] == MIN
    (alert,) = alerts(effects)
    assert (alert["kind"], alert["severity"], alert["tenant"]) == ("enhancement_ramp", "info", TENANT)
    assert alert["details"] == {"enhancement_id": EID, "share": 0.2, "step": 1}
    assert "20%" in alert["message"] and "step 1 of 3" in alert["message"]
    assert [a.item["kind"] for a in effects.audit] == ["state_change", "alert"]
    assert_on_the_wire(effects)
    assert counts(effects)[("ENHANCEMENT_CANARY_JUDGEMENTS", "pass")] == 1
    e = view.state()
    assert (e.state, e.phase, e.share) == ("active", "canary", 0.2)
    r = ramp_of(view)
    # a fresh tally for the new step, which starts now
    assert (r.step, r.share, r.since, r.tallies, r.seen) == (1, 0.2, T + 1,
                                                             {"current": Tally(), "candidate": Tally()}, ())


def test_the_ramp_goes_step_by_step_to_full_and_stops_there() -> None:
    view = FakeView()
    policy(view)
    shares: list[tuple[str, str | None, float | None]] = []
    for step in range(3):
        feed(view, [good_outcomes(step)], cfg=PCFG)
        effects = tick(view, T + 1 + step, PCFG)
        (event,) = events(effects)
        shares.append((event["reason"]["code"], event["phase"], event["share"]))
        assert [a["kind"] for a in alerts(effects)] == ["enhancement_ramp"]
        assert_on_the_wire(effects)
    assert shares == [("ramp_step", "canary", 0.2), ("ramp_step", "canary", 0.5), ("canary_promoted", "full", 1.0)]
    e = view.state()
    assert (e.state, e.phase, e.share) == ("active", "full", 1.0)
    assert ramp_of(view).step == 3 and ramp_of(view).last
    # in full nothing more is judged
    feed(view, [good_outcomes(3)], cfg=PCFG)
    later = tick(view, T + 10, PCFG)
    assert not later.outputs and view.state().phase == "full"


def test_outcomes_of_an_earlier_step_do_not_count_for_the_next() -> None:
    view = FakeView()
    policy(view)
    feed(view, [good_outcomes(0)], cfg=PCFG)
    tick(view, T + 1, PCFG)
    feed(view, [good_outcomes(0, n=3 * MIN)], cfg=PCFG)  # late outcomes of shadow decisions
    assert ramp_of(view).tallies == {"current": Tally(), "candidate": Tally()}
    assert not tick(view, T + 2, PCFG).outputs


@pytest.mark.parametrize("step", [0, 1])
def test_a_failed_step_rolls_back_and_cools_down(step: int) -> None:
    view = FakeView()
    policy(view)
    if step:
        feed(view, [good_outcomes(0)], cfg=PCFG)
        tick(view, T + 1, PCFG)
    feed(view, [bad_outcomes(step)], cfg=PCFG)
    effects = tick(view, T + 2, PCFG)
    assert moves(effects) == [("active", "deactivated", "policy_rolled_back"),
                              ("deactivated", "cooldown", "policy_rolled_back")]
    deactivated, cooldown = events(effects)
    assert "rolled back" in deactivated["reason"]["message"] and "accuracy" in deactivated["reason"]["message"]
    assert deactivated["evidence"]["accuracy"]["drop"] == 1.0
    assert [(a["kind"], a["severity"]) for a in alerts(effects)] == [("enhancement_deactivated", "warning")]
    assert counts(effects)[("ENHANCEMENT_CANARY_JUDGEMENTS", "fail")] == 1
    assert_on_the_wire(effects)
    e = view.state()
    assert (e.state, e.phase, e.share, e.ramp, e.deactivations) == ("cooldown", None, None, None, 1)
    assert e.cooldown_until == T + 2 + CANARY_FAILED_S
    assert cooldown["evidence"]["cooldown_s"] == CANARY_FAILED_S
    # no more outcomes counted while it cools down
    assert counts(feed(view, [good_outcomes(0)], cfg=PCFG))[("ENHANCEMENT_TELEMETRY_DROPPED",
                                                            "outcome_not_ramping")] == 1


def test_after_the_cooldown_the_policy_starts_a_new_ramp_in_shadow() -> None:
    view = FakeView()
    policy(view)
    feed(view, [bad_outcomes(0)], cfg=PCFG)
    tick(view, T + 1, PCFG)
    assert not tick(view, T + 1 + CANARY_FAILED_S - 0.5, PCFG).outputs
    effects = tick(view, T + 1 + CANARY_FAILED_S, PCFG)
    assert moves(effects) == [("cooldown", "active", "cooldown_over")]
    e = view.state()
    assert (e.state, e.phase, e.share) == ("active", "canary", 0.0)
    assert e.ramp == Ramp.start((0.0, 0.2, 0.5, 1.0), T + 1 + CANARY_FAILED_S, activation=1).as_dict()


# === manual mode holds


def manual_policy(view: FakeView) -> None:
    policy(view)
    view.store(replace(view.state(), mode="manual"))


def test_manual_holds_a_passed_step_until_approved() -> None:
    view = FakeView()
    manual_policy(view)
    feed(view, [good_outcomes(0)], cfg=PCFG)
    held = tick(view, T + 1, PCFG)
    assert events(held) == []
    (alert,) = alerts(held)
    assert alert["kind"] == "enhancement_approval_needed"
    assert (alert["details"]["to_state"], alert["details"]["reason"]) == ("active", "ramp_step")
    e = view.state()
    assert (e.share, e.awaiting.to_state if e.awaiting else None) == (0.0, "active")
    assert ramp_of(view).step == 0
    assert not tick(view, T + 2, PCFG).outputs  # held: alerted once, nothing more

    approved = command(view, "enhancement_approve", T + 3)
    assert moves(approved) == [("active", "active", "ramp_step")]
    (event,) = events(approved)
    assert (event["share"], event["operator_id"]) == (0.2, "op-7")
    assert event["evidence"]["approval"]["command_event_id"] == "cmd-1"
    assert [a["kind"] for a in alerts(approved)] == ["enhancement_ramp"]
    e = view.state()
    assert (e.share, e.awaiting) == (0.2, None) and ramp_of(view).step == 1 and ramp_of(view).since == T + 3


def test_manual_holds_a_rollback_until_approved() -> None:
    view = FakeView()
    manual_policy(view)
    feed(view, [bad_outcomes(0)], cfg=PCFG)
    held = tick(view, T + 1, PCFG)
    assert events(held) == []
    assert [(a["kind"], a["details"]["to_state"], a["details"]["reason"]) for a in alerts(held)] == [
        ("enhancement_approval_needed", "deactivated", "policy_rolled_back")]
    e = view.state()
    assert (e.state, e.share) == ("active", 0.0) and e.awaiting is not None

    approved = command(view, "enhancement_approve", T + 2)
    assert moves(approved) == [("active", "deactivated", "policy_rolled_back"),
                               ("deactivated", "cooldown", "policy_rolled_back")]
    assert all(ev["operator_id"] == "op-7" for ev in events(approved))
    e = view.state()
    assert (e.state, e.ramp, e.cooldown_until) == ("cooldown", None, T + 2 + CANARY_FAILED_S)


# === one trust policy per tenant at a time


def test_a_second_trust_policy_of_the_tenant_waits_in_validated_until_the_first_is_not_active() -> None:
    view = FakeView()
    policy(view)
    second = policy(view, enhancement_id=EID2, event_id="sub-2")
    assert moves(second) == [(None, "pending", "submitted"), ("pending", "validated", "preflight_passed")]
    assert not alerts(second)
    assert not tick(view, T + 1, PCFG).outputs  # still waiting
    assert view.state(EID2).state == "validated"

    command(view, "enhancement_retire", T + 2)
    effects = tick(view, T + 3, PCFG)
    assert moves(effects) == [("validated", "active", "activated")]
    e = view.state(EID2)
    assert (e.state, e.phase, e.share) == ("active", "canary", 0.0)
    assert e.ramp is not None and e.ramp["since"] == T + 3


def test_a_rolled_back_policy_frees_the_slot_for_the_one_waiting() -> None:
    """Only an *active* policy holds the slot: one rolled back leaves it to the other, and
    is the one waiting when its cooldown ends."""
    view = FakeView()
    policy(view)
    policy(view, enhancement_id=EID2, event_id="sub-2")
    feed(view, [bad_outcomes(0)], cfg=PCFG)
    effects = tick(view, T + 1, PCFG)
    assert moves(effects) == [("active", "deactivated", "policy_rolled_back"),
                              ("deactivated", "cooldown", "policy_rolled_back"),
                              ("validated", "active", "activated")]
    assert view.state(EID2).state == "active"
    assert not tick(view, T + 1 + CANARY_FAILED_S, PCFG).outputs  # EID's cooldown is over: it waits
    e = view.state(EID)
    assert e.state == "cooldown"


def test_other_kinds_and_other_tenants_are_not_held_by_an_active_trust_policy() -> None:
    view = FakeView()
    policy(view)
    model = submit(view, T, PCFG, enhancement_id=EID2, event_id="sub-2", canary_share=0.2)
    assert moves(model)[-1] == ("validated", "active", "activated")
    other = policy(view, enhancement_id="enh-9", event_id="sub-9", tenant=OTHER)
    assert moves(other)[-1] == ("validated", "active", "activated")


def test_a_routing_policy_ramps_like_a_trust_policy_and_waits_while_one_is_active() -> None:
    view = FakeView()
    policy(view)
    routing = policy(view, enhancement_id=EID2, event_id="sub-2", kind="routing_policy", payload={"epsilon": 0.05})
    assert moves(routing)[-1] == ("pending", "validated", "preflight_passed")  # waits: EID is the policy
    command(view, "enhancement_retire", T + 1, event_id="cmd-1")
    tick(view, T + 2, PCFG)
    assert view.state(EID2).state == "active"
    assert ramp_of(view, EID2).steps == (0.0, 0.2, 0.5, 1.0)


def test_approving_a_second_trust_policy_while_the_first_is_active_is_a_dead_letter_and_it_stays_held() -> None:
    view = FakeView()
    policy(view)
    policy(view, enhancement_id=EID2, event_id="sub-2", mode="semi_automatic")
    held = view.state(EID2)
    assert held.state == "validated" and held.awaiting is not None and held.awaiting.to_state == "active"

    refused = command(view, "enhancement_approve", T + 1, enhancement_id=EID2)
    assert codes(refused) == ["invalid_command"]
    (letter,) = dead_letters(refused)
    assert EID in letter["error"]["message"] and "one trust or routing policy at a time" in letter["error"]["message"]
    assert not events(refused) and not refused.late_writes
    assert view.state(EID2) == held  # still held, the command not recorded as applied

    command(view, "enhancement_retire", T + 2, event_id="cmd-2")
    approved = command(view, "enhancement_approve", T + 3, enhancement_id=EID2, event_id="cmd-3")
    assert moves(approved) == [("validated", "active", "activated")]
    assert view.state(EID2).ramp is not None


def test_a_policy_reactivating_after_cooldown_waits_while_another_is_active() -> None:
    view = FakeView()
    policy(view)
    feed(view, [bad_outcomes(0)], cfg=PCFG)
    tick(view, T + 1, PCFG)  # EID cools down
    policy(view, T + 2, enhancement_id=EID2, event_id="sub-2")  # takes the slot
    assert view.state(EID2).state == "active"
    assert not tick(view, T + 1 + CANARY_FAILED_S, PCFG).outputs
    assert view.state(EID).state == "cooldown"
    command(view, "enhancement_retire", T + 10, enhancement_id=EID2)
    assert moves(tick(view, T + 11, PCFG)) == [("cooldown", "active", "cooldown_over")]


# === preflight: the payload check


def checked_ctx(now: float = T) -> Context:
    def check(kind: str, payload: Any) -> str | None:  # the shell's PolicyBook.check, with the default files
        return candidate_problem(kind, payload, default_config(), RoutingConfig())

    return Context(PCFG, partitions=P, policy_version="pv", now=now, installed={"numpy": "2.1.0"}.get,
                   payload_check=check)


def submit_checked(view: FakeView, **fields: Any) -> Effects:
    defaults: dict[str, Any] = {"kind": "trust_policy", "canary_share": 0.2, "requirements": []}
    body = submission(**(defaults | fields))
    sent = view.apply(well_formed(plan_submissions([sub_record(body)], view, checked_ctx())))
    assert codes(sent) == []
    return view.apply(well_formed(plan_feed(as_records(outputs(sent, "enhancement_feed")), view, checked_ctx())))


def test_a_failing_payload_check_rejects_with_a_payload_check_in_the_evidence() -> None:
    view = FakeView()
    effects = submit_checked(view, payload={"risk_tiers": {"review": 0.25}})  # the schema holds; the result not
    assert moves(effects) == [(None, "pending", "submitted"), ("pending", "rejected", "preflight_failed")]
    rejected = events(effects)[1]
    evidence = rejected["evidence"]
    assert list(evidence) == ["schema", "payload", "requirements", "thresholds"]
    assert (evidence["payload"]["passed"], evidence["payload"]["score"]) == (False, 0.0)
    assert "risk_tiers.review" in evidence["payload"]["problem"]
    assert evidence["schema"]["passed"] and evidence["thresholds"]["passed"]
    assert "payload: the trust_gate.yaml configuration it makes is invalid" in rejected["reason"]["message"]
    assert [a["kind"] for a in alerts(effects)] == ["enhancement_rejected"]
    assert view.state().state == "rejected" and view.state().ramp is None


def test_a_routing_policy_that_makes_an_invalid_router_configuration_is_rejected() -> None:
    view = FakeView()
    effects = submit_checked(view, kind="routing_policy", payload={"epsilon": 0.001})  # below epsilon_min 0.01
    (rejected,) = [e for e in events(effects) if e["to_state"] == "rejected"]
    assert "epsilon_min: must not exceed epsilon" in rejected["evidence"]["payload"]["problem"]
    assert view.state().state == "rejected"


def test_a_passing_payload_check_is_listed_and_the_policy_activates() -> None:
    view = FakeView()
    effects = submit_checked(view, payload=PAYLOAD)
    assert moves(effects)[-1] == ("validated", "active", "activated")
    payload_check = events(effects)[1]["evidence"]["payload"]
    assert payload_check == {"passed": True, "score": 1.0, "problem": None}


def test_the_payload_check_is_not_asked_when_the_schema_fails() -> None:
    view = FakeView()
    effects = submit_checked(view, payload={"trust_floor": 2.0})
    evidence = events(effects)[1]["evidence"]
    assert "payload" not in evidence and not evidence["schema"]["passed"]
    assert view.state().state == "rejected"


def test_a_feed_item_of_policy_outcomes_is_json_on_the_wire() -> None:
    """`FEED_POLICY` items are what the outcomes agent sends: plain JSON."""
    assert orjson.loads(orjson.dumps(good_outcomes(1)))["type"] == FEED_POLICY == "policy_outcomes"


def test_two_trust_policies_of_a_tenant_in_one_feed_batch_activate_one() -> None:
    view = FakeView()
    bodies_ = [submission(EID, kind="trust_policy", payload=PAYLOAD, canary_share=0.2, requirements=[]),
               submission(EID2, event_id="sub-2", kind="trust_policy", payload={"trust_floor": 0.65},
                          canary_share=0.2, requirements=[])]
    sent = view.apply(well_formed(plan_submissions([sub_record(b, offset=i) for i, b in enumerate(bodies_)], view,
                                                   checked_ctx())))
    effects = view.apply(well_formed(plan_feed(as_records(outputs(sent, "enhancement_feed")), view, checked_ctx())))
    assert [m for m in moves(effects) if m[1] == "active"] == [("validated", "active", "activated")]
    assert (view.state(EID).state, view.state(EID2).state) == ("active", "validated")
