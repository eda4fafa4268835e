"""The embedder interface and the pure arithmetic of batching.

An embedder turns texts into vectors. It owns its tokenizer (the chunker sizes chunks with it) and
says how large its window is. Everything fiddly about batching is a pure function here, table-tested
without a model or a network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ingestq.pipeline.embed.tokenizer import Tokenizer

Vector = list[float]


class Embedder(ABC):
    """Texts in, one vector per text out, in order.

    `model_id` names the model and the service kind (e.g. `sentence-transformers/all-MiniLM-L6-v2`,
    `ollama/nomic-embed-text`): collections record it, the embedding cache keys on it, and a query
    embedded with another model is refused. `max_tokens` is the window including special tokens.
    """

    model_id: str
    max_tokens: int
    batch_size: int = 32
    """Texts per call this embedder works best with (measured for the local model)."""
    max_batch_tokens: int | None = None
    """Cap on the tokens of one call, for services that limit a request's total."""

    @property
    @abstractmethod
    def tokenizer(self) -> Tokenizer: ...

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Vector length. Remote embedders not told it learn it from their first answer."""

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count_tokens(text)

    @abstractmethod
    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text. Raises `EmbedError` subclasses (permanent or retryable)."""

    async def aclose(self) -> None:
        """Release connections or model memory. Safe to call twice."""
        return None


def plan_batches(token_counts: Sequence[int], max_items: int, max_tokens: int | None = None) -> list[range]:
    """Split items (in order) into consecutive batches of at most `max_items` and `max_tokens`.

    An item larger than `max_tokens` on its own still gets a batch of one (refusing it is the
    service's call, not the planner's). Order is kept so results map back by position.
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    batches: list[range] = []
    start = 0
    tokens = 0
    for i, count in enumerate(token_counts):
        full = i - start >= max_items or (
            max_tokens is not None and i > start and tokens + count > max_tokens
        )
        if full:
            batches.append(range(start, i))
            start, tokens = i, 0
        tokens += count
    if start < len(token_counts):
        batches.append(range(start, len(token_counts)))
    return batches


def take_count(pending_tokens: Sequence[int], max_items: int, max_tokens: int | None = None) -> int:
    """How many of the pending items (oldest first) the next call should take: the first planned batch."""
    if not pending_tokens:
        return 0
    return len(plan_batches(pending_tokens, max_items, max_tokens)[0])


def should_flush(pending: int, max_items: int, waited: float, max_wait: float) -> bool:
    """A cross-document batch goes out when full, or when its oldest text has waited long enough."""
    return pending > 0 and (pending >= max_items or waited >= max_wait)
