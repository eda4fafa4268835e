"""The structure-aware token chunker: example-based checks plus hypothesis properties (never over the
window, deterministic, every character of the document lands in a chunk, in order)."""

from __future__ import annotations

import itertools
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestq.pipeline.chunk import Chunk, TokenChunker
from ingestq.pipeline.embed.fake import WhitespaceTokenizer
from ingestq.pipeline.embed.sentence_transformers import bundled_model_path
from ingestq.pipeline.embed.tokenizer import EstimatingTokenizer, HuggingFaceTokenizer, Tokenizer
from ingestq.pipeline.model import Block, BlockKind, MediaType, ParsedDocument

H, P, L, T, C = BlockKind.HEADING, BlockKind.PARAGRAPH, BlockKind.LIST, BlockKind.TABLE, BlockKind.CODE


@cache
def minilm() -> HuggingFaceTokenizer:
    return HuggingFaceTokenizer(bundled_model_path())


def doc(*blocks: Block, title: str = "") -> ParsedDocument:
    return ParsedDocument(media_type=MediaType.MARKDOWN, title=title, blocks=tuple(blocks))


def words(n: int, word: str = "word") -> str:
    return " ".join(f"{word}{i}" for i in range(n))


def squash(text: str) -> str:
    return "".join(text.split())


def covered(chunks: list[Chunk]) -> str:
    return "".join(squash(c.body[c.overlap :]) for c in chunks)


def check_invariants(chunker: TokenChunker, document: ParsedDocument, chunks: list[Chunk]) -> None:
    tok = chunker.tokenizer
    for i, c in enumerate(chunks):
        assert c.ordinal == i
        assert c.token_count == tok.count_tokens(c.text) <= chunker.max_tokens
        assert c.text.endswith(c.body)
    assert covered(chunks) == squash(document.text)
    # and nothing was glued together or reordered: each chunk is a stretch of the document's text
    flat = " ".join(document.text.split())
    for c in chunks:
        assert " ".join(c.body.split()) in flat
    assert len({c.id for c in chunks}) == len(chunks)


def test_heading_path_is_kept_and_rooted_at_the_title() -> None:
    d = doc(
        Block(P, "Intro text."),
        Block(H, "Install", level=2),
        Block(H, "Linux", level=3),
        Block(P, "Use the package manager."),
        Block(H, "Windows", level=3),
        Block(P, "Use winget."),
        Block(H, "Usage", level=2),
        Block(P, "Run it."),
        title="Guide",
    )
    chunker = TokenChunker(minilm(), 256)
    chunks = chunker.chunk(d, "doc")
    assert [c.heading for c in chunks] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > Linux",
        "Guide > Install > Windows",
        "Guide > Usage",
    ]
    linux = chunks[2]
    assert linux.text == "Guide > Install > Linux\n\nLinux\n\nUse the package manager."
    assert linux.body == "Linux\n\nUse the package manager."
    check_invariants(chunker, d, chunks)


def test_h1_equal_to_title_is_not_repeated() -> None:
    d = doc(Block(H, "Guide", level=1), Block(H, "Setup", level=2), Block(P, "x"), title="Guide")
    chunks = TokenChunker(minilm(), 256).chunk(d, "d")
    assert chunks[-1].heading_path == ("Guide", "Setup")


def test_no_prefix_embeds_the_body_alone() -> None:
    d = doc(Block(H, "Setup", level=2), Block(P, "Some text."), title="Guide")
    (chunk,) = TokenChunker(minilm(), 256, heading_prefix=False).chunk(d, "d")
    assert chunk.text == chunk.body == "Setup\n\nSome text."
    assert chunk.heading_path == ("Guide", "Setup")


def test_section_level_merges_small_subsections() -> None:
    d = doc(
        Block(H, "A", level=2),
        Block(H, "A1", level=3),
        Block(P, "one"),
        Block(H, "A2", level=3),
        Block(P, "two"),
        Block(H, "B", level=2),
        Block(P, "three"),
    )
    chunks = TokenChunker(minilm(), 256, section_level=2).chunk(d, "d")
    assert [c.heading_path for c in chunks] == [("A",), ("B",)]  # A's chunk spans A1 and A2: common path


def test_table_rows_and_code_lines_are_not_cut() -> None:
    rows = [f"name{i} | value {i} | some description of row {i}" for i in range(40)]
    code = [f"    call_function_{i}(argument_{i}, other)" for i in range(40)]
    d = doc(Block(T, "\n".join(rows)), Block(C, "\n".join(code)))
    chunker = TokenChunker(minilm(), 64)
    chunks = chunker.chunk(d, "d")
    assert len(chunks) > 4
    for c in chunks:
        for line in c.body.split("\n"):
            if line.strip():
                assert line in rows or line in code, line
    check_invariants(chunker, d, chunks)


def test_long_paragraph_is_cut_between_sentences() -> None:
    sentences = [f"Sentence number {i} says something short." for i in range(60)]
    d = doc(Block(P, " ".join(sentences)))
    chunker = TokenChunker(minilm(), 48)
    chunks = chunker.chunk(d, "d")
    assert len(chunks) > 3
    for c in chunks:
        assert c.body.endswith(".")
    check_invariants(chunker, d, chunks)


def test_a_single_huge_word_is_cut_between_tokens() -> None:
    d = doc(Block(P, "x" + "abcdefghij" * 500), Block(P, "é" * 3000))
    chunker = TokenChunker(minilm(), 32)
    check_invariants(chunker, d, chunker.chunk(d, "d"))


