"""γ, ω and consensus as CONTRACT §3.9 defines them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.coordination import consensus, coordination_metrics, gamma, omega

quality = st.floats(0.0, 1.0)


def test_the_contract_example() -> None:
    m = coordination_metrics(0.84, [0.6, 0.8], consensus_rate=0.5)
    assert m.gamma == pytest.approx(1.2) and m.omega == pytest.approx(0.04)
    assert m.effective and m.emergence and m.baseline_qualities == (0.6, 0.8)


def test_a_team_no_better_than_its_members_is_neither_effective_nor_emergent() -> None:
    m = coordination_metrics(0.6, [0.6, 0.6], consensus_rate=1.0)
    assert (m.gamma, m.omega, m.effective, m.emergence) == (1.0, 0.0, False, False)


def test_gamma_is_one_when_the_baselines_mean_is_not_positive() -> None:
    assert gamma(0.9, [0.0, 0.0]) == 1.0 and gamma(0.9, []) == 1.0


@given(st.lists(quality, min_size=1, max_size=10), quality)
def test_gamma_and_omega_against_their_definitions(baselines: list[float], coordinated: float) -> None:
    mean = sum(baselines) / len(baselines)
    assert gamma(coordinated, baselines) == (pytest.approx(coordinated / mean) if mean > 0 else 1.0)
    assert omega(coordinated, baselines) == pytest.approx(coordinated - max(baselines))
    assert (omega(coordinated, baselines) > 0) <= (gamma(coordinated, baselines) >= 1.0 or mean <= 0)


def test_consensus_of_identical_orthogonal_and_opposite_responses() -> None:
    assert consensus([[1, 2, 3], [2, 4, 6]]) == pytest.approx(1.0)
    assert consensus([[1, 0], [0, 1]]) == pytest.approx(0.0)
    assert consensus([[1, 0], [-1, 0]]) == pytest.approx(-1.0)
    assert consensus(np.zeros((0, 3))) == 1.0 and consensus([[1.0, 1.0]]) == 1.0


@given(st.lists(st.lists(st.floats(-10, 10), min_size=3, max_size=3), min_size=2, max_size=6), st.randoms())
def test_consensus_is_a_mean_pairwise_cosine_whatever_the_order(rows: list[list[float]], rnd: object) -> None:
    value = consensus(rows)
    assert -1.0 <= value <= 1.0
    shuffled = rows[:]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert consensus(shuffled) == pytest.approx(value, abs=1e-9)
    x = np.asarray(rows)
    pairs = [(i, j) for i in range(len(rows)) for j in range(i + 1, len(rows))]
    norms = np.linalg.norm(x, axis=1)
    expected = np.mean([x[i] @ x[j] / (norms[i] * norms[j]) if norms[i] and norms[j] else 0.0 for i, j in pairs])
    assert value == pytest.approx(np.clip(expected, -1, 1), abs=1e-9)
