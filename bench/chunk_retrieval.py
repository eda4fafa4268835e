"""Retrieval quality of chunker settings on the markdown corpus with queries.md.

A query counts as answered at k when one of its k nearest chunks comes from the expected file
("strict") or from the expected or an also-acceptable file ("lenient"); MRR is the mean reciprocal rank
of the first such file (strict). Vectors are cached in bench/out/vectors (keyed by the chunk texts), so
re-running costs only the settings not measured before. Run: `python -m bench.chunk_retrieval`.

Measured 2026-11-22 (all-MiniLM-L6-v2, window 256): heading-path prefix on, 2,793 chunks: recall@5
strict 0.95, lenient 1.00; prefix off, 2,765 chunks: the same 0.95 / 1.00. With 20 queries the prefix
neither helps nor hurts recall@5. Re-measured after the Markdown parser changed (3,014 / 2,987
chunks): prefix recall@5 strict 0.85, lenient 0.95, recall@1 0.65, MRR 0.779; no prefix 0.90, 1.00,
0.70, 0.796. So the prefix is off by default (TokenChunkerConfig.heading_prefix).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from pathlib import Path

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
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / "out" / "vectors")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    docs = parsed_markdown()
    queries = load_queries()
    qvec = np.asarray(embedder.encode_sync([q for q, _, _ in queries]))
    for name in args.settings:
        chunker = TokenChunker(embedder.tokenizer, embedder.max_tokens, **SETTINGS[name])  # type: ignore[arg-type]
        chunks = chunk_all(chunker, docs)
        texts = [c.text for _, c in chunks]
        key = hashlib.sha256("\x00".join([embedder.model_id, *texts]).encode()).hexdigest()[:20]
        cached = args.cache / f"{key}.npy"
        started = time.perf_counter()
        if cached.is_file():
            vectors = np.load(cached)
        else:
            vectors = np.asarray(embedder.encode_sync(texts))
            args.cache.mkdir(parents=True, exist_ok=True)
            np.save(cached, vectors)
        seconds = time.perf_counter() - started
        scores = qvec @ vectors.T
        strict1 = strict = lenient = 0
        reciprocal = 0.0
        for i, (_, expected, acceptable) in enumerate(queries):
            order = np.argsort(-scores[i])
            top = {chunks[j][0] for j in order[: args.k]}
            ranked_files = list(dict.fromkeys(chunks[j][0] for j in order))
            strict += bool(top & expected)
            lenient += bool(top & acceptable)
            strict1 += ranked_files[0] in expected
            rank = next(r for r, f in enumerate(ranked_files, 1) if f in expected)
            reciprocal += 1.0 / rank
        n = len(queries)
        print(
            f"{name:24s} chunks={len(chunks):5d} recall@{args.k} strict={strict / n:.2f} "
            f"lenient={lenient / n:.2f} recall@1={strict1 / n:.2f} MRR={reciprocal / n:.3f} "
            f"(vectors in {seconds:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
