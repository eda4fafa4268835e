"""Embedder/chunker selection: a discriminated union on `kind`, built lazily."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError

from ingestq.pipeline.config import (
    EmbedderConfig,
    FakeConfig,
    OllamaConfig,
    OpenAIConfig,
    PipelineConfig,
    SentenceTransformersConfig,
    build_chunker,
    build_embedder,
)
from ingestq.pipeline.embed.fake import FakeEmbedder
from ingestq.pipeline.embed.ollama import OllamaEmbedder
from ingestq.pipeline.embed.openai import OpenAIEmbedder
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder

ADAPTER: TypeAdapter[EmbedderConfig] = TypeAdapter(EmbedderConfig)


def test_default_is_the_local_model() -> None:
    config = PipelineConfig()
    assert isinstance(config.embedder, SentenceTransformersConfig)
    embedder = build_embedder(config.embedder)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    chunker = build_chunker(config.chunker, embedder)
    assert chunker.max_tokens == 256


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        ({"kind": "ollama", "model": "mxbai-embed-large", "max_tokens": 512}, OllamaEmbedder),
        ({"kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "api_key": "k"}, OpenAIEmbedder),
        ({"kind": "fake"}, FakeEmbedder),
    ],
)
async def test_kinds_build_their_embedder(raw: dict[str, object], cls: type) -> None:
    embedder = build_embedder(ADAPTER.validate_python(raw))
    try:
        assert isinstance(embedder, cls)
    finally:
        await embedder.aclose()


def test_unknown_kind_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        ADAPTER.validate_python({"kind": "word2vec"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ADAPTER.validate_python({"kind": "ollama", "modle": "typo"})


def test_fingerprint_tracks_what_changes_vectors_only() -> None:
    base = PipelineConfig(embedder=OpenAIConfig(api_key=SecretStr("a")))
    assert (
        base.fingerprint()
        == PipelineConfig(embedder=OpenAIConfig(api_key=SecretStr("b"), batch_size=8)).fingerprint()
    )
    assert (
        base.fingerprint()
        != PipelineConfig(embedder=OpenAIConfig(model="text-embedding-3-large")).fingerprint()
    )
    with_overlap = PipelineConfig.model_validate(
        {"embedder": {"kind": "openai"}, "chunker": {"overlap_tokens": 16}}
    )
    assert base.fingerprint() != with_overlap.fingerprint()
    assert (
        PipelineConfig(embedder=FakeConfig()).fingerprint()
        != PipelineConfig(embedder=OllamaConfig()).fingerprint()
    )


def test_api_key_is_not_printed() -> None:
    # as a config file gives it: a plain string, which the model keeps as a SecretStr
    assert "sk-secret" not in repr(OpenAIConfig.model_validate({"api_key": "sk-secret"}))
