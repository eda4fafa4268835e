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
from docx.oxml.xmlchemy import BaseOxmlElement
from lxml import etree

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
        warnings: tuple[str, ...] = ()
        if not blocks:
            # A body with no text: headers and footers are still the document's own words.
            blocks = _header_footer_blocks(document)
            warnings = ("body is empty; text taken from headers and footers",) if blocks else ()
        title = (document.core_properties.title or "").strip()
        if not title:
            title = next((b.text for b in blocks if b.kind is BlockKind.HEADING), "")
        if not title and blocks:
            title = blocks[0].text.split("\n", 1)[0][:200]
        return ParsedDocument(MediaType.DOCX, title, tuple(blocks), warnings=warnings)


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


_P, _TBL, _TR, _TC = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc")
_SDT, _SDT_CONTENT, _CUSTOM_XML = qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")
_T, _TAB, _BR, _CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def _blocks(document: Document) -> Iterator[Block]:
    styles = _StyleNames(document)
    list_lines: list[str] = []
    for element in _body_elements(document.element.body):
        if element.tag == _P:
            style = styles.of(element)
            text = _text(_paragraph_text(element))
            depth = _list_depth(element, style)
            if depth is not None:
                if text:
                    list_lines.append("  " * depth + "- " + text)
                continue
        if list_lines:
            yield Block(BlockKind.LIST, "\n".join(list_lines))
            list_lines = []
        if element.tag == _TBL:
            rows = _table_rows(element)
            if rows:
                yield Block(BlockKind.TABLE, "\n".join(rows))
            continue
        if element.tag == _P and (diagram := _diagram_text(element, document)):
            # SmartArt: its words live in a part of their own, not in the paragraph's runs
            text = f"{text}\n{diagram}" if text else diagram
        if not text:
            continue
        level = _heading_level(element, style)
        if level:
            yield Block(BlockKind.HEADING, text.replace("\n", " "), level=level)
        else:
            yield Block(BlockKind.PARAGRAPH, text)
    if list_lines:
        yield Block(BlockKind.LIST, "\n".join(list_lines))


def _header_footer_blocks(document: Document) -> list[Block]:
    seen: set[str] = set()
    blocks: list[Block] = []
    for section in document.sections:
        parts = (
            section.header,
            section.first_page_header,
            section.even_page_header,
            section.footer,
            section.first_page_footer,
            section.even_page_footer,
        )
        for part in parts:
            if part.is_linked_to_previous:
                continue
            for paragraph in part._element.iter(_P):
                text = _text(_paragraph_text(paragraph))
                if text and text not in seen:
                    seen.add(text)
                    blocks.append(Block(BlockKind.PARAGRAPH, text))
    return blocks


def _body_elements(parent: BaseOxmlElement) -> Iterator[BaseOxmlElement]:
    """Paragraphs and tables in order, looking inside content controls (w:sdt) and custom XML,
    which python-docx's own iteration skips (whole documents are sometimes wrapped in them)."""
    for child in parent.iterchildren():
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag == _SDT:
            content = child.find(_SDT_CONTENT)
            if content is not None:
                yield from _body_elements(content)
        elif child.tag == _CUSTOM_XML:
            yield from _body_elements(child)


_DGM = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
_DGM_REL_IDS = f"{{{_DGM}}}relIds"
_DGM_PT, _DGM_T = f"{{{_DGM}}}pt", f"{{{_DGM}}}t"
_A_P, _A_T = qn("a:p"), qn("a:t")
_R_DM = qn("r:dm")
# the diagram part is untrusted XML like the rest: no entities, no network, no huge trees
_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _diagram_text(paragraph: BaseOxmlElement, document: Document) -> str:
    """The node texts of the SmartArt diagrams drawn in a paragraph, one line per text paragraph."""
    lines: list[str] = []
    for rel_ids in paragraph.iter(_DGM_REL_IDS):
        part = document.part.related_parts.get(rel_ids.get(_R_DM) or "")
        if part is None:
            continue
        try:
            root = etree.fromstring(part.blob, _XML)
        except etree.XMLSyntaxError:
            continue
        for point in root.iter(_DGM_PT):
            if point.get("type", "node") != "node":
                continue  # connectors and the diagram's own root carry no words
            for body in point.iterchildren(_DGM_T):
                for para in body.iter(_A_P):
                    line = _text("".join(t.text or "" for t in para.iter(_A_T)))
                    if line:
                        lines.append(line)
    return "\n".join(lines)


