"""HTML through trafilatura's main-content extractor, so menus, footers and cookie banners are dropped.

trafilatura is asked for its XML output (TEI-like: head/p/list/table/code elements) with formatting
kept, which preserves heading levels; that tree is then mapped onto blocks. It runs offline and
detects the page's encoding itself.
"""

from __future__ import annotations

import re

import trafilatura
from lxml import etree

from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument, ParseOptions, SourceDocument

_WS = re.compile(r"[ \t\r\f\v]+")


class HtmlParser:
    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        xml = _extract(doc.data, favor_recall=False)
        if not xml:  # short or unusual pages: trade some precision for finding any main text at all
            xml = _extract(doc.data, favor_recall=True)
        if not xml:
            return ParsedDocument(
                MediaType.HTML, _fallback_title(doc), (), warnings=("no main content found in the page",)
            )
        root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
        blocks: list[Block] = []
        main = root.find("main")
        for child in main if main is not None else root:
            _convert(child, blocks)
        title = (root.get("title") or "").strip() or _fallback_title(doc)
        warnings = () if blocks else ("no main content found in the page",)
        return ParsedDocument(MediaType.HTML, title, tuple(blocks), warnings=warnings)


def _extract(data: bytes, *, favor_recall: bool) -> str | None:
    result: str | None = trafilatura.extract(
        data,
        output_format="xml",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_images=False,
        with_metadata=True,
        deduplicate=False,
        favor_recall=favor_recall,
    )
    return result


def _convert(el: etree._Element, out: list[Block]) -> None:
    builder = _BUILDERS.get(el.tag)
    if builder is None:  # a container (div, main, a stray row...): its children carry the content
        for child in el:
            _convert(child, out)
        return
    block = builder(el)
    if block is not None:
        out.append(block)


def _heading(el: etree._Element) -> Block | None:
    text = _inline(el).replace("\n", " ")
    rend = el.get("rend") or "h2"
    level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
    return Block(BlockKind.HEADING, text, level=level) if text else None


def _list(el: etree._Element) -> Block | None:
    lines = _list_lines(el, 0)
    return Block(BlockKind.LIST, "\n".join(lines)) if lines else None


def _table(el: etree._Element) -> Block | None:
    rows = []
    for row in el.iter("row"):
        cells = [_inline(cell).replace("\n", " ") for cell in row if cell.tag == "cell"]
        if any(cells):
            rows.append(" | ".join(cells))
    return Block(BlockKind.TABLE, "\n".join(rows)) if rows else None


def _code(el: etree._Element) -> Block | None:
    text = "".join(el.itertext()).strip("\n")
    return Block(BlockKind.CODE, text) if text.strip() else None


def _paragraph(el: etree._Element) -> Block | None:
    text = _inline(el)
    return Block(BlockKind.PARAGRAPH, text) if text else None


_BUILDERS = {
    "head": _heading,
    "list": _list,
    "table": _table,
    "code": _code,
    "p": _paragraph,
    "quote": _paragraph,
    "item": _paragraph,
    "cell": _paragraph,
}


def _list_lines(el: etree._Element, depth: int) -> list[str]:
    lines: list[str] = []
    for item in el:
        if item.tag != "item":
            continue
        nested = [sub for sub in item if sub.tag == "list"]
        for sub in nested:
            item.remove(sub)  # the tree is ours (parsed from a string just above)
        text = _inline(item)
        if text:
            lines.append("  " * depth + "- " + text)
        for sub in nested:
            lines.extend(_list_lines(sub, depth + 1))
    return lines


def _inline(el: etree._Element) -> str:
    parts: list[str] = []
    for node in el.iter():
        if node.tag == "lb":
            parts.append("\n")
        elif node.text:
            parts.append(node.text)
        if node is not el and node.tail:
            parts.append(node.tail)
    lines = (_WS.sub(" ", line).strip() for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _fallback_title(doc: SourceDocument) -> str:
    match = _TITLE.search(doc.data[:65536])
    if match:
        return _WS.sub(" ", match.group(1).decode("utf-8", errors="replace")).strip()
    return doc.name.rsplit("/", 1)[-1]
