"""The analyzer's pure parts: batch planning, the cache, the configuration, the statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from resontinex.agents.trajectory import (ConfigError, ScoreCache, TrajectoryConfig, cache_key, plan_batches, risk_from_entropy,
                               summarise, token_stats, trajectory_config_from)
from resontinex.agents.trajectory._config import load_trajectory_config


@given(st.lists(st.integers(1, 600), max_size=60), st.integers(1, 2000), st.integers(1, 16),
       st.floats(0.0, 2.0))
def test_batches_cover_every_text_once_within_the_budget(lengths, budget, max_batch, max_padding) -> None:
    batches = plan_batches(lengths, token_budget=budget, max_batch=max_batch, max_padding=max_padding)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        sizes = [lengths[i] for i in b]
        assert 1 <= len(b) <= max_batch
        assert len(b) == 1 or max(sizes) * len(b) <= budget
        assert len(b) == 1 or max(sizes) * len(b) <= sum(sizes) * (1 + max_padding) + 1e-9
        assert sizes == sorted(sizes)


def test_batches_group_similar_lengths() -> None:
    lengths = [10, 500, 12, 490, 11, 505]
    assert plan_batches(lengths, token_budget=1600, max_batch=8) == [[0, 4, 2], [3, 1, 5]]


def test_the_cache_evicts_the_least_recently_used_and_keys_on_model_and_text() -> None:
    cache: ScoreCache[int] = ScoreCache(2)
    a, b, c = (cache_key("m", t, 10) for t in "abc")
    cache.put(a, 1)
    cache.put(b, 2)
    assert cache.get(a) == 1  # a is now the most recent
    cache.put(c, 3)
    assert cache.get(b) is None and cache.get(a) == 1 and cache.get(c) == 3
    assert cache_key("m", "a", 10) != cache_key("other", "a", 10) != cache_key("m", "a", 20)
    assert "secret" not in repr(cache_key("m", "secret text", 10))  # only a hash of the text
    off: ScoreCache[int] = ScoreCache(0)
    off.put(a, 1)
    assert off.get(a) is None and len(off) == 0


def test_the_configuration_names_a_bad_key() -> None:
    assert trajectory_config_from({}) == TrajectoryConfig()
    for bad, key in (({"max_batch": 0}, "max_batch"), ({"nope": 1}, "nope"), ({"max_perplexity": -1}, "max_perplexity"),
                     ({"risk_entropy_low": 5, "risk_entropy_high": 4}, "risk_entropy_high")):
        with pytest.raises(ConfigError) as info:
            trajectory_config_from(bad)
        assert info.value.key == key


def test_a_missing_file_gives_the_defaults_and_a_bad_one_is_refused(tmp_path) -> None:
    assert load_trajectory_config(tmp_path / "absent.yaml") == TrajectoryConfig()
    (tmp_path / "bad.yaml").write_text("max_tokens: [1\n")
    with pytest.raises(ConfigError):
        load_trajectory_config(tmp_path / "bad.yaml")


def test_the_risk_mapping_is_linear_and_clamped() -> None:
    cfg = TrajectoryConfig(risk_entropy_low=2.0, risk_entropy_high=6.0)
    assert [risk_from_entropy(e, cfg) for e in (0.0, 2.0, 3.0, 6.0, 10.0)] == [0.0, 0.0, 0.25, 1.0, 1.0]


def test_token_stats_match_the_definitions() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 50)) * 3  # more than one CHUNK
    targets = rng.integers(0, 50, size=300)
    lp, ent = token_stats(torch.tensor(logits, dtype=torch.float32), torch.tensor(targets))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(lp, np.log(p[np.arange(300), targets]), atol=1e-5)
    np.testing.assert_allclose(ent, -(p * np.log(p)).sum(1), atol=1e-5)
    assert ent.max() <= math.log(50) + 1e-6


def test_a_uniform_distribution_has_the_largest_entropy_the_gate_can_see() -> None:
    lp, ent = token_stats(torch.zeros((4, 1000)), torch.tensor([0, 1, 2, 3]))
    s = summarise(lp, ent, truncated=False)
    assert s.mean_entropy == pytest.approx(math.log(1000)) and s.perplexity == pytest.approx(1000)
    assert s.surprise == pytest.approx(4 * math.log(1000)) and s.surprise_per_token == pytest.approx(math.log(1000))


def test_surprise_counts_only_tokens_under_one_in_ten() -> None:
    s = summarise(np.log(np.array([0.5, 0.1, 0.099, 0.01])), np.ones(4), truncated=True)
    assert s.surprise == pytest.approx(-math.log(0.099) - math.log(0.01)) and s.truncated
