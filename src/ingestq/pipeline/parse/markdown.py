"""Markdown through markdown-it-py (CommonMark plus tables), walked token by token into blocks.

Front matter (YAML `---` or TOML `+++`) is stripped and its `title` used. Mermaid fences are diagrams,
not prose, and are skipped. Hugo shortcodes are handled the way a reader of the rendered page would
see them: `highlight` and `code-toggle` pairs become code blocks, other tags are dropped (their inner
text kept), and the `{{</* x */>}}` escapes inside code examples are shown as the `{{< x >}}` they
stand for.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument, ParseOptions, SourceDocument
from ingestq.pipeline.parse.text import decode_text

_FRONT_MATTER = re.compile(
    r"\A(?:---[ \t]*\n(.*?)\n---|\+\+\+[ \t]*\n(.*?)\n\+\+\+)[ \t]*(?:\n|\Z)", re.DOTALL
)
_FM_TITLE = re.compile(r"""^title\s*[:=]\s*(?P<q>["']?)(?P<t>.*?)(?P=q)\s*$""", re.MULTILINE)
_FM_DESCRIPTION = re.compile(r"""^description\s*[:=]\s*(?P<q>["']?)(?P<t>.*?)(?P=q)\s*$""", re.MULTILINE)
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")
_CODE_OPEN = re.compile(r"^\s*\{\{<\s*(highlight|code-toggle)\b([^>]*)>\}\}\s*$")
_CODE_CLOSE = re.compile(r"^\s*\{\{<\s*/(highlight|code-toggle)\s*>\}\}\s*$")
_GLOSSARY = re.compile(r"""\{\{%\s*glossary-term\s+["']?([^"'%]+?)["']?\s*%\}\}""")
_SHORTCODE = re.compile(r"\{\{[<%].*?[>%]\}\}", re.DOTALL)
_ESCAPED = re.compile(r"\{\{([<%])/\*\s*(.*?)\s*\*/([>%])\}\}", re.DOTALL)
_ALERT = re.compile(r"^\[!(?:NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*", re.IGNORECASE)


class MarkdownParser:
    def __init__(self) -> None:
        self._md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")

    def parse(self, doc: SourceDocument, options: ParseOptions) -> ParsedDocument:
        text = decode_text(doc.data).replace("\r\n", "\n").replace("\r", "\n")
        title = description = ""
        match = _FRONT_MATTER.match(text)
        if match:
            front = match.group(1) or match.group(2) or ""
            title = _front_value(_FM_TITLE, front)
            description = _front_value(_FM_DESCRIPTION, front)
            text = text[match.end() :]
        tokens = self._md.parse(_shortcode_fences(text))
        blocks = _Walker(tokens).blocks()
        # Site generators render the front matter's title as the page's h1 and often show its
        # description as a lead paragraph; a section page may have nothing else.
        lead: list[Block] = []
        if title and not (blocks and blocks[0].kind is BlockKind.HEADING and blocks[0].level == 1):
            lead.append(Block(BlockKind.HEADING, title, level=1))
        if description:
            lead.append(Block(BlockKind.PARAGRAPH, description))
        if not title:
            title = next((b.text for b in blocks if b.kind is BlockKind.HEADING), "") or _stem(doc.name)
        if not blocks and not description:
            lead = []  # a title alone is not content
        return ParsedDocument(MediaType.MARKDOWN, title, (*lead, *blocks))


def _front_value(pattern: re.Pattern[str], front: str) -> str:
    match = pattern.search(front)
    return _clean_inline(match.group("t").replace('\\"', '"')) if match else ""


def _shortcode_fences(text: str) -> str:
    """Turn `{{< highlight go >}}`…`{{< /highlight >}}` pairs (outside fences) into fenced code."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker.startswith(fence):
                fence = None
            out.append(line)
            continue
        if fence is None:
            opened = _CODE_OPEN.match(line)
            if opened:
                args = opened.group(2).split()
                lang = args[0].strip("\"'") if opened.group(1) == "highlight" and args else ""
                out.append("```" + (lang if opened.group(1) == "highlight" else "toml"))
                continue
            if _CODE_CLOSE.match(line):
                out.append("```")
                continue
        out.append(line)
    return "\n".join(out)


def _clean_inline(text: str) -> str:
    text = _GLOSSARY.sub(r"\1", text)
    text = _SHORTCODE.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _unescape_shortcodes(code: str) -> str:
    return _ESCAPED.sub(lambda m: "{{" + m.group(1) + " " + m.group(2) + " " + m.group(3) + "}}", code)


class _Walker:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.out: list[Block] = []

    def blocks(self) -> list[Block]:
        while self.i < len(self.tokens):
            self._step()
        return self.out

    def _step(self) -> None:
        tok = self.tokens[self.i]
        if tok.type == "heading_open":
            text = _clean_inline(_inline_text(self.tokens[self.i + 1]))
            if text:
                self.out.append(Block(BlockKind.HEADING, text, level=int(tok.tag[1])))
            self.i += 3
        elif tok.type == "paragraph_open":
            text = _ALERT.sub("", _clean_inline(_inline_text(self.tokens[self.i + 1])))
            if text:
                self.out.append(Block(BlockKind.PARAGRAPH, text))
            self.i += 3
        elif tok.type in ("fence", "code_block"):
            lang = (tok.info or "").split()[0] if tok.info.strip() else ""
            code = _unescape_shortcodes(tok.content.rstrip("\n"))
            if lang.lower() != "mermaid" and code.strip():
                self.out.append(Block(BlockKind.CODE, code, language=lang))
            self.i += 1
        elif tok.type in ("bullet_list_open", "ordered_list_open", "table_open"):
            end = self._close_of(self.i)
            span = self.tokens[self.i : end + 1]
            if tok.type == "table_open":
                kind, lines = BlockKind.TABLE, _table_rows(span)
            else:
                kind, lines = BlockKind.LIST, _list_lines(span)
            if lines:
                self.out.append(Block(kind, "\n".join(lines)))
            self.i = end + 1
        elif tok.type == "html_block":
            text = _clean_inline(re.sub(r"<[^>]+>", " ", tok.content))
            if text:
                self.out.append(Block(BlockKind.PARAGRAPH, text))
            self.i += 1
        else:  # blockquote/hr/other wrappers: their inner blocks are visited in turn
            self.i += 1

    def _close_of(self, start: int) -> int:
        """Index of the token that closes the one at `start` (same nesting level)."""
        level = self.tokens[start].level
        close = self.tokens[start].type.replace("_open", "_close")
        for j in range(start + 1, len(self.tokens)):
            if self.tokens[j].type == close and self.tokens[j].level == level:
                return j
        return len(self.tokens) - 1


def _inline_text(tok: Token) -> str:
    parts: list[str] = []
    for child in tok.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content if child.type != "html_inline" else "")
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def _list_lines(tokens: list[Token]) -> list[str]:
    lines: list[str] = []
    depth = -1
    numbers: list[int] = []
    ordered: list[bool] = []
    pending_item = False
    for tok in tokens:
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
            ordered.append(tok.type == "ordered_list_open")
            numbers.append(int(tok.attrs.get("start", 1) or 1))
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
            ordered.pop()
            numbers.pop()
        elif tok.type == "list_item_open":
            pending_item = True
        elif tok.type == "inline":
            text = _clean_inline(_inline_text(tok))
            if not text:
                continue
            if pending_item:
                if ordered[-1]:
                    marker = f"{numbers[-1]}. "
                    numbers[-1] += 1
                else:
                    marker = "- "
                lines.append("  " * depth + marker + text)
                pending_item = False
            else:  # a second paragraph inside the same item
                lines.append("  " * depth + "  " + text)
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            code = _unescape_shortcodes(tok.content.rstrip("\n"))
            lines.extend("  " * (depth + 1) + line for line in code.split("\n"))
    return lines


def _table_rows(tokens: list[Token]) -> list[str]:
    rows: list[str] = []
    cells: list[str] = []
    for tok in tokens:
        if tok.type == "tr_open":
            cells = []
        elif tok.type == "inline":
            cells.append(_clean_inline(_inline_text(tok)).replace("\n", " "))
        elif tok.type == "tr_close" and any(cells):
            rows.append(" | ".join(cells))
    return rows


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base
