"""Plain text in any encoding: BOMs honoured, NULs and stray control characters removed.

Form feeds are page breaks (RFCs and old line-printer text use them), so a text with form feeds gets
page numbers. Paragraphs are separated by blank lines; hard-wrapped lines inside a paragraph are
kept as they are, because text formats often align columns with them.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument, ParseOptions, SourceDocument

_BOM_ENCODINGS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 controls other than tab, newline, carriage return and form feed, plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding; never fails (undecodable bytes become U+FFFD)."""
    for bom, encoding in _BOM_ENCODINGS:
        if data.startswith(bom):
            return _CONTROL.sub("", data[len(bom) :].decode(encoding, errors="replace"))
    head = data[:4096]
    if head.count(0) > len(head) * 0.3:  # BOM-less UTF-16/32: valid UTF-8 bytes, wrong text
        return _CONTROL.sub("", data.decode(_guess_encoding(data, "utf-16-le"), errors="replace"))
    try:
        text = data.decode("utf-8")  # the common case, and cheaper than guessing
    except UnicodeDecodeError:
        text = data.decode(_guess_encoding(data, "utf-8"), errors="replace")
    return _CONTROL.sub("", text)


_PREFERRED = ("cp1252", "latin_1", "iso8859_15")


def _guess_encoding(data: bytes, default: str) -> str:
    matches = from_bytes(data[: 1 << 20])
    best = matches.best()
    if best is None:
        return default
    # Short texts often score several single-byte code pages equally; the most common one wins ties.
    for match in matches:
        if (
            match.encoding in _PREFERRED
            and match.percent_chaos <= best.percent_chaos
            and match.percent_coherence >= best.percent_coherence
        ):
            return str(match.encoding)
    return str(best.encoding)


class TextParser:
    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        text = decode_text(doc.data).replace("\r\n", "\n").replace("\r", "\n")
        pages = text.split("\f")
        paged = len(pages) > 1
        blocks: list[Block] = []
        for number, page in enumerate(pages, start=1):
            for para in _PARAGRAPH_BREAK.split(page):
                para = para.strip("\n").rstrip()
                if para.strip():
                    blocks.append(Block(BlockKind.PARAGRAPH, para, page=number if paged else None))
        title = next((b.text.strip().split("\n", 1)[0].strip() for b in blocks), "")
        return ParsedDocument(MediaType.TEXT, title[:200], tuple(blocks), pages=len(pages) if paged else None)
