"""Retrieval quality of chunker settings on the markdown corpus with queries.md (recall@5).

A query counts as answered when one of its 5 nearest chunks comes from the expected file ("strict") or
from the expected or an also-acceptable file ("lenient"). Run: `python -m bench.chunk_retrieval`.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

from bench.markdown_chunks import CORPORA, chunk_all, parsed_markdown
from ingestq.pipeline.chunk.token import TokenChunker
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder

_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*?)\|(.*?)\|(.*?)\|\s*$")


def load_queries() -> list[tuple[str, set[str], set[str]]]:
    queries = []
    for line in (CORPORA / "queries.md").read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            expected = set(re.findall(r"`([^`]+)`", match.group(3)))
            also = set(re.findall(r"`([^`]+)`", match.group(4)))
            queries.append((match.group(2).strip(), expected, expected | also))
    return queries


SETTINGS: dict[str, dict[str, object]] = {
    "prefix": {"heading_prefix": True},
    "no-prefix": {"heading_prefix": False},
    "prefix, no title": {"heading_prefix": True, "title_in_path": False},
    "prefix, merge below h2": {"heading_prefix": True, "section_level": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    docs = parsed_markdown()
    queries = load_queries()
    qvec = np.asarray(embedder.encode_sync([q for q, _, _ in queries]))
    for name in args.settings:
        chunker = TokenChunker(embedder.tokenizer, embedder.max_tokens, **SETTINGS[name])  # type: ignore[arg-type]
        chunks = chunk_all(chunker, docs)
        started = time.perf_counter()
        vectors = np.asarray(embedder.encode_sync([c.text for _, c in chunks]))
        seconds = time.perf_counter() - started
        scores = qvec @ vectors.T
        strict = lenient = 0
        for i, (_, expected, acceptable) in enumerate(queries):
            top = np.argsort(-scores[i])[: args.k]
            files = {chunks[j][0] for j in top}
            strict += bool(files & expected)
            lenient += bool(files & acceptable)
        n = len(queries)
        print(
            f"{name:24s} chunks={len(chunks):5d} recall@{args.k} strict={strict / n:.2f} "
            f"lenient={lenient / n:.2f} (embedded in {seconds:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
