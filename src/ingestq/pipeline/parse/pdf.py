"""PDF through PDFium (pypdfium2): text per page, split into paragraphs, with 1-based page numbers.

PDFium tries the empty user password by itself, so the many real files "encrypted" with an empty
password open normally; a file that needs a real password fails with "encrypted PDF (password
required)". PDF text has no paragraph markup: a line ends a paragraph when it is followed by a blank
line, when it is clearly shorter than the page's typical line and ends a sentence, or when the font
size or weight changes. Nor heading markup: a short paragraph set larger than the document's body text
(the font size covering the most characters), or bold where the body is not, becomes a heading, its
level from the rank of its size among the headings' sizes, so chunks keep a heading path.

Pages without a text layer are handed to the OCR hook (`ingestq.pipeline.parse.ocr`) when OCR is on
and the `ocr` extra is installed; otherwise they are listed in the document's warnings.
"""

from __future__ import annotations

import ctypes
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

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
_BOLD_WEIGHT = 600
_BOLD_NAME = re.compile(r"bold|black|heavy|medi|semibold|demi", re.IGNORECASE)
_FORCE_BOLD = 1 << 18  # PDF font descriptor flag
_LARGER = 1.15  # a heading's size over the body's: 10 pt body, 11.5 pt heading
_HEADING_MAX_CHARS = 150
_HEADING_MAX_LINES = 3
_UNIFORM = 0.9  # share of a heading's characters in its size and weight
_RUNNING = 3  # a line repeated on this many pages is a running header or footer, not a heading
_HEADING_END = re.compile(r"[.,;:!?]$")
_LETTER = re.compile(r"[^\W\d_]")


class PdfParser:
    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        pdf = _open(doc.data)
        try:
            count = len(pdf)
            if count > options.max_pages:
                raise DocumentTooLarge(f"PDF has {count:,} pages, over the {options.max_pages:,}-page limit")
            pages: list[tuple[int, list[_Para]]] = []
            no_text: list[int] = []
            ocr_pages: list[int] = []
            failed: list[str] = []
            for index in range(count):
                number = index + 1
                try:
                    paras = _page_paragraphs(pdf, index)
                except pdfium.PdfiumError as exc:
                    failed.append(f"page {number}: {exc}")
                    continue
                if not paras:
                    try:
                        text = self._ocr_page(pdf, index, options)
                    except Exception as exc:  # OCR failing on one page must not sink the document
                        failed.append(f"page {number}: OCR failed ({ocr.describe_failure(exc)})")
                        text = ""
                    paras = [_Para(line.strip()) for line in text.split("\n") if line.strip()]
                    (ocr_pages if paras else no_text).append(number)
                pages.append((number, paras))
            blocks = _blocks(pages)
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


def _page_paragraphs(pdf: pdfium.PdfDocument, index: int) -> list[_Para]:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            styles = _Styles(textpage)
            return _paragraphs(_lines(textpage, styles), styles)
        finally:
            textpage.close()
    finally:
        page.close()


@dataclass(frozen=True, slots=True)
class _Para:
    text: str
    size: float | None = None  # the font size covering most of its characters; None: unknown (OCR)
    bold: bool = False
    lines: int = 1
    uniform: bool = False  # one size and one weight throughout (a run-in bold phrase is not a heading)


@dataclass
class _Line:
    left: float
    bottom: float
    right: float
    top: float
    text: str
    sizes: Counter[float] = field(default_factory=Counter)  # font size -> characters set in it
    bold_chars: int = 0
    unprobed: list[tuple[float, float, float, float, int]] = field(default_factory=list)
    """Rectangles (and their character counts) whose style is not asked yet: the first one with a style
    stands for the line until the line may be part of a heading (asking costs a search of the page)."""

    def add(self, styles: _Styles, box: tuple[float, float, float, float], chars: int) -> None:
        if self.sizes:
            self.unprobed.append((*box, chars))
        else:
            self._count(styles.of(*box), chars)

    def probe_all(self, styles: _Styles) -> None:
        for left, bottom, right, top, chars in self.unprobed:
            self._count(styles.of(left, bottom, right, top), chars)
        self.unprobed.clear()

    def _count(self, style: tuple[float, bool] | None, chars: int) -> None:
        if style is not None:
            self.sizes[style[0]] += chars
            self.bold_chars += chars if style[1] else 0

    @property
    def size(self) -> float | None:
        return self.sizes.most_common(1)[0][0] if self.sizes else None

    @property
    def bold(self) -> bool:
        return self.bold_chars * 2 > sum(self.sizes.values())


