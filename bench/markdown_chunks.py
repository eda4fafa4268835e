"""The markdown corpus (../shared/corpora/markdown) parsed and chunked, for the embedding benchmarks."""

from __future__ import annotations

from pathlib import Path

from ingestq.pipeline.chunk.base import Chunk
from ingestq.pipeline.chunk.token import TokenChunker
from ingestq.pipeline.errors import ParseError
from ingestq.pipeline.model import ParsedDocument, SourceDocument
from ingestq.pipeline.parse import parse_document

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
MARKDOWN = CORPORA / "markdown"


def parsed_markdown(root: Path = MARKDOWN) -> list[tuple[str, ParsedDocument]]:
    """(path relative to the corpus, parsed document); blank documents are left out."""
    if not root.is_dir():
        raise SystemExit(f"corpus not found: {root} (the shared corpora live beside the repository)")
    docs: list[tuple[str, ParsedDocument]] = []
    for file in sorted(root.rglob("*.md")):
        try:
            parsed = parse_document(SourceDocument(file.read_bytes(), name=file.name, source=str(file)))
        except ParseError:
            continue
        docs.append((str(file.relative_to(root)), parsed))
    return docs


def chunk_all(chunker: TokenChunker, docs: list[tuple[str, ParsedDocument]]) -> list[tuple[str, Chunk]]:
    return [(name, chunk) for name, doc in docs for chunk in chunker.chunk(doc, name)]
