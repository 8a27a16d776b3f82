"""The ramp of a `trust_policy` enhancement: its steps, its tallies per arm and its judgement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from resontinex.agents.enhancement import ConfigError, Ramp, RampSettings, Tally, ramp_steps


def outcome(i: int, *, arm: str = "current", step: int = 1, verb: str | None = "execute",
            shadow_verb: str | None = None, label: bool | None = True, success: bool | None = True,
            prefix: str = "o") -> dict[str, Any]:
    return {"outcome_id": f"{prefix}{i}", "decision_id": f"d-{prefix}{i}", "arm": arm, "step": step, "verb": verb,
            "shadow_verb": shadow_verb, "label": label, "success": success}


def at_step(step: int, steps: Sequence[float] = (0.0, 0.1, 0.5, 1.0)) -> Ramp:
    return Ramp(tuple(steps), step, 0.0)


def tallied(current: Tally, candidate: Tally, step: int = 1) -> Ramp:
    return Ramp((0.0, 0.1, 0.5, 1.0), step, 0.0, {"current": current, "candidate": candidate})


# --- ramp_steps


@pytest.mark.parametrize(("share", "steps", "expected"), [
    (0.2, (0.0, 0.1, 0.5, 1.0), (0.0, 0.2, 0.5, 1.0)),  # the submission's share replaces the first step
    (0.1, (0.0, 0.1, 0.5, 1.0), (0.0, 0.1, 0.5, 1.0)),
    (0.5, (0.0, 0.1, 0.5, 1.0), (0.0, 0.5, 1.0)),  # steps at or below it are dropped, not repeated
    (0.7, (0.0, 0.1, 0.5, 1.0), (0.0, 0.7, 1.0)),
    (0.0, (0.0, 0.1, 0.5, 1.0), (0.0, 0.1, 0.5, 1.0)),  # no share of its own: the settings' first step
    (1.0, (0.0, 0.1, 0.5, 1.0), (1.0,)),  # all at once: no shadow either
    (0.2, (0.1, 0.5, 1.0), (0.2, 0.5, 1.0)),  # settings without shadow: none
    (0.0, (0.25, 1.0), (0.25, 1.0)),
    (1.0, (0.1, 1.0), (1.0,)),
    (0.3, (0.0, 1.0), (0.0, 0.3, 1.0)),
])
def test_ramp_steps(share: float, steps: tuple[float, ...], expected: tuple[float, ...]) -> None:
    got = ramp_steps(share, RampSettings(steps=steps))
    assert got == expected
    RampSettings(steps=got)  # always a valid ramp: rising strictly to 1.0


# --- RampSettings


@pytest.mark.parametrize("steps", [(), (0.1, 0.5), (0.5, 0.1, 1.0), (0.0, 0.5, 0.5, 1.0), (-0.1, 1.0), (0.0, 1.5)])
def test_ramp_settings_refuse_steps_that_do_not_rise_strictly_to_one(steps: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="policy.steps"):
        RampSettings(steps=steps)


@pytest.mark.parametrize("steps", [(1.0,), (0.0, 1.0), (0.0, 0.1, 0.5, 1.0), (0.25, 1.0)])
def test_ramp_settings_accept_rising_steps(steps: tuple[float, ...]) -> None:
    assert RampSettings(steps=steps).steps == steps


# --- Tally.counted


@pytest.mark.parametrize(("verb", "label", "success", "expected"), [
    ("execute", True, True, Tally(1, 1, 1, 1)),  # executed, and rightly: correct; it succeeded
    ("execute", False, False, Tally(1, 0, 1, 0)),  # executed, wrongly
    ("review", False, None, Tally(1, 1, 0, 0)),  # held back, rightly
    ("review", True, True, Tally(1, 0, 0, 0)),  # held back wrongly; success counts only for executed ones
    ("abort", False, False, Tally(1, 1, 0, 0)),
    ("defer", True, None, Tally(1, 0, 0, 0)),
    ("execute", None, True, Tally(0, 0, 1, 1)),  # no label: success alone
    ("execute", None, False, Tally(0, 0, 1, 0)),
    ("execute", True, None, Tally(1, 1, 0, 0)),  # no success known: not among the executed
    (None, True, True, Tally()),  # no verb (nothing to judge)
    ("review", None, None, Tally()),
])
def test_tally_counted(verb: str | None, label: bool | None, success: bool | None, expected: Tally) -> None:
    assert Tally().counted(verb, label, success) == expected


def test_tally_rates() -> None:
    t = Tally()
    assert (t.accuracy, t.success) == (None, None)
    for verb, label, success in [("execute", True, True), ("execute", True, False), ("review", True, None),
                                 ("review", False, None)]:
        t = t.counted(verb, label, success)
    assert t == Tally(labelled=4, correct=3, executed=2, succeeded=1)
    assert (t.accuracy, t.success) == (0.75, 0.5)


# --- Ramp.add


def test_a_ramp_starts_at_its_first_step_with_empty_tallies() -> None:
    r = Ramp.start([0.0, 0.1, 1.0], since=5.0)
    assert (r.steps, r.step, r.since, r.share, r.shadow, r.last) == ((0.0, 0.1, 1.0), 0, 5.0, 0.0, True, False)
    assert r.tallies == {"current": Tally(), "candidate": Tally()} and r.seen == ()
    after = r.next(9.0)
    assert (after.step, after.since, after.share, after.shadow, after.last) == (1, 9.0, 0.1, False, False)
    assert after.tallies == {"current": Tally(), "candidate": Tally()}
    assert after.next(10.0).last


def test_add_counts_each_arm_of_this_step() -> None:
    r = at_step(1).add([outcome(0, arm="current"), outcome(1, arm="candidate", verb="review", label=False,
                                                            success=None),
                        outcome(2, arm="candidate", verb="execute", label=False, success=False)])
    assert r.tallies["current"] == Tally(1, 1, 1, 1)
    assert r.tallies["candidate"] == Tally(2, 1, 1, 0)
    assert r.seen == ("d-o0", "d-o1", "d-o2")  # decision ids: a decision's outcome counts once


def test_add_ignores_outcomes_of_other_steps() -> None:
    r = at_step(2).add([outcome(0, step=1), outcome(1, step=3), outcome(2, step=0), outcome(3, step=2)])
    assert r.tallies["current"] == Tally(1, 1, 1, 1)
    assert r.seen == ("d-o3",)


def test_add_counts_an_outcome_once_in_a_batch_and_across_batches() -> None:
    r = at_step(1).add([outcome(0), outcome(0), outcome(1)])
    assert r.tallies["current"].labelled == 2
    again = r.add([outcome(0), outcome(1, arm="candidate"), outcome(2)])
    assert again.tallies["current"].labelled == 3 and again.tallies["candidate"] == Tally()
    assert again.seen == ("d-o0", "d-o1", "d-o2")
    assert r.tallies["current"].labelled == 2  # the ramp is a value: `add` changed nothing of it


def test_in_shadow_both_arms_are_counted_from_the_same_outcomes() -> None:
    r = at_step(0).add([
        outcome(0, step=0, verb="execute", shadow_verb="review", label=True, success=True),
        outcome(1, step=0, verb="execute", shadow_verb="review", label=False, success=False),
        outcome(2, step=0, verb="review", shadow_verb="execute", label=True, success=None),
    ])
    assert r.shadow
    assert r.tallies["current"] == Tally(labelled=3, correct=1, executed=2, succeeded=1)
    # the candidate by the verb it would have given; it executed nothing, so no success
    assert r.tallies["candidate"] == Tally(labelled=3, correct=2, executed=0, succeeded=0)


def test_in_shadow_the_arm_field_does_not_matter() -> None:
    a = at_step(0).add([outcome(0, step=0, arm="current", shadow_verb="review", label=False)])
    b = at_step(0).add([outcome(0, step=0, arm="candidate", shadow_verb="review", label=False)])
    assert a.tallies == b.tallies == {"current": Tally(1, 0, 1, 1), "candidate": Tally(1, 1, 0, 0)}


def test_the_ids_remembered_are_bounded() -> None:
    from resontinex.agents.enhancement._ramp import SEEN_KEPT

    r = at_step(1).add(outcome(i) for i in range(SEEN_KEPT + 10))
    assert len(r.seen) == SEEN_KEPT and r.seen[-1] == f"d-o{SEEN_KEPT + 9}"
    assert r.tallies["current"].labelled == SEEN_KEPT + 10


# --- judge


S = RampSettings(min_outcomes=30, max_drop=0.05, alpha=0.05)


def test_judge_waits_until_each_arm_has_min_outcomes() -> None:
    j = tallied(Tally(100, 100, 100, 100), Tally(29, 29, 29, 29)).judge(S)
    assert j.verdict == "wait" and "29 of 30" in j.reason
    assert tallied(Tally(29, 0, 0, 0), Tally(100, 0, 0, 0)).judge(S).verdict == "wait"
    assert tallied(Tally(), Tally()).judge(S).verdict == "wait"
    # executed outcomes without labels do not count towards it
    assert tallied(Tally(0, 0, 100, 100), Tally(0, 0, 100, 0)).judge(S).verdict == "wait"


def test_judge_passes_equal_arms() -> None:
    j = tallied(Tally(30, 27, 20, 18), Tally(30, 27, 20, 18)).judge(S)
    assert j.verdict == "pass"
    assert j.evidence["accuracy"]["drop"] == 0.0 and j.evidence["success"]["drop"] == 0.0
    assert (j.evidence["step"], j.evidence["share"]) == (1, 0.1)
    assert j.evidence["tallies"]["candidate"]["accuracy"] == pytest.approx(0.9)


def test_judge_passes_a_better_candidate() -> None:
    assert tallied(Tally(40, 20, 30, 10), Tally(40, 40, 30, 30)).judge(S).verdict == "pass"


def test_judge_fails_a_candidate_clearly_worse_on_accuracy() -> None:
    j = tallied(Tally(40, 38, 20, 18), Tally(40, 20, 20, 18)).judge(S)
    assert j.verdict == "fail" and "accuracy" in j.reason and "success" not in j.reason
    acc = j.evidence["accuracy"]
    assert acc["drop"] == pytest.approx(0.45) and acc["p_value"] < 0.05


def test_judge_fails_a_candidate_clearly_worse_on_success() -> None:
    j = tallied(Tally(40, 36, 40, 39), Tally(40, 36, 40, 15)).judge(S)
    assert j.verdict == "fail" and "success" in j.reason and "accuracy" not in j.reason
    assert j.evidence["success"]["drop"] == pytest.approx(0.6) and j.evidence["success"]["p_value"] < 0.05


def test_a_drop_within_max_drop_passes_even_when_significant() -> None:
    current, candidate = Tally(20_000, 20_000, 0, 0), Tally(20_000, 19_400, 0, 0)  # 1.00 against 0.97
    j = tallied(current, candidate).judge(S)
    assert j.evidence["accuracy"]["p_value"] < 1e-9 and j.evidence["accuracy"]["drop"] == pytest.approx(0.03)
    assert j.verdict == "pass"
    stricter = RampSettings(min_outcomes=30, max_drop=0.02, alpha=0.05)
    assert tallied(current, candidate).judge(stricter).verdict == "fail"


def test_a_large_drop_without_significance_passes() -> None:
    j = tallied(Tally(30, 30, 0, 0), Tally(30, 28, 0, 0)).judge(S)  # 1.00 against 0.933: p ≈ 0.25
    assert j.evidence["accuracy"]["drop"] > S.max_drop and j.evidence["accuracy"]["p_value"] > S.alpha
    assert j.verdict == "pass"


def test_success_is_not_judged_when_an_arm_executed_nothing() -> None:
    """In shadow the candidate executed nothing: only accuracy is compared."""
    j = tallied(Tally(30, 30, 30, 30), Tally(30, 30, 0, 0), step=0).judge(S)
    assert j.verdict == "pass" and "success" not in j.evidence and "accuracy" in j.evidence


def test_a_drop_just_at_max_drop_passes_with_the_tolerance() -> None:
    # 0.95 against 1.00 is a drop of max_drop exactly (up to floating point)
    current, candidate = Tally(20_000, 20_000, 0, 0), Tally(20_000, 19_000, 0, 0)
    assert tallied(current, candidate).judge(S).verdict == "pass"


# --- as_dict / from_dict


def test_as_dict_round_trips_through_json() -> None:
    r = at_step(1).add([outcome(0), outcome(1, arm="candidate", verb="review", label=False, success=None)])
    d = orjson.loads(orjson.dumps(r.as_dict()))  # as a table keeps it
    assert d == {"steps": [0.0, 0.1, 0.5, 1.0], "step": 1, "since": 0.0, "activation": 0,
                 "tallies": {"current": {"labelled": 1, "correct": 1, "executed": 1, "succeeded": 1},
                             "candidate": {"labelled": 1, "correct": 1, "executed": 0, "succeeded": 0}},
                 "seen": ["d-o0", "d-o1"]}
    back = Ramp.from_dict(d)
    assert back == r
    assert back.add([outcome(0)]) == r  # the ids seen survive: a redelivery after a restart is still a repeat


def test_outcomes_of_an_earlier_activation_do_not_count() -> None:
    """Step numbers start again after a rollback: the activation tells the ramps apart."""
    r = Ramp.start((0.0, 0.5, 1.0), since=0.0, activation=1)
    late = {**outcome(0, step=0), "activation": 0}
    assert r.add([late]).tallies == r.tallies
    assert r.add([{**outcome(1, step=0), "activation": 1}]).tallies["current"].labelled == 1


def test_a_decision_reported_twice_counts_once() -> None:
    """Two outcomes (different event ids) of one decision: the ramp learns from it once."""
    r = at_step(1).add([outcome(0), {**outcome(0), "outcome_id": "o0-again", "label": False}])
    assert r.tallies["current"].labelled == 1


@pytest.mark.parametrize("field", ["part_verb", "trust_verb"])  # (`trust_verb`: fed before routing canaries)
def test_in_shadow_the_current_policy_is_judged_by_the_verdict_of_the_part_under_canary(field: str) -> None:
    """The final verb may be held back by the budget or the router, which the candidate's
    shadow verdict never ran: the verdicts of the part under canary are compared."""
    r = at_step(0).add([{**outcome(0, step=0, verb="defer", shadow_verb="execute"), field: "execute"}])
    assert r.tallies["current"].correct == r.tallies["candidate"].correct == 1
