"""The overrides of a tripwire downgrade mode (`downgrade_reasons`)."""

from __future__ import annotations

import pytest

from resontinex.agents.budget import ECONOMY, DowngradeMode, downgrade_reasons


def codes(mode: DowngradeMode, tokens: int | None = None, usd: float | None = None, score: float = 0.9) -> list[str]:
    return [r["code"] for r in downgrade_reasons(mode, estimate_tokens=tokens, estimate_usd=usd, score=score)]


@pytest.mark.parametrize(("tokens", "bites"), [(2001, True), (2000, False), (0, False), (None, False)])
def test_tokens_over_the_limit_strictly_bite(tokens: int | None, bites: bool) -> None:
    assert codes(ECONOMY, tokens=tokens) == (["downgrade_tokens_over_limit"] if bites else [])


@pytest.mark.parametrize(("usd", "bites"), [(1.000001, True), (1.0, False), (0.3, False), (None, False)])
def test_cost_over_the_limit_strictly_bites_in_micro_dollars(usd: float | None, bites: bool) -> None:
    assert codes(ECONOMY, usd=usd) == (["downgrade_cost_over_limit"] if bites else [])


def test_cost_limit_is_exact_for_decimal_sums() -> None:
    assert codes(DowngradeMode("m", max_estimate_usd=0.3), usd=0.1 + 0.2) == []  # 0.30000000000000004


@pytest.mark.parametrize(("score", "bites"), [(0.7499, True), (0.61, True), (0.75, False), (0.9, False)])
def test_a_score_below_the_raised_floor_bites(score: float, bites: bool) -> None:
    assert codes(ECONOMY, score=score) == (["downgrade_trust_floor"] if bites else [])


def test_review_all_bites_on_anything() -> None:
    assert codes(DowngradeMode("strict", review_all=True), score=1.0) == ["downgrade_review_all"]


def test_every_override_that_bites_has_its_own_reason_naming_mode_and_limit() -> None:
    reasons = downgrade_reasons(DowngradeMode("lean", 100, 0.5, 0.8, True), estimate_tokens=150, estimate_usd=0.75,
                                score=0.7)
    assert [r["code"] for r in reasons] == ["downgrade_review_all", "downgrade_tokens_over_limit",
                                            "downgrade_cost_over_limit", "downgrade_trust_floor"]
    assert {r["component"] for r in reasons} == {"budget"}
    assert all(r["message"].startswith("lean mode (tripwire downgrade): ") for r in reasons)
    assert "150 tokens" in reasons[1]["message"] and "limit of 100" in reasons[1]["message"]
    assert "$0.75" in reasons[2]["message"] and "limit of $0.5" in reasons[2]["message"]
    assert "0.7000" in reasons[3]["message"] and "floor of 0.8" in reasons[3]["message"]


def test_a_mode_without_overrides_never_bites() -> None:
    assert codes(DowngradeMode("labels"), tokens=10**9, usd=10.0**6, score=0.0) == []
