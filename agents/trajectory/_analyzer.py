"""Scoring texts with a loaded causal LM: batched by length, cached, OOM-tolerant.

Every text is scored after one prefix token (`_model.SCORING_PREFIX`), so its first
token has a prediction too. Batches are right-padded with an attention mask: under a
causal mask a real position only sees earlier real positions, so padding changes no
real position's logits (batched results equal one-at-a-time ones to float rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from . import _model
from ._batching import plan_batches
from ._cache import ScoreCache, cache_key
from ._config import TrajectoryConfig
from ._scoring import TextScore, summarise, token_stats
from .exceptions import UnscorableText

log = logging.getLogger(__name__)

PROBE = "The quick brown fox jumps over the lazy dog."
PROBE_MAX_PERPLEXITY = 10_000.0
"""The health check fails a model whose perplexity on PROBE is not finite or above this
(a model loaded wrong, e.g. a tokenizer that does not match it, scores near the vocabulary size)."""


class Scored(NamedTuple):
    score: TextScore
    cached: bool


@dataclass(slots=True)
class AnalyzerStats:
    """Running totals since the analyzer was made (the agent turns them into metrics), and
    the texts per forward pass of the last `score` call."""

    tokens: int = 0
    texts: int = 0
    cache_hits: int = 0
    oom_halvings: int = 0
    cpu_fallbacks: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class Analyzer:
    """One model, loaded once, scoring batches of texts."""

    def __init__(self, loaded: _model.LoadedModel, cfg: TrajectoryConfig) -> None:
        self.loaded, self.cfg = loaded, cfg
        self.cache: ScoreCache[TextScore] = ScoreCache(cfg.cache_size)
        self.max_tokens = min(cfg.max_tokens, loaded.context - 1)
        self.stats = AnalyzerStats()

    @classmethod
    def load(cls, cfg: TrajectoryConfig) -> Analyzer:
        return cls(_model.load(cfg.model, cfg.device), cfg)

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def device(self) -> str:
        return self.loaded.device

    def health(self) -> dict[str, Any]:
        """Score PROBE (uncached): the model answers, and sensibly."""
        lp, ent = self._run([self.encode(PROBE)[0]])[0]
        ppl = summarise(lp, ent, truncated=False).perplexity
        ok = bool(np.isfinite(ppl) and ppl < PROBE_MAX_PERPLEXITY)
        return {"ok": ok, "model": self.name, "device": self.device, "dtype": self.loaded.dtype,
                "load_s": round(self.loaded.load_s, 3), "probe_perplexity": round(ppl, 3), "max_tokens": self.max_tokens}

    def encode(self, text: str) -> tuple[list[int], bool]:
        """The prefix then the text's tokens, at most `max_tokens` of them; whether any were cut."""
        ids = self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise UnscorableText("the tokenizer gives no token for this text")
        return [self.loaded.prefix_id, *ids[:self.max_tokens]], len(ids) > self.max_tokens

    def passed(self, score: TextScore) -> bool:
        cfg = self.cfg
        return (score.perplexity < cfg.max_perplexity and score.mean_entropy < cfg.max_mean_entropy
                and score.surprise_per_token < cfg.max_surprise_per_token)

    def score(self, texts: Sequence[str]) -> list[Scored | UnscorableText]:
        """Each text's score (or why it has none), in order. Repeats, within the call or
        of an earlier one still in the cache, are answered from the cache (`cached`)."""
        out: list[Scored | UnscorableText | None] = [None] * len(texts)
        self.stats.batch_sizes = []
        first: dict[tuple[str, str, int], int] = {}
        repeats: list[tuple[int, tuple[str, str, int]]] = []
        todo: list[tuple[int, list[int], bool]] = []
        for i, text in enumerate(texts):
            key = cache_key(self.name, text, self.max_tokens)
            hit = self.cache.get(key)
            if hit is not None:
                out[i] = Scored(hit, True)
            elif key in first:
                repeats.append((i, key))
            else:
                try:
                    ids, cut = self.encode(text)
                except UnscorableText as exc:
                    out[i] = exc
                    continue
                first[key] = i
                todo.append((i, ids, cut))
        batches = plan_batches([len(ids) for _, ids, _ in todo], token_budget=self.cfg.token_budget,
                               max_batch=self.cfg.max_batch, max_padding=self.cfg.max_padding)
        keys = {i: key for key, i in first.items()}
        for batch in batches:
            chosen = [todo[j] for j in batch]
            for (i, _, cut), (lp, ent) in zip(chosen, self._run([ids for _, ids, _ in chosen]), strict=True):
                score = summarise(lp, ent, truncated=cut)
                self.cache.put(keys[i], score)
                out[i] = Scored(score, False)
                self.stats.tokens += score.n_tokens
        for i, key in repeats:
            done = out[first[key]]
            out[i] = Scored(done.score, True) if isinstance(done, Scored) else done
        self.stats.texts += len(texts)
        self.stats.cache_hits += sum(isinstance(o, Scored) and o.cached for o in out)
        return out  # type: ignore[return-value]

    def _run(self, seqs: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Forward `seqs`; on CUDA out-of-memory halve the batch, and at one text fall back to the CPU."""
        import torch

        try:
            return self._forward(seqs)
        except torch.cuda.OutOfMemoryError:
            if self.loaded.device == "cpu":
                raise
        # out of the except block: its traceback no longer holds the failed pass's tensors
        torch.cuda.empty_cache()
        if len(seqs) > 1:
            self.stats.oom_halvings += 1
            half = len(seqs) // 2
            log.warning("CUDA out of memory: halving the batch", extra={"batch": len(seqs)})
            return self._run(seqs[:half]) + self._run(seqs[half:])
        log.warning("CUDA out of memory on a single text: falling back to the CPU for good",
                    extra={"tokens": len(seqs[0]), "model": self.name})
        self.stats.cpu_fallbacks += 1
        self.loaded.to_cpu()
        return self._forward(seqs)

    def _forward(self, seqs: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.loaded.prefix_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        device = self.loaded.device
        with torch.inference_mode():
            logits = self.loaded.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            self.stats.batch_sizes.append(len(seqs))
            return [token_stats(logits[row, :len(seq) - 1], ids[row, 1:len(seq)].to(device))
                    for row, seq in enumerate(seqs)]
