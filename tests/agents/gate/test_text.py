"""Text-only decision requests: which wait for a score, what goes to the trajectory group,
what comes back, and the reasons a decision gives."""

from __future__ import annotations

import orjson

from resontinex.agents.gate._text import (needs_text_score, scored_request, text_reason, timed_out_request, trajectory_request,
                               unscored_request)
from resontinex.agents.trajectory import TrajectoryConfig
from resontinex.schemas import DecisionRequest, TrajectoryRequest, decode_json

RAW = {"event_id": "r-1", "tenant": "acme", "text": "Paris is the capital of France.",
       "signals": {"alignment_score": 0.9, "confidence_band": 0.1}}
RESULT = {"event_id": "tr-9", "model": "SmolLM2", "mean_entropy": 5.0, "perplexity": 80.0,
          "passed_quality_check": False}
CFG = TrajectoryConfig()


def _decode(raw: dict) -> DecisionRequest:
    return decode_json(DecisionRequest, orjson.dumps(raw))[1]


def test_only_a_text_without_a_risk_waits_for_a_score() -> None:
    assert needs_text_score(_decode(RAW))
    with_risk = {**RAW, "signals": {**RAW["signals"], "epistemic_risk": 0.2}}
    assert not needs_text_score(_decode(with_risk))
    assert not needs_text_score(_decode(scored_request(RAW, RESULT, CFG)))
    assert not needs_text_score(_decode(timed_out_request(RAW)))  # back once: decided, not sent again


def test_the_trajectory_request_is_a_valid_event_naming_the_decision_request() -> None:
    out = trajectory_request("acme", _decode(RAW))
    request = decode_json(TrajectoryRequest, orjson.dumps(out))[1]
    assert (request.request_id, request.text, request.tenant) == ("r-1", RAW["text"], "acme")
    assert out["event_id"] == trajectory_request("acme", _decode(RAW))["event_id"]  # the same when sent again


def test_a_scored_request_carries_the_risk_and_says_where_it_came_from() -> None:
    scored = _decode(scored_request(RAW, RESULT, CFG))
    assert scored.signals.epistemic_risk == 0.75  # (5.0 − 2.0) / (6.0 − 2.0)
    reason = text_reason(scored, CFG)
    assert reason["code"] == "risk_from_text" and "0.7500" in reason["message"]
    assert "failed the quality check" in reason["message"]


def test_a_timed_out_request_has_no_risk_and_says_why() -> None:
    late = _decode(timed_out_request(RAW))
    assert late.signals.epistemic_risk is None
    assert text_reason(late, CFG)["code"] == "text_risk_timeout"
    assert text_reason(_decode({**RAW, "signals": {**RAW["signals"], "epistemic_risk": 0.1}}), CFG) is None


def test_a_request_nobody_could_score_has_no_risk_and_says_why() -> None:
    unscored = _decode(unscored_request(RAW))
    assert unscored.signals.epistemic_risk is None
    reason = text_reason(unscored, CFG)
    assert reason["code"] == "text_scoring_unavailable" and "defer at least" in reason["message"]


def test_a_scored_block_without_its_figures_is_invalid_and_a_reason_never_fails() -> None:
    import pytest

    from resontinex.schemas import InvalidEvent

    forged = {**RAW, "trajectory": {"status": "scored"}}
    with pytest.raises(InvalidEvent):
        _decode(forged)
    no_risk = _decode({**RAW, "trajectory": {"status": "scored", "model": "m", "mean_entropy": 1.0}})
    assert text_reason(no_risk, CFG) is None  # the gate falls back to its worst-case reason
