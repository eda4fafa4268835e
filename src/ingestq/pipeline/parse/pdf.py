"""PDF through PDFium (pypdfium2): text per page, split into paragraphs, with 1-based page numbers.

PDFium tries the empty user password by itself, so the many real files "encrypted" with an empty
password open normally; a file that needs a real password fails with "encrypted PDF (password
required)". PDF text has no paragraph markup: a line ends a paragraph when it is followed by a blank
line, or when it is clearly shorter than the page's typical line and ends a sentence.

Pages without a text layer are handed to the OCR hook (`ingestq.pipeline.parse.ocr`) when OCR is on
and the `ocr` extra is installed; otherwise they are listed in the document's warnings.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from dataclasses import dataclass

import pypdfium2 as pdfium

from ingestq.pipeline.errors import CorruptDocument, DocumentTooLarge, EncryptedDocument
from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument, ParseOptions, SourceDocument
from ingestq.pipeline.parse import ocr

# pypdfium2 error codes (FPDF_ERR_*), see PdfiumError.err_code
_ERR_PASSWORD = 4
_ERR_SECURITY = 5
_ERR_FORMAT = 3
_ERR_FILE = 2

_SOFT_HYPHENS = ("\x02", "\ufffe")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe]")
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"”]$")


class PdfParser:
    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        pdf = _open(doc.data)
        try:
            count = len(pdf)
            if count > options.max_pages:
                raise DocumentTooLarge(f"PDF has {count:,} pages, over the {options.max_pages:,}-page limit")
            blocks: list[Block] = []
            no_text: list[int] = []
            ocr_pages: list[int] = []
            failed: list[str] = []
            for index in range(count):
                number = index + 1
                try:
                    text = _page_text(pdf, index)
                except pdfium.PdfiumError as exc:
                    failed.append(f"page {number}: {exc}")
                    continue
                if not text.strip():
                    try:
                        text = "\n\n".join(self._ocr_page(pdf, index, options).split("\n"))
                    except Exception as exc:  # OCR failing on one page must not sink the document
                        failed.append(f"page {number}: OCR failed ({ocr.describe_failure(exc)})")
                        text = ""
                    (ocr_pages if text.strip() else no_text).append(number)
                blocks.extend(
                    Block(BlockKind.PARAGRAPH, para.strip(), page=number)
                    for para in text.split("\n\n")
                    if para.strip()
                )
            title = _title(pdf, blocks)
            warnings = _warnings(no_text, ocr_pages, failed, options)
            return ParsedDocument(MediaType.PDF, title, tuple(blocks), pages=count, warnings=warnings)
        finally:
            pdf.close()

    def _ocr_page(self, pdf: pdfium.PdfDocument, index: int, options: ParseOptions) -> str:
        if not options.ocr or not ocr.available():
            return ""
        page = pdf[index]
        try:
            if not _draws_anything(page):
                return ""  # a blank page: rendering and OCR would find nothing, slowly
            width, height = page.get_size()
            scale = options.ocr_dpi / 72
            pixels = width * scale * height * scale
            if pixels > options.max_ocr_pixels:
                scale *= (options.max_ocr_pixels / pixels) ** 0.5
            bitmap = page.render(scale=scale)
            return ocr.recognise(bitmap.to_numpy())
        finally:
            page.close()


def _draws_anything(page: pdfium.PdfPage) -> bool:
    """Images, but also paths and unmapped glyphs (Type 3 fonts) can carry text that only OCR reads."""
    return any(True for _ in page.get_objects(max_depth=2))


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == _ERR_PASSWORD:
            raise EncryptedDocument("encrypted PDF (password required)") from None
        if code == _ERR_SECURITY:
            raise EncryptedDocument("encrypted PDF (unsupported security handler)") from None
        raise CorruptDocument(f"corrupt PDF: {_reason(exc)}") from None


def _reason(exc: pdfium.PdfiumError) -> str:
    match = re.search(r"\(PDFium: (.*?)\)", str(exc))
    return (match.group(1) if match else str(exc)).rstrip(".").lower() or "cannot be opened"


def _page_text(pdf: pdfium.PdfDocument, index: int) -> str:
    """The page's text with paragraphs separated by blank lines."""
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            lines = _lines(textpage)
        finally:
            textpage.close()
    finally:
        page.close()
    return "\n\n".join(_paragraphs(lines))


