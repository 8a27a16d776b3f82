"""Per-token statistics of a causal LM's next-token distributions, and their summary.

`token_stats` works on one sequence's logits; `summarise` is pure arithmetic on its
output:

>>> import numpy as np
>>> s = summarise(np.log([0.5, 0.05, 0.9]), np.array([1.0, 3.0, 0.5]), truncated=False)
>>> s.n_tokens, round(s.perplexity, 4), s.mean_entropy, s.max_entropy, round(s.surprise, 4)
(3, 3.5422, 1.5, 3.0, 2.9957)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SURPRISE_BELOW = 0.1
"""A token counts toward `surprise` when the model gave it a probability under this (seed 003)."""
CHUNK = 256
"""Positions per softmax: bounds the float32 copy of the logits to CHUNK × vocabulary."""


@dataclass(frozen=True, slots=True)
class TextScore:
    """One text's result. Entropies in nats over the full next-token distribution; the
    per-token values are kept as float32 bytes (compact in the cache, comparable)."""

    n_tokens: int
    perplexity: float
    mean_entropy: float
    max_entropy: float
    surprise: float
    truncated: bool
    logprobs_f32: bytes = b""
    entropies_f32: bytes = b""

    @property
    def surprise_per_token(self) -> float:
        return self.surprise / self.n_tokens

    @property
    def token_logprobs(self) -> np.ndarray:
        """log p of each scored token, in order (float32)."""
        return np.frombuffer(self.logprobs_f32, dtype=np.float32)

    @property
    def token_entropies(self) -> np.ndarray:
        """Entropy of the distribution each token was drawn from, in order (float32)."""
        return np.frombuffer(self.entropies_f32, dtype=np.float32)


def token_stats(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """log p(target) and the entropy of each position's distribution, in float64.

    `logits` [n, vocabulary] (any float dtype; computed in float32) are the predictions
    for `targets` [n]. Entropy = logsumexp(x) − Σ softmax(x)·x.
    """
    import torch

    logprobs, entropies = [], []
    for start in range(0, logits.shape[0], CHUNK):
        x = logits[start:start + CHUNK].float()
        lse = torch.logsumexp(x, dim=-1)
        logprobs.append(x.gather(-1, targets[start:start + CHUNK, None])[:, 0] - lse)
        entropies.append(lse - (torch.softmax(x, dim=-1) * x).sum(dim=-1))
    lp = torch.cat(logprobs).double().cpu().numpy()
    ent = torch.cat(entropies).double().cpu().numpy()
    return lp, np.maximum(ent, 0.0)  # rounding can leave −1e-7 for a near-certain position


def summarise(logprobs: np.ndarray, entropies: np.ndarray, *, truncated: bool) -> TextScore:
    """Perplexity exp(−mean log p), mean and max entropy, surprise Σ −log p over p < 0.1."""
    n = int(logprobs.shape[0])
    surprising = logprobs < math.log(SURPRISE_BELOW)
    return TextScore(
        n_tokens=n,
        perplexity=float(math.exp(-float(logprobs.mean()))),
        mean_entropy=float(entropies.mean()),
        max_entropy=float(entropies.max()),
        surprise=float(-logprobs[surprising].sum()),
        truncated=truncated,
        logprobs_f32=logprobs.astype(np.float32).tobytes(),
        entropies_f32=entropies.astype(np.float32).tobytes(),
    )
