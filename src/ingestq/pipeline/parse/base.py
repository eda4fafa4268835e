"""The parser interface and the registry that picks a parser by media type.

Parsers are imported lazily: the PDF parser loads PDFium, the HTML one lxml and trafilatura, and a
process that only parses Markdown should not pay for them.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from ingestq.pipeline.detect import detect
from ingestq.pipeline.errors import NoTextFound, UnsupportedDocument
from ingestq.pipeline.model import MediaType, ParsedDocument, ParseOptions, SourceDocument


class Parser(Protocol):
    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        """Turn the bytes into blocks, or raise an `ingestq.pipeline.errors.ParseError`."""
        ...


# media type -> "module:Class"; register_parser() adds or overrides entries.
_REGISTRY: dict[MediaType, str | Parser] = {
    MediaType.PDF: "ingestq.pipeline.parse.pdf:PdfParser",
    MediaType.DOCX: "ingestq.pipeline.parse.docx:DocxParser",
    MediaType.HTML: "ingestq.pipeline.parse.html:HtmlParser",
    MediaType.MARKDOWN: "ingestq.pipeline.parse.markdown:MarkdownParser",
    MediaType.TEXT: "ingestq.pipeline.parse.text:TextParser",
}


def register_parser(media_type: MediaType, parser: Parser) -> None:
    _REGISTRY[media_type] = parser


def parser_for(media_type: MediaType) -> Parser:
    entry = _REGISTRY.get(media_type)
    if entry is None:
        raise UnsupportedDocument(f"no parser for {media_type}")
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        parser: Parser = getattr(importlib.import_module(module_name), class_name)()
        _REGISTRY[media_type] = parser
        return parser
    return entry


def parse_document(doc: SourceDocument, options: ParseOptions | None = None) -> ParsedDocument:
    """Detect the type and parse, in this process. Untrusted input belongs in `sandbox.ParserPool`.

    A document that parses to no blocks at all fails here (with the parser's warnings as the reason),
    so every success has text to index.
    """
    media_type = detect(doc)
    parsed = parser_for(media_type).parse(doc, options or ParseOptions())
    if not parsed.blocks:
        detail = "; ".join(parsed.warnings) or "the document is blank"
        raise NoTextFound(f"no text found in {_KIND_NAMES[media_type]}: {detail}")
    return parsed


_KIND_NAMES = {
    MediaType.PDF: "PDF",
    MediaType.DOCX: "DOCX",
    MediaType.HTML: "HTML",
    MediaType.MARKDOWN: "Markdown",
    MediaType.TEXT: "text",
}
