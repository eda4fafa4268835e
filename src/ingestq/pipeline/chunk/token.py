"""A structure-aware chunker bounded by the embedder's own token count.

How it cuts, in order of preference:
1. At headings: every heading of level <= `section_level` starts a new chunk, and each chunk records the
   heading path it sits under ("Guide > Install > Linux"), optionally prefixed to the embedded text.
   Sections are packed independently, so an edit inside one section cannot move the chunk boundaries
   of another (what lets re-ingestion reuse most cached vectors).
2. Between blocks, then between the lines of a table, list or code block (a row, an item or a code line
   is never split while it fits), then between sentences, then between words, and only as a last
   resort between two tokens of one over-long word.

Blocks are packed greedily up to the budget: the window minus the special tokens minus the prefix.
Sums of per-piece counts are only an estimate of the count of the joined text, so every chunk's final
text is counted again, exactly, and a chunk over the window is split further. No chunk leaves this
module longer than `max_tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ingestq.pipeline.chunk.base import Chunk, chunk_id
from ingestq.pipeline.embed.cache import text_hash
from ingestq.pipeline.embed.tokenizer import Tokenizer
from ingestq.pipeline.model import Block, BlockKind, ParsedDocument

_LINE_KINDS = frozenset({BlockKind.TABLE, BlockKind.LIST, BlockKind.CODE})
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_SPACE = re.compile(r"\s+")
PATH_SEPARATOR = " > "


@dataclass(slots=True)
class _Unit:
    text: str
    sep: str
    """Joins this unit to the previous one in the same chunk."""
    tokens: int
    page: int | None
    path: tuple[str, ...]


_Section = list[tuple[Block, tuple[str, ...]]]


def _split_keep(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [p for p in pattern.split(text) if p]


class TokenChunker:
    def __init__(
        self,
        tokenizer: Tokenizer,
        max_tokens: int,
        chunk_tokens: int | None = None,
        overlap_tokens: int = 0,
        heading_prefix: bool = True,
        section_level: int = 6,
        title_in_path: bool = True,
    ) -> None:
        """`max_tokens` is the embedder's window (special tokens included): a hard limit. `chunk_tokens`
        is the target size (defaults to the window). `overlap_tokens` of trailing whole pieces of one
        chunk are repeated at the start of the next, within a section."""
        if max_tokens <= tokenizer.special_tokens + 8:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text")
        if overlap_tokens < 0:
            raise ValueError("overlap_tokens must be >= 0")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.chunk_tokens = min(chunk_tokens or max_tokens, max_tokens)
        self.overlap_tokens = overlap_tokens
        self.heading_prefix = heading_prefix
        self.section_level = section_level
        self.title_in_path = title_in_path
        self._special = tokenizer.special_tokens
        self._prefixes: dict[tuple[str, ...], tuple[str, int]] = {}

    # --- counting ----------------------------------------------------------------------------------

    def _count(self, texts: Sequence[str]) -> list[int]:
        return [n - self._special for n in self.tokenizer.count_tokens_batch(texts)]

    def _prefix(self, path: tuple[str, ...]) -> tuple[str, int]:
        """The heading path prefix and its tokens, shortened from the left if it would eat over a quarter
        of the window. Cached: a document's sections share most of their paths."""
        if not self.heading_prefix or not path:
            return "", 0
        cached = self._prefixes.get(path)
        if cached is not None:
            return cached
        found = "", 0
        limit = self.max_tokens // 4
        for start in range(len(path)):
            candidate = PATH_SEPARATOR.join(path[start:])
            tokens = self._count([candidate + "\n\n"])[0]
            if candidate.strip() and tokens + 1 <= limit:
                found = candidate + "\n\n", tokens
                break
        if len(self._prefixes) > 10_000:
            self._prefixes.clear()
        self._prefixes[path] = found
        return found

    # --- splitting ---------------------------------------------------------------------------------

    def _pieces(self, text: str, budget: int, level: int) -> Iterator[tuple[str, str, int]]:
        """(piece, separator, tokens) with every piece within `budget` tokens (as counted alone).

        Levels: 0 sentences, 1 words, 2 token boundaries.
        """
        if level == 0:
            parts, sep = _split_keep(text, _SENTENCE_END), " "
        elif level == 1:
            parts, sep = _split_keep(text, _SPACE), " "
        else:
            yield from self._token_cut(text, budget)
            return
        counts = self._count(parts)
        for part, count in zip(parts, counts, strict=True):
            if count <= budget:
                yield part, sep, count
                continue
            # the part's first piece is joined to what came before with this level's separator
            for i, (piece, piece_sep, piece_count) in enumerate(self._pieces(part, budget, level + 1)):
                yield piece, sep if i == 0 else piece_sep, piece_count

    def _token_cut(self, text: str, budget: int) -> Iterator[tuple[str, str, int]]:
        """Cut between tokens: the largest run of whole tokens that counts within `budget`."""
        ends = sorted({e for e in self.tokenizer.token_ends(text) if 0 < e < len(text)})
        ends.append(len(text))
        start, first = 0, 0  # `first`: index of the first token end after `start`
        while start < len(text):
            step = max(1, budget)
            while True:
                last = min(first + step, len(ends)) - 1
                piece = text[start : ends[last]]
                count = self._count([piece])[0]
                if count <= budget or step == 1:
                    break
                step = max(1, step // 2)  # the run counts more than its tokens alone: shrink it
            yield piece, "", count
            start, first = ends[last], last + 1

    def _units(self, sections: Sequence[_Section], budgets: Sequence[int]) -> list[list[_Unit]]:
        """Each section's blocks as the smallest pieces the chunker prefers to keep whole (one
        tokenizer call for the whole document)."""
        raw: list[tuple[int, str, str, Block, tuple[str, ...]]] = []
        for index, section in enumerate(sections):
            for block, path in section:
                lines = block.text.split("\n") if block.kind in _LINE_KINDS else [block.text]
                first = True
                for line in lines:
                    if line.strip():
                        raw.append((index, line, "\n\n" if first else "\n", block, path))
                        first = False
        counts = self._count([r[1] for r in raw])
        units: list[list[_Unit]] = [[] for _ in sections]
        for (index, text, sep, block, path), count in zip(raw, counts, strict=True):
            budget = budgets[index]
            if count <= budget:
                units[index].append(_Unit(text, sep, count, block.page, path))
                continue
            level = 1 if block.kind in _LINE_KINDS else 0
            for i, (piece, piece_sep, piece_count) in enumerate(self._pieces(text, budget, level)):
                units[index].append(_Unit(piece, sep if i == 0 else piece_sep, piece_count, block.page, path))
        return units

    # --- packing -----------------------------------------------------------------------------------

    def _sections(self, document: ParsedDocument) -> Iterator[_Section]:
        # The document title roots every path ("Windows > Package managers > Chocolatey"): most
        # formats keep it outside the body (front matter, <title>, document properties).
        title = " ".join(document.title.split()) if self.title_in_path else ""
        stack: list[tuple[int, str]] = [(0, title)] if title else []
        section: _Section = []
        for block in document.blocks:
            if not block.text.strip():
                continue
            if block.kind == BlockKind.HEADING:
                level = max(1, block.level)
                if len(stack) == 1 and stack[0][0] == 0 and " ".join(block.text.split()) == title:
                    level = 0  # an H1 repeating the title replaces it rather than nesting under it
                    stack.pop()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, " ".join(block.text.split())))
                if section and level <= self.section_level:
                    yield section
                    section = []
            section.append((block, tuple(t for _, t in stack)))
        if section:
            yield section

    def _pack(self, units: list[_Unit], budget: int) -> Iterator[tuple[list[_Unit], int]]:
        """Greedy packing; yields (units, how many leading units are overlap)."""
        current: list[_Unit] = []
        carried = 0
        tokens = 0
        for unit in units:
            if current and tokens + unit.tokens > budget and len(current) > carried:
                yield current, carried
                current = self._overlap(current, budget - unit.tokens)
                carried = len(current)
                tokens = sum(u.tokens for u in current)
            current.append(unit)
            tokens += unit.tokens
        if len(current) > carried:
            yield current, carried

    def _overlap(self, previous: list[_Unit], room: int) -> list[_Unit]:
        if self.overlap_tokens <= 0:
            return []
        limit = min(self.overlap_tokens, room)
        kept: list[_Unit] = []
        total = 0
        for unit in reversed(previous[1:]):  # never repeat a whole chunk
            if total + unit.tokens > limit:
                break
            kept.insert(0, unit)
            total += unit.tokens
        return kept

    # --- assembling --------------------------------------------------------------------------------

    @staticmethod
    def _join(units: Sequence[_Unit]) -> str:
        return units[0].text + "".join(u.sep + u.text for u in units[1:])

    @staticmethod
    def _common_path(units: Sequence[_Unit]) -> tuple[str, ...]:
        path = units[0].path
        for unit in units[1:]:
            n = 0
            while n < min(len(path), len(unit.path)) and path[n] == unit.path[n]:
                n += 1
            path = path[:n]
        return path

    def _assemble(self, units: list[_Unit], carried: int) -> tuple[str, str, int, tuple[str, ...]]:
        path = self._common_path(units[carried:])
        body = self._join(units)
        overlap = len(self._join(units[:carried])) if carried else 0
        return self._prefix(path)[0] + body, body, overlap, path

    def _fit(
        self, units: list[_Unit], carried: int, count: int | None = None
    ) -> Iterator[tuple[list[_Unit], int, int]]:
        """Yield (units, carried, exact tokens) groups whose assembled text fits the window."""
        if count is None:
            count = self.tokenizer.count_tokens(self._assemble(units, carried)[0])
        if count <= self.max_tokens:
            yield units, carried, count
            return
        if carried:  # drop the overlap before splitting real content
            yield from self._fit(units[carried:], 0)
            return
        if len(units) > 1:
            half = len(units) // 2
            yield from self._fit(units[:half], 0)
            yield from self._fit(units[half:], 0)
            return
        unit = units[0]
        if unit.tokens <= 1:
            raise RuntimeError(f"a single token does not fit the window of {self.max_tokens}")
        budget = max(1, min(unit.tokens - 1, self.max_tokens - self._special - self._prefix(unit.path)[1]))
        for i, (piece, _, piece_count) in enumerate(self._token_cut(unit.text, budget)):
            sub = _Unit(piece, unit.sep if i == 0 else "", piece_count, unit.page, unit.path)
            yield from self._fit([sub], 0)

    def chunk(self, document: ParsedDocument, document_id: str) -> list[Chunk]:
        target = self.chunk_tokens - self._special
        sections = list(self._sections(document))
        budgets = [max(8, target - self._prefix(section[0][1])[1]) for section in sections]
        groups = [
            group
            for units, budget in zip(self._units(sections, budgets), budgets, strict=True)
            for group in self._pack(units, budget)
        ]
        # Per-piece counts only estimate the joined text's count: count every chunk exactly, in one
        # call, and split the (rare) chunk that came out over the window.
        counts = self.tokenizer.count_tokens_batch([self._assemble(u, c)[0] for u, c in groups])
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        for (packed, carried), count in zip(groups, counts, strict=True):
            for units, overlap_units, tokens in self._fit(packed, carried, count):
                text, body, overlap, path = self._assemble(units, overlap_units)
                digest = text_hash(text)
                occurrence = seen.get(digest, 0)
                seen[digest] = occurrence + 1
                pages = [u.page for u in units if u.page is not None]
                chunks.append(
                    Chunk(
                        id=chunk_id(document_id, text, occurrence),
                        ordinal=len(chunks),
                        text=text,
                        body=body,
                        overlap=overlap,
                        heading_path=path,
                        token_count=tokens,
                        text_hash=digest,
                        page=pages[0] if pages else None,
                        page_end=pages[-1] if pages else None,
                    )
                )
        return chunks
