from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trust import (
    DECISIONS,
    TIER_DECISIONS,
    TIERS,
    InvalidInput,
    TrustConfig,
    default_config,
    evaluate_batch,
    evaluate_values,
    rejudge,
)

from ._support import EDGES, any_config, unit


def assert_matches_scalar(a: np.ndarray, r: np.ndarray, c: np.ndarray, config: TrustConfig) -> None:
    out = evaluate_batch(a, r, c, config)
    scalar = [evaluate_values(x, y, z, config) for x, y, z in zip(a.tolist(), r.tolist(), c.tolist())]
    # Bit-identical, not merely close: compare the bytes.
    assert out.raw_score.tobytes() == np.array([s.raw_score for s in scalar]).tobytes()
    assert out.score.tobytes() == np.array([s.score for s in scalar]).tobytes()
    assert [TIERS[i] for i in out.tier] == [s.tier for s in scalar]
    assert [DECISIONS[i] for i in out.decision] == [s.decision for s in scalar]
    assert out.floor_violation.tolist() == [s.floor_violation for s in scalar]
    assert out.entropy_flag.tolist() == [s.entropy_flag for s in scalar]


rows = st.lists(st.tuples(unit, unit, unit), min_size=1, max_size=50)


@given(rows, any_config)
def test_batch_is_bit_identical_to_scalar(triples: list[tuple[float, float, float]], config: TrustConfig) -> None:
    a, r, c = (np.array(column, dtype=np.float64) for column in zip(*triples))
    assert_matches_scalar(a, r, c, config)


def test_bit_identical_on_a_large_random_set_and_every_edge_combination() -> None:
    rng = np.random.default_rng(11)
    a, r, c = rng.uniform(0.0, 1.0, (3, 50_000))
    assert_matches_scalar(a, r, c, default_config())
    grid = np.array(np.meshgrid(EDGES, EDGES, EDGES)).reshape(3, -1)
    assert_matches_scalar(grid[0], grid[1], grid[2], default_config())


def test_result_shape_and_names() -> None:
    out = evaluate_batch([0.8, 0.5], [0.3, 0.5], [0.2, 0.5], default_config())
    assert len(out) == 2
    assert (out.tier_names, out.decision_names) == (TIERS, DECISIONS)
    assert out.score.tolist() == [0.7681, 0.5]
    assert [out.decision_names[i] for i in out.decision] == ["execute", "review"]
    assert out.tier.dtype == np.int8 and out.decision.dtype == np.int8
    with pytest.raises(ValueError):
        out.score[0] = 1.0


def test_empty_batch() -> None:
    out = evaluate_batch(np.array([]), np.array([]), np.array([]), default_config())
    assert len(out) == 0


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (0, np.nan, r"alignment_score\[1\] must be finite and in \[0, 1\], got nan"),
        (1, np.inf, r"epistemic_risk\[1\] must be finite"),
        (2, -0.5, r"confidence_band\[1\] must be finite and in \[0, 1\], got -0.5"),
        (0, 1.5, r"alignment_score\[1\]"),
    ],
)
def test_invalid_values_name_signal_and_row(column: int, value: float, message: str) -> None:
    arrays = [np.full(3, 0.5) for _ in range(3)]
    arrays[column][1] = value
    with pytest.raises(InvalidInput, match=message):
        evaluate_batch(*arrays, default_config())


def test_invalid_shapes_and_types() -> None:
    ok = np.full(3, 0.5)
    with pytest.raises(InvalidInput, match="differ in length"):
        evaluate_batch(ok, ok, np.full(2, 0.5), default_config())
    with pytest.raises(InvalidInput, match="one-dimensional"):
        evaluate_batch(np.full((3, 1), 0.5), ok, ok, default_config())
    with pytest.raises(InvalidInput, match="real numbers"):
        evaluate_batch(np.array([True, False, True]), ok, ok, default_config())
    with pytest.raises(InvalidInput, match="real numbers"):
        evaluate_batch(np.array(["a", "b", "c"]), ok, ok, default_config())


def test_integer_arrays_are_accepted() -> None:
    out = evaluate_batch(np.array([0, 1]), np.array([1, 0]), np.array([1, 0]), default_config())
    assert out.decision_names[out.decision[0]] == "abort"


@given(rows, any_config, st.lists(unit, min_size=50, max_size=50))
def test_rejudging_on_other_scores_decides_as_those_scores_would(triples, config: TrustConfig, others) -> None:
    a, r, c = (np.array(column) for column in zip(*triples))
    out = evaluate_batch(a, r, c, config)
    assert_same(rejudge(out, out.score, config), out)  # on its own scores: nothing changes
    scores = np.round(np.array(others[: len(triples)]), 4)
    again = rejudge(out, scores, config)
    assert again.raw_score is out.raw_score and again.entropy_flag is out.entropy_flag
    for i, score in enumerate(scores.tolist()):
        judged = _judged(score, bool(out.entropy_flag[i]), config)
        assert judged == {"tier": TIERS[again.tier[i]], "decision": DECISIONS[again.decision[i]],
                          "floor_violation": bool(again.floor_violation[i])}
        assert judged["floor_violation"] == (score < config.trust_floor)


def _judged(score: float, entropy_flag: bool, config: TrustConfig) -> dict:
    """CONTRACT §5's rules for one score, written out as the contract states them."""
    tier = next(name for name, threshold in config.risk_tiers if score <= threshold)
    floor = score < config.trust_floor
    verb = TIER_DECISIONS[tier]
    if verb == "execute":
        verb = "defer" if entropy_flag else ("review" if floor else verb)
    return {"tier": tier, "decision": verb, "floor_violation": floor}


def assert_same(x, y) -> None:
    for field in ("raw_score", "score", "tier", "decision", "floor_violation", "entropy_flag"):
        assert np.array_equal(getattr(x, field), getattr(y, field)), field
