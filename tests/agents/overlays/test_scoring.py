"""Every scoring rule of issue 4 item 8: unit tests and properties against an independent model."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from resontinex.agents.overlays import (
    CATEGORY_ALIASES,
    WEIGHTS,
    OverlaySet,
    Scenario,
    ScenarioError,
    Weights,
    complexity_level,
    keyword_hits,
    load_overlays,
    normalise_category,
    overlay_dirs,
    rank_overlays,
    select_overlay,
)

from ._support import ISSUE_CATEGORY_MAP, overlay, overlay_set

PACKAGED = load_overlays(overlay_dirs()).overlays
NAMES = ("observability_first", "rollback_first", "state_model_first")


def scores(scenario: dict[str, Any], overlays: OverlaySet = PACKAGED) -> dict[str, float]:
    return {s.name: s.score for s in rank_overlays(scenario, overlays)}


# --- category ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", sorted(ISSUE_CATEGORY_MAP))
def test_each_category_gives_its_primary_0_6_and_its_secondary_0_3(category: str) -> None:
    mapped = ISSUE_CATEGORY_MAP[category]
    got = scores({"category": category})
    assert got[mapped[0]] == 0.6
    if len(mapped) == 2:
        assert got[mapped[1]] == 0.3
    for other in set(NAMES) - set(mapped):
        assert got[other] == 0.0
    choice = select_overlay({"category": category}, PACKAGED)
    assert choice is not None
    assert (choice.name, choice.confidence, choice.category) == (mapped[0], 0.6, category)
    assert choice.fallbacks == mapped[1:]  # 0.3 > 0.1; the third scores 0


def test_customer_success_has_a_primary_only() -> None:
    choice = select_overlay({"category": "customer_success"}, PACKAGED)
    assert choice is not None
    assert (choice.name, choice.confidence, choice.fallbacks) == ("observability_first", 0.6, ())


def test_primary_and_secondary_weights_on_overlays_built_in_code() -> None:
    ov = overlay_set(overlay("p", primary=("ops",)), overlay("s", secondary=("ops",)), overlay("n", primary=("x",)))
    assert scores({"category": "ops"}, ov) == {"p": 0.6, "s": 0.3, "n": 0.0}


def test_an_unknown_or_absent_category_scores_nothing() -> None:
    for scenario in ({"category": "gardening"}, {"category": None}, {}, {"category": ""}, {"category": "--"}):
        assert set(scores(scenario).values()) == {0.0}
        assert select_overlay(scenario, PACKAGED) is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("financial_operations", "financial"),      # seed 000's example: prefix match
    ("Financial Operations", "financial"),
    ("FINANCIAL-OPS", "financial"),
    ("refund", "financial"),                    # alias
    ("Refunds", "financial"),
    ("payments_reconciliation", "financial"),   # alias of the first word
    ("security_operations", "security"),
    ("secops", "security"),
    ("service_management", "service_management"),
    ("ITSM", "service_management"),
    ("system_integration", "system_integration"),
    ("integration", "system_integration"),
    ("data_operations", "data_operations"),
    ("data_engineering", "data_operations"),
    ("compliance_management", "compliance"),
    ("regulatory_reporting", "compliance"),
    ("infrastructure_management", "infrastructure"),
    ("SRE", "infrastructure"),
    ("customer_success", "customer_success"),
    ("customer success team", "customer_success"),
    ("customer_support", "customer_success"),
    ("financially", None),                      # not a whole-word prefix
    ("fin", None),
    ("operations_financial", None),             # only leading words count
    ("gardening", None),
    ("", None),
    (None, None),
])
def test_category_normalisation(raw: str | None, expected: str | None) -> None:
    assert normalise_category(raw, PACKAGED.categories) == expected


def test_the_longest_leading_match_wins_and_an_alias_needs_its_target_known() -> None:
    assert normalise_category("data_operations_batch", {"data", "data_operations"}) == "data_operations"
    assert normalise_category("data_batch", {"data", "data_operations"}) == "data"
    assert normalise_category("refund", {"compliance"}) is None
    assert normalise_category("refund", {"payments"}, aliases={"refund": "payments"}) == "payments"


def test_every_alias_points_at_a_packaged_category() -> None:
    assert set(CATEGORY_ALIASES.values()) <= PACKAGED.categories
    for alias, target in CATEGORY_ALIASES.items():
        assert normalise_category(alias, PACKAGED.categories) == target


@given(st.sampled_from(sorted(ISSUE_CATEGORY_MAP)), st.lists(st.booleans(), min_size=30, max_size=30),
       st.sampled_from(["_", "-", " ", "  ", " - "]), st.sampled_from(["", "_operations", " management", "-team"]))
def test_any_casing_separators_and_suffix_name_the_same_category(category: str, upper: list[bool], sep: str,
                                                                 suffix: str) -> None:
    spelled = "".join(ch.upper() if up else ch for ch, up in zip(category, upper)).replace("_", sep)
    assert normalise_category(f"  {spelled}{suffix} ", PACKAGED.categories) == category


# --- complexity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "level"), [
    (0.0, "low"), (0.4, "low"), (math.nextafter(0.4, 1), "medium"), (0.5, "medium"), (0.7, "medium"),
    (math.nextafter(0.7, 1), "high"), (0.71, "high"), (1.0, "high"), (None, None),
])
def test_complexity_levels_and_their_exact_boundaries(value: float | None, level: str | None) -> None:
    assert complexity_level(value) == level


def test_exactly_0_7_is_not_high_and_exactly_0_4_is_low() -> None:
    ov = overlay_set(overlay("hi", complexity=("high",)), overlay("lo", complexity=("low",)),
                     overlay("mid", complexity=("medium",)))
    assert scores({"complexity": 0.7}, ov) == {"hi": 0.0, "lo": 0.0, "mid": 0.2}
    assert scores({"complexity": math.nextafter(0.7, 1)}, ov) == {"hi": 0.2, "lo": 0.0, "mid": 0.0}
    assert scores({"complexity": 0.4}, ov) == {"hi": 0.0, "lo": 0.2, "mid": 0.0}
    assert scores({"complexity": math.nextafter(0.4, 1)}, ov) == {"hi": 0.0, "lo": 0.0, "mid": 0.2}
    assert scores({}, ov) == {"hi": 0.0, "lo": 0.0, "mid": 0.0}


def test_packaged_complexity_listing() -> None:
    assert scores({"complexity": 0.9}) == {"rollback_first": 0.2, "state_model_first": 0.2, "observability_first": 0.0}
    assert scores({"complexity": 0.1}) == {"rollback_first": 0.0, "state_model_first": 0.0, "observability_first": 0.2}
    assert set(scores({"complexity": 0.55}).values()) == {0.0}  # the packaged overlays list no medium level


# --- keywords ------------------------------------------------------------------------------------------

KW = overlay_set(overlay("k", keywords=(("refund", "refunds"), "rollback", "ledger", "audit", "schema", "data loss")))


@pytest.mark.parametrize(("description", "hits", "score"), [
    ("", (), 0.0),
    ("refund", ("refund",), 0.05),
    ("Refund then ROLLBACK", ("refund", "rollback"), 0.1),
    ("refund refund refunds REFUND", ("refund",), 0.05),                  # distinct triggers, not occurrences
    ("refund rollback ledger", ("refund", "rollback", "ledger"), 0.15),
    ("refund rollback ledger audit", ("refund", "rollback", "ledger", "audit"), 0.2),
    ("refund rollback ledger audit schema", ("refund", "rollback", "ledger", "audit", "schema"), 0.2),  # the cap
    ("refund rollback ledger audit schema data-loss",
     ("refund", "rollback", "ledger", "audit", "schema", "data loss"), 0.2),
    ("prerefund rollbacks ledgers auditor", (), 0.0),                    # whole words only
    ("refund_flow/rollback-plan", ("refund", "rollback"), 0.1),           # _ - / separate words
    ("data, loss", ("data loss",), 0.05),                                 # a phrase: consecutive words
    ("data was lost", (), 0.0),
])
def test_keyword_hits_score_0_05_each_distinct_capped_at_0_2(description: str, hits: tuple[str, ...],
                                                             score: float) -> None:
    assert keyword_hits(description, KW["k"].keywords) == hits
    ranked = rank_overlays({"description": description}, KW)
    assert ranked[0].keywords_hit == hits
    assert ranked[0].score == score


def test_keywords_are_matched_in_the_description_only() -> None:
    assert scores({"category": "refund", "description": "nothing"}, KW) == {"k": 0.0}


def test_unicode_case_folding() -> None:
    ov = overlay_set(overlay("u", keywords=("straße", "ÉCHEC")))
    assert ov["u"].terms == ("strasse", "échec")  # casefolded
    assert keyword_hits("STRASSE Échec", ov["u"].keywords) == ("strasse", "échec")
    assert keyword_hits("Straße", ov["u"].keywords) == ("strasse",)


# --- totals, ties, fallbacks ---------------------------------------------------------------------------


def test_all_parts_add_and_the_most_is_exactly_1() -> None:
    ov = overlay_set(overlay("all", primary=("ops",), complexity=("high",), keywords=("a", "b", "c", "d", "e")))
    [best] = rank_overlays({"category": "ops", "complexity": 0.9, "description": "a b c d e"}, ov)
    assert (best.category_points, best.complexity_points, best.keyword_points, best.points) == (60, 20, 20, 100)
    assert best.score == 1.0


def test_the_total_is_capped_at_1() -> None:
    heavy = Weights(keyword=50, keyword_cap=100)
    ov = overlay_set(overlay("all", primary=("ops",), complexity=("high",), keywords=("a", "b")))
    [best] = rank_overlays({"category": "ops", "complexity": 0.9, "description": "a b"}, ov, heavy)
    assert best.category_points + best.complexity_points + best.keyword_points == 180
    assert best.points == 100 and best.score == 1.0
    choice = select_overlay({"category": "ops", "complexity": 0.9, "description": "a b"}, ov, heavy)
    assert choice is not None and choice.confidence == 1.0


def test_seed_000_example() -> None:
    choice = select_overlay({"category": "financial_operations", "complexity": 0.8,
                             "description": "Process refund with rollback requirements"}, PACKAGED)
    assert choice is not None
    assert choice.as_dict() == {"name": "rollback_first", "confidence": 0.9,
                                "fallbacks": ["observability_first", "state_model_first"]}
    assert (choice.category, choice.level) == ("financial", "high")


def test_fallbacks_need_strictly_more_than_0_1() -> None:
    best = overlay("best", primary=("ops",))
    exactly = overlay("exactly", keywords=("a", "b"))          # 2 hits: 0.1, not a fallback
    above = overlay("above", keywords=("a", "b", "c"))         # 3 hits: 0.15, a fallback
    ov = overlay_set(best, exactly, above)
    choice = select_overlay({"category": "ops", "description": "a b c"}, ov)
    assert choice is not None
    assert [(s.name, s.score) for s in choice.ranking] == [("best", 0.6), ("above", 0.15), ("exactly", 0.1)]
    assert choice.fallbacks == ("above",)


def test_at_most_two_fallbacks_the_next_two_of_the_ranking() -> None:
    ov = overlay_set(overlay("a", primary=("ops",)), overlay("b", secondary=("ops",)),
                     overlay("c", secondary=("ops",), keywords=("x",)), overlay("d", secondary=("ops",)))
    choice = select_overlay({"category": "ops", "description": "x"}, ov)
    assert choice is not None
    assert (choice.name, choice.fallbacks) == ("a", ("c", "b"))  # c 0.35, then b and d tie at 0.3: b first


def test_equal_scores_go_to_the_name_that_sorts_first_whatever_the_order_given() -> None:
    one, two = overlay("zeta", primary=("ops",)), overlay("alpha", primary=("ops",))
    for ov in (overlay_set(one, two), overlay_set(two, one)):
        choice = select_overlay({"category": "ops"}, ov)
        assert choice is not None
        assert (choice.name, choice.confidence, choice.fallbacks) == ("alpha", 0.6, ("zeta",))


def test_nothing_matching_is_no_choice_but_any_positive_score_is_one() -> None:
    assert select_overlay({"description": "water the plants"}, PACKAGED) is None
    assert select_overlay({"category": "refund"}, OverlaySet()) is None
    low = select_overlay({"description": "check the latency"}, PACKAGED)
    assert low is not None and (low.name, low.confidence, low.fallbacks) == ("observability_first", 0.05, ())


def test_scenario_validation() -> None:
    for bad in ({"complexity": 1.01}, {"complexity": -0.1}, {"complexity": float("nan")}, {"complexity": "high"},
                {"complexity": True}, {"category": 3}, {"description": ["refund"]}):
        with pytest.raises(ScenarioError):
            select_overlay(bad, PACKAGED)
    assert Scenario.of({"description": None}) == Scenario()


def test_the_contract_scenario_model_is_accepted() -> None:
    from resontinex.schemas import Scenario as WireScenario

    wire = WireScenario(category="compliance_management", complexity=0.3, description="audit the logs")
    choice = select_overlay(wire, PACKAGED)
    assert choice is not None
    assert (choice.name, choice.confidence) == ("observability_first", 0.85)  # 0.6 + 0.2 (low) + 0.05 (logs)
    assert choice.fallbacks == ("state_model_first",)  # 0.3 + 0.05 (audit)


# --- properties against an independent model -----------------------------------------------------------

VOCAB = ("refund", "rollback", "ledger", "audit", "schema", "latency", "outage", "monitor", "state", "cache")
CATS = ("financial", "security", "ops", "compliance")
LEVEL_NAMES = ("low", "medium", "high")


@st.composite
def overlay_sets(draw: st.DrawFn) -> OverlaySet:
    names = draw(st.lists(st.sampled_from(("a", "b", "c", "d", "e")), min_size=0, max_size=5, unique=True))
    built = []
    for name in names:
        primary = draw(st.lists(st.sampled_from(CATS), unique=True, max_size=2))
        secondary = draw(st.lists(st.sampled_from([c for c in CATS if c not in primary]), unique=True, max_size=2))
        built.append(overlay(name, primary=tuple(primary), secondary=tuple(secondary),
                             complexity=tuple(draw(st.lists(st.sampled_from(LEVEL_NAMES), unique=True))),
                             keywords=tuple(draw(st.lists(st.sampled_from(VOCAB), unique=True, max_size=8)))))
    return OverlaySet.of(built)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    picked = draw(st.lists(st.sampled_from(VOCAB + ("the", "and", "refunds", "pre")), max_size=12))
    seps = draw(st.lists(st.sampled_from([" ", ", ", "-", "_", "/", ". "]), min_size=len(picked), max_size=len(picked)))
    description = "".join(w.upper() if draw(st.booleans()) else w for pair in zip(picked, seps) for w in pair)
    return {"category": draw(st.none() | st.sampled_from(CATS + ("gardening",))),
            "complexity": draw(st.none() | st.floats(0, 1) | st.sampled_from([0.4, 0.7])),
            "description": description}


def expected_points(o: Any, scenario: dict[str, Any]) -> int:
    cat = scenario["category"]
    points = 60 if cat in o.primary else 30 if cat in o.secondary else 0
    c = scenario["complexity"]
    level = None if c is None else "high" if c > 0.7 else "low" if c <= 0.4 else "medium"
    points += 20 if level in o.complexity else 0
    tokens = set(scenario["description"].lower().replace(",", " ").replace("-", " ").replace("_", " ")
                 .replace("/", " ").replace(".", " ").split())
    points += min(20, 5 * len(set(o.terms) & tokens))
    return min(100, points)


@given(overlay_sets(), scenarios())
def test_every_score_follows_the_formula(ov: OverlaySet, scenario: dict[str, Any]) -> None:
    ranked = rank_overlays(scenario, ov)
    assert {s.name: s.points for s in ranked} == {o.name: expected_points(o, scenario) for o in ov.values()}
    for s in ranked:
        assert 0.0 <= s.score <= 1.0
        assert s.score == s.points / 100
        assert s.keyword_points == min(20, 5 * len(s.keywords_hit))
        assert len(set(s.keywords_hit)) == len(s.keywords_hit)


@given(overlay_sets(), scenarios())
def test_the_choice_is_the_top_of_the_ranking(ov: OverlaySet, scenario: dict[str, Any]) -> None:
    expected = sorted(((expected_points(o, scenario), o.name) for o in ov.values()), key=lambda p: (-p[0], p[1]))
    choice = select_overlay(scenario, ov)
    if not expected or expected[0][0] == 0:
        assert choice is None
        return
    assert choice is not None
    assert (choice.name, choice.confidence) == (expected[0][1], expected[0][0] / 100)
    assert choice.fallbacks == tuple(name for points, name in expected[1:3] if points > 10)
    assert all(s.score > 0.1 for s in choice.ranking if s.name in choice.fallbacks)


@given(overlay_sets(), scenarios(), st.permutations(range(5)))
def test_the_choice_does_not_depend_on_the_order_overlays_are_given(ov: OverlaySet, scenario: dict[str, Any],
                                                                     order: list[int]) -> None:
    items = list(ov.values())
    shuffled = OverlaySet.of([items[i] for i in order if i < len(items)])
    assert select_overlay(scenario, shuffled) == select_overlay(scenario, ov)


@given(st.text(max_size=200), st.sampled_from(VOCAB))
def test_a_trigger_counts_once_however_often_it_occurs(noise: str, word: str) -> None:
    ov = overlay_set(overlay("k", keywords=(word,)))
    assume(word not in noise.casefold())
    [one] = rank_overlays({"description": f"{noise} {word} {word} {word.upper()}"}, ov)
    assert one.keywords_hit == (word,) and one.points == 5


def test_default_weights_are_the_issue_numbers() -> None:
    assert WEIGHTS == Weights(primary=60, secondary=30, complexity=20, keyword=5, keyword_cap=20, total_cap=100,
                              fallback_floor=10, fallbacks=2)
    with pytest.raises(ValueError, match="Weights.keyword"):
        Weights(keyword=-1)
    with pytest.raises(ValueError, match="Weights.total_cap must be <= 100"):
        Weights(total_cap=101)
