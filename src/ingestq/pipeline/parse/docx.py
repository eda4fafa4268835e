"""DOCX through python-docx: body paragraphs and tables in document order.

Headings come from the paragraph style ("Heading N", "Title") or an explicit outline level; list items
are paragraphs with numbering or a "List …" style, and consecutive items form one list block. Before
python-docx unpacks anything, the ZIP directory is checked: a file whose members expand past
`ParseOptions.max_unpacked_bytes` is refused (a zip bomb), and a damaged archive is reported as such.
python-docx's XML parser does not resolve external entities, so XXE files are harmless.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

import docx
from docx.document import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingestq.pipeline.errors import CorruptDocument, DocumentTooLarge, UnsupportedDocument
from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument, ParseOptions, SourceDocument

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_WS = re.compile(r"[ \t\u00a0]+")


class DocxParser:
    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        _check_archive(doc.data, options.max_unpacked_bytes)
        try:
            document = docx.Document(io.BytesIO(doc.data))
        except PackageNotFoundError:
            raise CorruptDocument("corrupt DOCX: not a Word package") from None
        except ValueError as exc:  # python-docx: "file '...' is not a Word file, content type is ..."
            raise UnsupportedDocument(f"not a Word document: {_one_line(exc)}") from None
        except (KeyError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise CorruptDocument(f"corrupt DOCX: {_one_line(exc)}") from None
        blocks = list(_blocks(document))
        title = (document.core_properties.title or "").strip()
        if not title:
            title = next((b.text for b in blocks if b.kind is BlockKind.HEADING), "")
        return ParsedDocument(MediaType.DOCX, title, tuple(blocks))


def _check_archive(data: bytes, limit: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CorruptDocument(f"corrupt DOCX: {_one_line(exc)}") from None
    # zipfile never inflates a member past its declared size, so the directory's sum is a hard bound.
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise DocumentTooLarge(
            f"DOCX expands to {total / 2**20:,.0f} MiB, over the {limit / 2**20:,.0f} MiB limit (zip bomb?)"
        )
    if any(info.flag_bits & 0x1 for info in infos):
        raise CorruptDocument("corrupt DOCX: ZIP members are encrypted")


def _blocks(document: Document) -> Iterator[Block]:
    list_lines: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            depth = _list_depth(item)
            if depth is not None:
                text = _text(item.text)
                if text:
                    list_lines.append("  " * depth + "- " + text)
                continue
        if list_lines:
            yield Block(BlockKind.LIST, "\n".join(list_lines))
            list_lines = []
        if isinstance(item, Table):
            rows = _table_rows(item)
            if rows:
                yield Block(BlockKind.TABLE, "\n".join(rows))
            continue
        text = _text(item.text)
        if not text:
            continue
        level = _heading_level(item)
        if level:
            yield Block(BlockKind.HEADING, text.replace("\n", " "), level=level)
        else:
            yield Block(BlockKind.PARAGRAPH, text)
    if list_lines:
        yield Block(BlockKind.LIST, "\n".join(list_lines))


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError, AttributeError):  # dangling style ids in damaged files
        return ""
    return (style.name or "") if style is not None else ""


def _heading_level(paragraph: Paragraph) -> int:
    name = _style_name(paragraph)
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name)
    if match:
        return min(int(match.group(1)), 6)
    ppr = paragraph._p.pPr
    if ppr is not None:
        outline = ppr.find(qn("w:outlineLvl"))
        if outline is not None:
            value = outline.get(qn("w:val"), "")
            if value.isdigit() and int(value) < 6:
                return int(value) + 1
    return 0


def _list_depth(paragraph: Paragraph) -> int | None:
    """The nesting level when the paragraph is a list item, else None."""
    ppr = paragraph._p.pPr
    num_pr = ppr.find(qn("w:numPr")) if ppr is not None else None
    if num_pr is not None:
        ilvl = num_pr.find(qn("w:ilvl"))
        value = ilvl.get(qn("w:val"), "0") if ilvl is not None else "0"
        return min(int(value), 8) if value.isdigit() else 0
    name = _style_name(paragraph)
    if name.lower().startswith("list"):
        digits = re.search(r"(\d)$", name)
        return int(digits.group(1)) - 1 if digits else 0
    return None


def _table_rows(table: Table) -> list[str]:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # Merged cells repeat the same underlying element; show their text once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(_text(cell.text).replace("\n", " "))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _text(raw: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in raw.replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
