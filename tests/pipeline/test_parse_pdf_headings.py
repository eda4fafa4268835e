"""PDF headings from font size and weight (PDF has no heading markup): a short paragraph set larger than
the document's body text, or bold where the body is not, is a heading ranked by its size; a running
header repeated on every page, a long bold paragraph or a sentence is not. Chunks then keep the path."""

from __future__ import annotations

from pathlib import Path

import pytest
from docgen import make_pdf, make_styled_pdf

from ingestq.pipeline.chunk import TokenChunker
from ingestq.pipeline.embed.fake import WhitespaceTokenizer
from ingestq.pipeline.model import BlockKind, ParseOptions, SourceDocument
from ingestq.pipeline.parse import parse_document
from ingestq.pipeline.sandbox import ParserPool

BODY = "At dusk the keepers trimmed the wicks and logged the weather every four hours through the night."
PAGES = [
    [
        ("h2", "Northern Coast Survey"),
        ("title", "Field Guide to Lighthouses"),
        ("p", BODY),
        ("h1", "Construction"),
        ("p", BODY),
        ("h2", "Foundations"),
        ("p", "Bedrock carries the foundations, and " + BODY),
        ("bold", "Materials used"),
        ("p", "Granite and iron came by boat. " + BODY),
        ("bold", "A bold sentence that ends like one."),
    ],
    [
        ("h2", "Northern Coast Survey"),
        ("h1", "Keepers"),
        ("p", BODY),
        ("p", "Families lived on site. " + BODY),
    ],
    [("h2", "Northern Coast Survey"), ("p", BODY)],
]


def test_pdf_headings_come_from_font_size_and_weight() -> None:
    doc = parse_document(SourceDocument(make_styled_pdf(PAGES), "guide.pdf"), ParseOptions(ocr=False))
    assert doc.title == "Field Guide to Lighthouses"  # not the running header above it
    headings = [(b.text, b.level, b.page) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert headings == [
        ("Field Guide to Lighthouses", 1, 1),
        ("Construction", 2, 1),
        ("Foundations", 3, 1),
        ("Materials used", 4, 1),
        ("Keepers", 2, 2),
    ]
    paragraphs = [b.text for b in doc.blocks if b.kind is BlockKind.PARAGRAPH]
    assert paragraphs.count("Northern Coast Survey") == 3  # a running header: kept as text, no heading
    assert "A bold sentence that ends like one." in paragraphs
    # split off the text under them although no gap separates them
    assert not [p for p in paragraphs for h, _, _ in headings if p.startswith(h)]

    chunks = TokenChunker(WhitespaceTokenizer(), max_tokens=64).chunk(doc, "guide.pdf")
    granite = next(c for c in chunks if "Granite" in c.body)
    assert granite.heading_path[-3:] == ("Construction", "Foundations", "Materials used")
    families = next(c for c in chunks if "Families" in c.body)
    assert families.heading_path[-1] == "Keepers"
    assert "Construction" not in families.heading_path


def test_a_pdf_in_one_font_has_no_headings() -> None:
    doc = parse_document(
        SourceDocument(make_pdf([["Short line", "Another short line", "A sentence."]]), "a.pdf")
    )
    assert {b.kind for b in doc.blocks} == {BlockKind.PARAGRAPH}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tracemonkey.pdf", ["1. Introduction", "3.1 Traces", "8. Related Work"]),
        ("federal-register-2020-17221.pdf", ["Background", "Costs of Compliance"]),
    ],
)
def test_corpus_papers_get_their_section_headings(
    corpora: Path, pool: ParserPool, name: str, expected: list[str]
) -> None:
    path = corpora / "pdf" / name
    doc = pool.parse(SourceDocument(path.read_bytes(), name)).unwrap()
    headings = [b.text for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert all(h in headings for h in expected), headings
    body = sum(len(b.text) for b in doc.blocks if b.kind is BlockKind.PARAGRAPH)
    assert sum(len(h) for h in headings) < body / 10  # headings are the exception
