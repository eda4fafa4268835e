"""Embedding: chunk texts in, vectors out, behind one `Embedder` interface.

Implementations are imported from their own modules (`embed.sentence_transformers`, `embed.ollama`,
`embed.openai`, `embed.fake`) so that importing this package never pulls in torch or httpx.
"""

from ingestq.pipeline.embed.base import Embedder, Vector, plan_batches, should_flush, take_count
from ingestq.pipeline.embed.batcher import EmbeddingBatcher
from ingestq.pipeline.embed.cache import (
    CachedEmbeddings,
    EmbeddingCache,
    MemoryEmbeddingCache,
    cache_key,
    embed_with_cache,
    text_hash,
)
from ingestq.pipeline.embed.errors import (
    EmbedderConfigError,
    EmbedderUnavailable,
    EmbedError,
    EmbedRequestRejected,
    EmbedResponseInvalid,
    EmbedServiceUnavailable,
)
from ingestq.pipeline.embed.tokenizer import EstimatingTokenizer, HuggingFaceTokenizer, Tokenizer

__all__ = [
    "CachedEmbeddings",
    "EmbedError",
    "EmbedRequestRejected",
    "EmbedResponseInvalid",
    "EmbedServiceUnavailable",
    "Embedder",
    "EmbedderConfigError",
    "EmbedderUnavailable",
    "EmbeddingBatcher",
    "EmbeddingCache",
    "EstimatingTokenizer",
    "HuggingFaceTokenizer",
    "MemoryEmbeddingCache",
    "Tokenizer",
    "Vector",
    "cache_key",
    "embed_with_cache",
    "plan_batches",
    "should_flush",
    "take_count",
    "text_hash",
]
