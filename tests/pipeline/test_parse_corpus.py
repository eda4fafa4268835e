"""Real documents from ../shared/corpora through the sandboxed pool.

A representative sample of each set must parse with text (or fail exactly as
known_failures.toml says), and every file in pdf-broken/ and docx-broken/ must end as parsed-with-text
or a one-line reason, never a crash of this process; files that need a password must say so.
The whole corpus runs in `python -m bench.corpus_parse` (docs/corpus-parse-report.md).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from conftest import find_corpora
from ingestq.pipeline.model import BlockKind, MediaType, SourceDocument
from ingestq.pipeline.sandbox import ParserPool

KNOWN = {
    entry["file"]: entry
    for entry in tomllib.loads((Path(__file__).parent / "known_failures.toml").read_text())["failure"]
}

SAMPLE = [
    ("pdf/tracemonkey.pdf", MediaType.PDF),
    ("pdf/federal-register-2020-17221.pdf", MediaType.PDF),
    ("pdf/issue9972-1.pdf", MediaType.PDF),  # encrypted with an empty user password
    ("pdf/TAMReview.pdf", MediaType.PDF),  # 23 pages
    ("docx/Bug51170.docx", MediaType.DOCX),
    ("docx/56392.docx", MediaType.DOCX),
    ("docx/Bug54771b.docx", MediaType.DOCX),  # its only text sits in table cells inside content controls
    ("html/blog.python.org.html", MediaType.HTML),
    ("html/brigitte.de.ikigai.html", MediaType.HTML),
    ("markdown/shortcodes/highlight.md", MediaType.MARKDOWN),
    ("markdown/getting-started/quick-start.md", MediaType.MARKDOWN),
    ("text/rfc7540.txt", MediaType.TEXT),  # form feeds: pages
    ("text/24675-8.txt", MediaType.TEXT),  # ISO-8859-1
    ("text/44157-0.txt", MediaType.TEXT),  # UTF-8 with BOM
]

# NOTES.md: these need a real password (the empty one does not open them).
NEEDS_PASSWORD = {
    "libreoffice-writer-password.pdf",
    "password-example.pdf",
    "issue6010_1.pdf",
    "bug1782186.pdf",
    "issue3371.pdf",
    "saslprep-r6.pdf",
    "encrypted-40-bit-R3.pdf",
    "bug53475-password-is-pass.docx",
    "bug53475-password-is-solrcell.docx",
}


def broken_files() -> list[str]:
    corpora = find_corpora()
    if corpora is None:
        return ["(corpora absent)"]
    return sorted(
        path.relative_to(corpora).as_posix()
        for name in ("pdf-broken", "docx-broken")
        for path in (corpora / name).iterdir()
    )


@pytest.mark.parametrize(("rel", "media_type"), SAMPLE, ids=[rel for rel, _ in SAMPLE])
def test_sample_parses_with_text(corpora: Path, pool: ParserPool, rel: str, media_type: MediaType) -> None:
    path = corpora / rel
    result = pool.parse(SourceDocument(path.read_bytes(), path.name, source=rel))
    doc = result.unwrap()
    assert doc.media_type is media_type
    assert doc.title
    assert sum(len(block.text) for block in doc.blocks) > (20 if rel == "docx/Bug54771b.docx" else 500)
    if media_type is MediaType.PDF:
        assert doc.pages
        assert all(block.page is not None and 1 <= block.page <= doc.pages for block in doc.blocks)
    if media_type in (MediaType.MARKDOWN, MediaType.HTML):
        assert any(block.kind is BlockKind.HEADING for block in doc.blocks) or media_type is MediaType.HTML
    if rel == "text/rfc7540.txt":
        assert doc.pages is not None
        assert doc.pages > 50
    if rel == "text/24675-8.txt":
        assert "\ufffd" not in doc.text  # decoded as Latin-1, not mangled
    if rel == "text/44157-0.txt":
        assert not doc.text.startswith("\ufeff")


@pytest.mark.parametrize("rel", broken_files())
def test_broken_files_end_cleanly(corpora: Path, pool: ParserPool, rel: str) -> None:
    path = corpora / rel
    result = pool.parse(SourceDocument(path.read_bytes(), path.name, source=rel))
    if result.ok:
        assert result.unwrap().text.strip()
        assert rel not in KNOWN, f"{rel} is listed in known_failures.toml but parsed"
        return
    assert result.reason
    assert "\n" not in result.reason
    assert len(result.reason) < 300
    if path.name in NEEDS_PASSWORD:
        assert "encrypted" in result.reason
    known = KNOWN.get(rel)
    assert known is not None, f"{rel} failed ({result.reason}) but is not in known_failures.toml"
    assert result.reason.startswith(known["reason"]), f"{rel}: {result.reason!r}"


# Files of the ordinary sets that fail on purpose: one of each kind listed in known_failures.toml.
KNOWN_SAMPLE = [
    "docx/59378.docx",  # blank
    "docx/comment.docx",  # only a reviewer comment
    "pdf/no_contents.pdf",  # a page with no content stream
    "markdown/_common/_index.md",  # front matter only
]


def test_known_failures_name_real_files_and_say_why(corpora: Path) -> None:
    for rel, entry in KNOWN.items():
        assert (corpora / rel).is_file(), f"{rel} is listed in known_failures.toml but not in the corpora"
        assert entry["reason"].strip(), rel
        assert len(entry.get("why", "")) > 20, f"{rel}: say why the failure is right"
    assert not {rel for rel, _ in SAMPLE} & KNOWN.keys(), "a sample file that must parse is listed as failing"


@pytest.mark.parametrize("rel", KNOWN_SAMPLE)
def test_known_failures_of_ordinary_sets_fail_as_listed(corpora: Path, pool: ParserPool, rel: str) -> None:
    path = corpora / rel
    result = pool.parse(SourceDocument(path.read_bytes(), path.name, source=rel))
    assert not result.ok, f"{rel} parsed: take it out of known_failures.toml"
    assert result.reason.startswith(KNOWN[rel]["reason"]), f"{rel}: {result.reason!r}"


def test_smartart_text_is_read(corpora: Path, pool: ParserPool) -> None:
    # the document's only words are the nodes of a SmartArt diagram (a part of its own)
    rel = "docx/shp-inline-shape-access.docx"
    path = corpora / rel
    doc = pool.parse(SourceDocument(path.read_bytes(), path.name, source=rel)).unwrap()
    assert [block.text for block in doc.blocks] == ["foo\nbar\nbaz"]