class _Styles:
    """Font size and boldness of text rectangles. Boldness is a property of the font, asked once per
    font of the page (most rectangles share a handful of fonts)."""

    def __init__(self, textpage: pdfium.PdfTextPage) -> None:
        self._textpage = textpage
        self._bold: dict[int | None, bool] = {}

    def of(self, left: float, bottom: float, right: float, top: float) -> tuple[float, bool] | None:
        """(size in points rounded to 0.1, bold) of the rectangle's first character: a rectangle is a
        run of one text object, so of one font. None when no character is found there."""
        half = max((top - bottom) / 2, 0.5)
        index = self._textpage.get_index(min(left + half, right), (top + bottom) / 2, half, half)
        if index is None:
            return None
        raw = self._textpage.raw
        size = float(pdfium_c.FPDFText_GetFontSize(raw, index))
        if size <= 0:
            return None
        font = pdfium_c.FPDFTextObj_GetFont(pdfium_c.FPDFText_GetTextObject(raw, index))
        key = ctypes.cast(font, ctypes.c_void_p).value
        bold = self._bold.get(key)
        if bold is None:
            bold = self._bold[key] = _is_bold(font)
        return round(size, 1), bold


def _is_bold(font: Any) -> bool:
    if not font:
        return False
    if pdfium_c.FPDFFont_GetWeight(font) >= _BOLD_WEIGHT or pdfium_c.FPDFFont_GetFlags(font) & _FORCE_BOLD:
        return True
    name = ctypes.create_string_buffer(128)
    pdfium_c.FPDFFont_GetBaseFontName(font, name, len(name))
    return _BOLD_NAME.search(name.value.decode("latin-1")) is not None


def _lines(textpage: pdfium.PdfTextPage, styles: _Styles) -> list[_Line]:
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
            last.add(styles, (left, bottom, right, top), len(text))
        else:
            line = _Line(left, bottom, right, top, text)
            line.add(styles, (left, bottom, right, top), len(text))
            lines.append(line)
    return lines


def _restyled(line: _Line, nxt: _Line, styles: _Styles) -> bool:
    """The font changes between two lines: a heading and the text under it, even without a gap. Judged
    on each line's first rectangle, and when those differ, on all of both lines (a line may start with
    an italic word or a footnote mark)."""
    if _style_differs(line, nxt) and (line.unprobed or nxt.unprobed):
        line.probe_all(styles)
        nxt.probe_all(styles)
    return _style_differs(line, nxt)


def _style_differs(line: _Line, nxt: _Line) -> bool:
    a, b = line.size, nxt.size
    if a is None or b is None:
        return False
    return max(a, b) > min(a, b) * _LARGER or (line.bold != nxt.bold and abs(a - b) < 0.5 * _LARGER * a)


