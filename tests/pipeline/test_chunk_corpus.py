"""The chunker over real documents from ../shared/corpora (a sample, to stay fast): no chunk over the
model's window as the model itself counts, the heading path present, and all text kept."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from ingestq.pipeline.chunk import TokenChunker
from ingestq.pipeline.embed.sentence_transformers import bundled_model_path
from ingestq.pipeline.embed.tokenizer import HuggingFaceTokenizer
from ingestq.pipeline.errors import ParseError
from ingestq.pipeline.model import ParsedDocument, SourceDocument
from ingestq.pipeline.parse import parse_document

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"

pytestmark = pytest.mark.skipif(
    not CORPORA.is_dir(), reason=f"shared corpora not found at {CORPORA} (they live beside the repository)"
)


@cache
def chunker() -> TokenChunker:
    return TokenChunker(HuggingFaceTokenizer(bundled_model_path()), 256)


def sample(folder: str, pattern: str, every: int) -> list[Path]:
    return sorted((CORPORA / folder).rglob(pattern))[::every]


def parse(path: Path) -> ParsedDocument | None:
    try:
        return parse_document(SourceDocument(path.read_bytes(), name=path.name, source=str(path)))
    except ParseError:
        return None


@pytest.mark.parametrize(
    "path",
    sample("markdown", "*.md", 25) + sample("text", "*.txt", 4),
    ids=lambda p: str(p.relative_to(CORPORA)),
)
def test_real_documents_chunk_within_the_window(path: Path) -> None:
    document = parse(path)
    if document is None:
        pytest.skip("no text in this document")
    chunks = chunker().chunk(document, str(path))
    assert chunks
    tokenizer = chunker().tokenizer
    counts = tokenizer.count_tokens_batch([c.text for c in chunks])
    assert max(counts) <= 256
    assert counts == [c.token_count for c in chunks]
    assert "".join("".join(c.body.split()) for c in chunks) == "".join(document.text.split())
    if document.title:
        assert all(c.heading_path[:1] == (" ".join(document.title.split()),) for c in chunks)
