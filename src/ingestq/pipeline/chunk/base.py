"""The chunker interface and the chunk it produces.

Chunk ids are derived from content, not position: `sha256(document id, text embedded, n)` where n
counts earlier chunks of the same document with the very same text. Editing one paragraph therefore
changes the ids of only the chunks that paragraph lands in; the others keep their ids (and their
cached vectors, whose key is model + `text_hash`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from ingestq.pipeline.model import ParsedDocument


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    ordinal: int
    """Position in the document, 0-based."""
    text: str
    """Exactly what is embedded (heading prefix included when enabled); `token_count` counts it."""
    body: str
    """The document's own text in this chunk (no prefix), leading overlap included."""
    overlap: int
    """Characters at the start of `body` repeated from the previous chunk."""
    heading_path: tuple[str, ...]
    token_count: int
    """Tokens of `text` with the embedder's tokenizer, special tokens included."""
    text_hash: str
    """sha256 of `text`: with the model id, the embedding cache key."""
    page: int | None = None
    page_end: int | None = None

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)


def chunk_id(document_id: str, text: str, occurrence: int) -> str:
    raw = f"{document_id}\x00{occurrence}\x00{text}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class Chunker(Protocol):
    def chunk(self, document: ParsedDocument, document_id: str) -> list[Chunk]:
        """Split a parsed document into chunks, in order; deterministic for the same input."""
        ...