def _children(parent: BaseOxmlElement, tag: str) -> Iterator[BaseOxmlElement]:
    """Children with `tag`, also those wrapped in content controls or custom XML: Word's cover pages
    bind table rows and cells to the document's title and author that way."""
    for child in parent.iterchildren():
        if child.tag == tag:
            yield child
        elif child.tag == _SDT:
            content = child.find(_SDT_CONTENT)
            if content is not None:
                yield from _children(content, tag)
        elif child.tag == _CUSTOM_XML:
            yield from _children(child, tag)


def _paragraph_text(element: BaseOxmlElement) -> str:
    """All run text under the paragraph: runs, hyperlinks, simple fields, text boxes, tabs and breaks
    (skipping the fallback copy that Word stores for each drawing-based text box)."""
    parts: list[str] = []
    stack = [element]
    while stack:
        node = stack.pop()
        tag = node.tag
        if tag == _T:
            parts.append(node.text or "")
        elif tag == _TAB:
            parts.append("\t")
        elif tag in (_BR, _CR):
            parts.append("\n")
        elif tag != _MC_FALLBACK:
            stack.extend(reversed(list(node.iterchildren())))
    return "".join(parts)


class _StyleNames:
    """Paragraph style id -> name, read once. python-docx resolves each paragraph's style by scanning
    every style, which takes minutes on long documents with large style sheets."""

    def __init__(self, document: Document) -> None:
        self.names: dict[str, str] = {}
        self.default = ""
        try:
            root = document.styles.element
        except (KeyError, ValueError, AttributeError):  # no or broken styles part
            return
        for style in root.iterchildren(qn("w:style")):
            style_id = style.get(qn("w:styleId")) or ""
            name_el = style.find(qn("w:name"))
            name = (name_el.get(qn("w:val")) if name_el is not None else None) or style_id
            self.names[style_id] = name
            if style.get(qn("w:type")) == "paragraph" and style.get(qn("w:default")) in ("1", "true", "on"):
                self.default = name

    def of(self, paragraph: BaseOxmlElement) -> str:
        ppr = paragraph.find(qn("w:pPr"))
        ref = ppr.find(qn("w:pStyle")) if ppr is not None else None
        style_id = ref.get(qn("w:val")) if ref is not None else None
        return self.names.get(style_id, self.default) if style_id else self.default


def _heading_level(paragraph: BaseOxmlElement, style: str) -> int:
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style)
    if match:
        return min(int(match.group(1)), 6)
    ppr = paragraph.find(qn("w:pPr"))
    if ppr is not None:
        outline = ppr.find(qn("w:outlineLvl"))
        if outline is not None:
            value = outline.get(qn("w:val"), "")
            if value.isdigit() and int(value) < 6:
                return int(value) + 1
    return 0


def _list_depth(paragraph: BaseOxmlElement, style: str) -> int | None:
    """The nesting level when the paragraph is a list item, else None."""
    ppr = paragraph.find(qn("w:pPr"))
    num_pr = ppr.find(qn("w:numPr")) if ppr is not None else None
    if num_pr is not None:
        ilvl = num_pr.find(qn("w:ilvl"))
        value = ilvl.get(qn("w:val"), "0") if ilvl is not None else "0"
        return min(int(value), 8) if value.isdigit() else 0
    if style.lower().startswith("list"):
        digits = re.search(r"(\d)$", style)
        return int(digits.group(1)) - 1 if digits else 0
    return None


def _table_rows(table: BaseOxmlElement) -> list[str]:
    rows: list[str] = []
    for row in _children(table, _TR):
        cells = []
        for cell in _children(row, _TC):
            texts = (_text(_paragraph_text(p)) for p in cell.iter(_P))
            cells.append(" ".join(t for t in texts if t).replace("\n", " "))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _text(raw: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in raw.replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