@dataclass
class _Line:
    left: float
    bottom: float
    right: float
    top: float
    text: str


def _lines(textpage: pdfium.PdfTextPage) -> list[_Line]:
    """PDFium's text rectangles (runs of characters on one baseline) merged into visual lines."""
    lines: list[_Line] = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        text = textpage.get_text_bounded(left, bottom, right, top).replace("\x00", "")
        text = text.replace("\r\n", " ").replace("\n", " ").strip(" ")
        if text.endswith(_SOFT_HYPHENS):
            text = text.rstrip("".join(_SOFT_HYPHENS)) + "\x02"
        if not text:
            continue
        last = lines[-1] if lines else None
        height = max(top - bottom, 1.0)
        combining = unicodedata.category(text[0]).startswith("M")  # a mark drawn over the last glyph
        if last and (left >= last.right - 1 or combining) and bottom < last.top and top > last.bottom:
            gap = left - last.right
            # Scripts written without spaces (CJK, Thai) are often placed glyph run by glyph run.
            unspaced = _UNSPACED.match(last.text[-1:]) and _UNSPACED.match(text[:1]) and gap < 0.6 * height
            spaced = gap > 0.15 * height and not unspaced and not combining and not last.text.endswith(" ")
            last.text += (" " if spaced else "") + text
            last.right = max(right, last.right)
            last.top, last.bottom = max(top, last.top), min(bottom, last.bottom)
        else:
            lines.append(_Line(left, bottom, right, top, text))
    return lines


def _paragraphs(lines: list[_Line]) -> list[str]:
    """Group lines: a paragraph ends at a vertical gap, a jump to a new column, or a short last line."""
    if not lines:
        return []
    typical = statistics.median(line.right - line.left for line in lines)
    paragraphs: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        current = _join(current, line.text)
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        height = max(line.top - line.bottom, 1.0)
        ends = (
            nxt is None
            or line.bottom - nxt.top > 0.6 * height  # blank space below
            or nxt.top > line.top + height  # next line is higher up: a new column or a table cell
            or ((line.right - line.left) < typical * 0.7 and _SENTENCE_END.search(line.text) is not None)
        )
        if ends:
            text = _CONTROL.sub("", current).strip()
            if text:
                paragraphs.append(text)
            current = ""
    return paragraphs


def _join(current: str, text: str) -> str:
    if not current:
        return text
    # PDFium marks a hyphen it judged to be a line-break hyphen (U+0002 or U+FFFE): join the halves.
    if current.endswith(_SOFT_HYPHENS):
        return current[:-1] + text
    return current + " " + text


def _title(pdf: pdfium.PdfDocument, blocks: list[Block]) -> str:
    try:
        title = (pdf.get_metadata_value("Title") or "").strip()
    except (pdfium.PdfiumError, KeyError, ValueError):
        title = ""
    if title:
        return title
    return blocks[0].text[:200] if blocks else ""


def _warnings(
    no_text: list[int], ocr_pages: list[int], failed: list[str], options: ParseOptions
) -> tuple[str, ...]:
    out: list[str] = []
    if ocr_pages:
        out.append(f"OCR used on {len(ocr_pages)} page(s) without a text layer: {_ranges(ocr_pages)}")
    if no_text:
        if not options.ocr:
            why = "OCR disabled"
        elif not ocr.available():
            why = "OCR not installed (pip install 'ingestq[ocr]')"
        else:
            why = "OCR found none"
        out.append(f"no text layer on {len(no_text)} page(s): {_ranges(no_text)} ({why})")
    out.extend(failed[:10])
    return tuple(out)


def _ranges(numbers: list[int]) -> str:
    spans: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], -1]:
        if n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(spans[:20]) + (", …" if len(spans) > 20 else "")
