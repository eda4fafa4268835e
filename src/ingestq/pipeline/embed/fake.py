"""A deterministic embedder for fast unit tests. Never a default: its vectors carry no meaning beyond
"same text, same vector" (plus a little word overlap, so a search over them is not pure noise)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from ingestq.pipeline.embed.base import Embedder, Vector
from ingestq.pipeline.embed.tokenizer import Tokenizer

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class WhitespaceTokenizer:
    """One token per word or punctuation mark, plus two special tokens (like BERT's)."""

    special_tokens = 2

    def count_tokens(self, text: str) -> int:
        return self.special_tokens + len(_WORD.findall(text))

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]

    def token_ends(self, text: str) -> list[int]:
        return [m.end() for m in _WORD.finditer(text)]


class FakeEmbedder(Embedder):
    def __init__(self, dimension: int = 16, max_tokens: int = 64, model_id: str = "fake/hash") -> None:
        self.model_id = model_id
        self.max_tokens = max_tokens
        self._dimension = dimension
        self._tokenizer = WhitespaceTokenizer()
        self.calls: list[int] = []
        """Batch sizes of every `embed` call, for tests of batching."""

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def dimension(self) -> int:
        return self._dimension

    def vector(self, text: str) -> Vector:
        """Sum of one pseudo-random unit vector per lower-cased word, normalised."""
        acc = [0.0] * self._dimension
        for word in _WORD.findall(text.lower()) or [""]:
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=2 * self._dimension).digest()
            for i in range(self._dimension):
                acc[i] += int.from_bytes(digest[2 * i : 2 * i + 2], "little") / 32768.0 - 1.0
        norm = math.sqrt(sum(x * x for x in acc)) or 1.0
        return [x / norm for x in acc]

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(len(texts))
        return [self.vector(t) for t in texts]