def _paragraphs(lines: list[_Line], styles: _Styles) -> list[_Para]:
    """Group lines: a paragraph ends at a vertical gap, a jump to a new column, a short last line, or a
    change of font size or weight."""
    if not lines:
        return []
    typical = statistics.median(line.right - line.left for line in lines)
    paragraphs: list[_Para] = []
    current = ""
    members: list[_Line] = []
    for i, line in enumerate(lines):
        current = _join(current, line.text)
        members.append(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        height = max(line.top - line.bottom, 1.0)
        ends = (
            nxt is None
            or line.bottom - nxt.top > 0.6 * height  # blank space below
            or nxt.top > line.top + height  # next line is higher up: a new column or a table cell
            or ((line.right - line.left) < typical * 0.7 and _SENTENCE_END.search(line.text) is not None)
            or _restyled(line, nxt, styles)
        )
        if ends:
            text = _CONTROL.sub("", current).strip()
            if text:
                paragraphs.append(_para(text, members, styles))
            current = ""
            members = []
    return paragraphs


def _shaped_like_heading(text: str, lines: int) -> bool:
    """Short, not ending like a sentence or a clause, with a letter."""
    if lines > _HEADING_MAX_LINES or len(text) > _HEADING_MAX_CHARS:
        return False
    return _HEADING_END.search(text) is None and _LETTER.search(text) is not None


def _para(text: str, lines: Sequence[_Line], styles: _Styles) -> _Para:
    if _shaped_like_heading(text, len(lines)):
        for line in lines:
            line.probe_all(styles)  # a heading must be one style throughout
    sizes: Counter[float] = Counter()
    bold = chars = 0
    for line in lines:
        sizes.update(line.sizes)
        bold += line.bold_chars
        chars += sum(line.sizes.values())
    if not sizes:
        return _Para(text, None, False, len(lines))
    size, in_size = sizes.most_common(1)[0]
    uniform = in_size >= _UNIFORM * chars and (bold >= _UNIFORM * chars or bold <= (1 - _UNIFORM) * chars)
    return _Para(text, size, bold * 2 > chars, len(lines), uniform)


def _bucket(size: float) -> float:
    """Sizes within a quarter point are one heading level (11.96 and 12 pt are the same style)."""
    return round(size * 2) / 2


class _Headings:
    """Which paragraphs are headings, judged against the document's body text: the font size covering
    the most characters (a title page or a page of large print says nothing about the rest)."""

    def __init__(self, pages: Sequence[tuple[int, Sequence[_Para]]]) -> None:
        paras = [p for _, on_page in pages for p in on_page]
        pages_of: Counter[str] = Counter()
        for _, on_page in pages:
            pages_of.update({p.text for p in on_page})
        self.running = {text for text, n in pages_of.items() if n >= _RUNNING}
        sizes: Counter[float] = Counter()
        weight: Counter[bool] = Counter()
        for p in paras:
            if p.size is not None:
                sizes[p.size] += len(p.text)
        self.body = sizes.most_common(1)[0][0] if sizes else None
        for p in paras:
            if p.size == self.body:
                weight[p.bold] += len(p.text)
        self.body_bold = weight[True] > weight[False]
        larger = {_bucket(p.size) for p in paras if p.size is not None and self.is_heading(p)}
        self.ranks = sorted(
            (s for s in larger if self.body and s >= _bucket(self.body * _LARGER)), reverse=True
        )

    def is_heading(self, p: _Para) -> bool:
        if self.body is None or p.size is None or not p.uniform or p.text in self.running:
            return False
        if not _shaped_like_heading(p.text, p.lines):
            return False
        if p.size >= self.body * _LARGER:
            return True
        return p.bold and not self.body_bold and p.size * _LARGER >= self.body

    def level(self, p: _Para) -> int:
        """1 for the largest headings; bold body-size headings come below every larger one."""
        size = _bucket(p.size) if p.size is not None else 0.0
        rank = self.ranks.index(size) if size in self.ranks else len(self.ranks)
        return min(rank + 1, 6)


def _blocks(pages: Sequence[tuple[int, Sequence[_Para]]]) -> list[Block]:
    headings = _Headings(pages)
    blocks: list[Block] = []
    for number, paras in pages:
        for p in paras:
            if headings.is_heading(p):
                blocks.append(Block(BlockKind.HEADING, p.text, level=headings.level(p), page=number))
            else:
                blocks.append(Block(BlockKind.PARAGRAPH, p.text, page=number))
    return blocks


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
    # the first page's top heading, else its first text (a running header may come before the title)
    top = [b for b in blocks if b.kind is BlockKind.HEADING and b.level == 1 and b.page == 1]
    first = top[0] if top else (blocks[0] if blocks else None)
    return first.text[:200] if first else ""


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
