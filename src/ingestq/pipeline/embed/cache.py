"""The embedding cache: re-ingesting a document embeds only the chunk texts not seen before.

Keyed by model + the exact text embedded, so a changed model, a changed heading prefix or a changed
paragraph all miss, and everything else hits. The durable cache lives in the database (the index
stage's table); this module holds the key, the interface and an in-memory implementation.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ingestq.pipeline.embed.base import Vector


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(model_id: str, text: str) -> str:
    """sha256 over model id and text, separated so ("ab", "c") and ("a", "bc") differ."""
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


class EmbeddingCache(Protocol):
    async def get_many(self, keys: Sequence[str]) -> Mapping[str, Vector]:
        """The cached vectors among `keys` (missing keys are simply absent)."""
        ...

    async def put_many(self, items: Mapping[str, Vector]) -> None: ...


class MemoryEmbeddingCache:
    """Bounded LRU, for one process (tests, a single CLI run)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._data: OrderedDict[str, Vector] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def get_many(self, keys: Sequence[str]) -> Mapping[str, Vector]:
        found: dict[str, Vector] = {}
        for key in keys:
            vector = self._data.get(key)
            if vector is not None:
                self._data.move_to_end(key)
                found[key] = vector
        return found

    async def put_many(self, items: Mapping[str, Vector]) -> None:
        for key, vector in items.items():
            self._data[key] = vector
            self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)


@dataclass(frozen=True, slots=True)
class CachedEmbeddings:
    vectors: list[Vector]
    embedded: int
    """Distinct texts that went to the model."""
    reused: int
    """Texts answered from the cache (or by an identical text earlier in the same call)."""


async def embed_with_cache(
    texts: Sequence[str],
    model_id: str,
    embed: Callable[[Sequence[str]], Awaitable[list[Vector]]],
    cache: EmbeddingCache,
) -> CachedEmbeddings:
    """Vectors for `texts`, embedding only the distinct texts the cache does not hold."""
    keys = [cache_key(model_id, t) for t in texts]
    hits = dict(await cache.get_many(list(dict.fromkeys(keys))))
    todo: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in hits:
            todo.setdefault(key, text)
    if todo:
        fresh = await embed(list(todo.values()))
        new = dict(zip(todo.keys(), fresh, strict=True))
        await cache.put_many(new)
        hits.update(new)
    return CachedEmbeddings(
        vectors=[hits[k] for k in keys], embedded=len(todo), reused=len(texts) - len(todo)
    )