def test_words_stay_apart_around_a_cut_word() -> None:
    d = doc(Block(P, "before " + "abcdefghij" * 100 + " after"))
    chunks = TokenChunker(minilm(), 32).chunk(d, "d")
    assert chunks[0].body.startswith("before abcdefghij")
    assert chunks[-1].body.endswith("abcdefghij after")


def test_an_over_long_heading_path_is_shortened_not_fatal() -> None:
    d = doc(
        *[Block(H, words(30, f"h{i}_"), level=i + 1) for i in range(6)], Block(P, "body"), title=words(40)
    )
    chunker = TokenChunker(minilm(), 64)
    chunks = chunker.chunk(d, "d")
    check_invariants(chunker, d, chunks)
    assert chunks[-1].text.endswith("body")


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    sentences = [f"Fact {i} is true." for i in range(80)]
    d = doc(Block(P, " ".join(sentences)))
    chunker = TokenChunker(minilm(), 48, overlap_tokens=12)
    chunks = chunker.chunk(d, "d")
    assert all(c.overlap > 0 for c in chunks[1:])
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.body.endswith(nxt.body[: nxt.overlap])
        assert chunker.tokenizer.count_tokens(nxt.body[: nxt.overlap]) - 2 <= 12
    check_invariants(chunker, d, chunks)


def test_pages_are_recorded() -> None:
    d = doc(Block(P, words(30), page=1), Block(P, words(30), page=2), Block(P, words(200), page=3))
    chunks = TokenChunker(WhitespaceTokenizer(), 64).chunk(d, "d")
    # the first chunk fills up with the start of page 3's paragraph
    assert (chunks[0].page, chunks[0].page_end) == (1, 3)
    assert chunks[-1].page == chunks[-1].page_end == 3


def test_ids_are_deterministic_and_depend_on_content_not_position() -> None:
    chunker = TokenChunker(minilm(), 64)
    sections = [(Block(H, f"Section {i}", level=2), Block(P, words(20, f"s{i}w"))) for i in range(10)]
    original = doc(*[b for pair in sections for b in pair])
    first = chunker.chunk(original, "doc-1")
    assert first == chunker.chunk(original, "doc-1")
    assert {c.id for c in first}.isdisjoint(c.id for c in chunker.chunk(original, "doc-2"))

    # edit one paragraph, and insert a section in front: only the edited chunk gets a new id
    edited = list(sections)
    edited[5] = (sections[5][0], Block(P, words(20, "changed")))
    edited.insert(0, (Block(H, "New", level=2), Block(P, "new text")))
    second = chunker.chunk(doc(*[b for pair in edited for b in pair]), "doc-1")
    new_ids = {c.id for c in second} - {c.id for c in first}
    assert len(new_ids) == 2  # the inserted section and the edited one
    assert {c.text_hash for c in second} - {c.text_hash for c in first} == {
        c.text_hash for c in second if c.id in new_ids
    }


def test_repeated_identical_chunks_get_distinct_ids() -> None:
    d = doc(*[b for _ in range(3) for b in (Block(H, "Same", level=2), Block(P, "same body"))])
    chunks = TokenChunker(minilm(), 64).chunk(d, "d")
    assert len({c.text for c in chunks}) == 1
    assert len({c.id for c in chunks}) == 3


def test_empty_document_gives_no_chunks() -> None:
    assert TokenChunker(minilm(), 64).chunk(doc(Block(P, "  \n "), title=""), "d") == []


def test_window_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        TokenChunker(minilm(), 8)


# --- properties ------------------------------------------------------------------------------------

_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abcdefgh ijk\n.,!?|-#`é日本語🙂\t")),
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
    ),
    max_size=400,
)
_block = st.builds(
    Block,
    kind=st.sampled_from(list(BlockKind)),
    text=st.one_of(
        _text,
        st.lists(st.sampled_from(["alpha", "beta.", "gamma!", "| x |", "\n"]), max_size=300).map(" ".join),
    ),
    level=st.integers(0, 6),
    page=st.one_of(st.none(), st.integers(1, 5)),
)
_doc = st.builds(
    ParsedDocument,
    media_type=st.just(MediaType.TEXT),
    title=st.one_of(st.just(""), _text.map(lambda t: t[:40])),
    blocks=st.lists(_block, max_size=12).map(tuple),
)


def _tokenizer(name: str) -> Tokenizer:
    tokenizers: dict[str, Tokenizer] = {
        "minilm": minilm(),
        "whitespace": WhitespaceTokenizer(),
        "estimate": EstimatingTokenizer(),
    }
    return tokenizers[name]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=_doc,
    tokenizer=st.sampled_from(["minilm", "whitespace", "estimate"]),
    window=st.integers(20, 96),
    overlap=st.sampled_from([0, 0, 8]),
    prefix=st.booleans(),
    section_level=st.integers(0, 6),
)
def test_chunks_never_exceed_the_window_and_cover_the_text(
    document: ParsedDocument, tokenizer: str, window: int, overlap: int, prefix: bool, section_level: int
) -> None:
    chunker = TokenChunker(
        _tokenizer(tokenizer),
        window,
        overlap_tokens=overlap,
        heading_prefix=prefix,
        section_level=section_level,
    )
    chunks = chunker.chunk(document, "doc")
    check_invariants(chunker, document, chunks)
    assert chunker.chunk(document, "doc") == chunks
