"""What the ingestion stages pass along: source bytes in, typed blocks out.

A leaf module (imports nothing from the package) so that every stage, the sandbox's child process and
the job layer can share these types without pulling each other in. All values are frozen and made of
plain types, so they pickle cheaply across the sandbox's process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MediaType(StrEnum):
    """The document types ingestq parses; values are IANA media types (stored on the document)."""

    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    HTML = "text/html"
    MARKDOWN = "text/markdown"
    TEXT = "text/plain"


class BlockKind(StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST = "list"
    TABLE = "table"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """Raw bytes plus where they came from. `name` is only a hint (its extension helps detection)."""

    data: bytes
    name: str = ""
    source: str = ""

    def __repr__(self) -> str:  # the bytes can be megabytes: never print them
        return f"SourceDocument(name={self.name!r}, source={self.source!r}, size={len(self.data)})"


@dataclass(frozen=True, slots=True)
class Block:
    """One structural unit of a document.

    `text` of a list holds one item per line ("- item", nested items indented by two spaces); a table
    holds one row per line with cells separated by " | ", so a chunker can cut between rows. `level` is
    1-6 for headings and 0 otherwise. `page` is 1-based where the format has pages (PDF, text with form
    feeds), else None. `heading_path` is filled by the chunker, not by parsers.
    """

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    language: str = ""
    """For code blocks: the fence's language, when known."""


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    media_type: MediaType
    title: str
    blocks: tuple[Block, ...]
    pages: int | None = None
    """Page count for paged formats, None otherwise."""
    warnings: tuple[str, ...] = ()
    """One-line notes on what was skipped or degraded (pages without text, OCR off, ...)."""

    @property
    def text(self) -> str:
        return "\n\n".join(block.text for block in self.blocks)


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Knobs a parser reads. The defaults are safe for untrusted input."""

    ocr: bool = True
    """OCR image-only PDF pages when the `ocr` extra is installed (the worker's --disable-ocr clears it)."""
    max_pages: int = 5_000
    """A PDF with more pages is refused (a 100,000-page file is an attack, not a book)."""
    max_unpacked_bytes: int = 256 * 1024 * 1024
    """A DOCX whose ZIP members add up to more is refused before it is unpacked (zip bombs)."""
    ocr_dpi: int = 150
    max_ocr_pixels: int = 12_000_000
    """Pages that would render larger than this are scaled down before OCR."""
