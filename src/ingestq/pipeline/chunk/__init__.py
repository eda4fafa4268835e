"""Chunking: parsed blocks in, token-bounded chunks with their heading path out."""

from ingestq.pipeline.chunk.base import Chunk, Chunker, chunk_id
from ingestq.pipeline.chunk.token import TokenChunker

__all__ = ["Chunk", "Chunker", "TokenChunker", "chunk_id"]
