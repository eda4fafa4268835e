"""Raw model throughput: the chunk texts ingestq makes of a corpus, through sentence-transformers alone.

    python -m bench.drivers.embed_raw CORPUS --sample OUT.json

Parses and chunks with ingestq's own parser and default chunker (untimed), loads the default model
(timed apart), then times one `encode` of every chunk text at the batch size ingestq's embedder uses.
No queue, no database, no cache: the ceiling an end-to-end ingest can approach. Writes a sample of
texts and their vectors for the peer's same-vectors check, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from bench.markdown_chunks import chunk_all, parsed_markdown
from ingestq.pipeline.config import SentenceTransformersConfig, TokenChunkerConfig, build_chunker
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder

SAMPLE = 48  # texts in the same-vectors sample: spread over the corpus, longest ones included


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sample_indices(tokens: list[int], n: int = SAMPLE) -> list[int]:
    """Every k-th chunk plus the longest few (truncation is where two embedders would differ)."""
    if not tokens:
        return []
    step = max(1, len(tokens) // max(1, n - 8))
    spread = list(range(0, len(tokens), step))
    longest = sorted(range(len(tokens)), key=lambda i: -tokens[i])[:8]
    return sorted(set(spread[: n - 8]) | set(longest))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--sample", type=Path, required=True, help="write sample texts + vectors here")
    args = parser.parse_args(argv)

    config = SentenceTransformersConfig()
    embedder = SentenceTransformerEmbedder(batch_size=config.batch_size, normalize=config.normalize)
    chunker = build_chunker(TokenChunkerConfig(), embedder)
    t0 = time.perf_counter()
    docs = parsed_markdown(args.corpus)
    chunks = [c for _, c in chunk_all(chunker, docs)]
    prepare_s = time.perf_counter() - t0
    texts = [c.text for c in chunks]
    tokens = [c.token_count for c in chunks]

    t0 = time.perf_counter()
    embedder.encode_sync(texts[:8])  # load the model and warm up, outside the timed encode
    load_s = time.perf_counter() - t0

    load_before = os.getloadavg()
    cpu0, t0 = _cpu(), time.perf_counter()
    vectors = embedder.encode_sync(texts)
    encode_s = time.perf_counter() - t0
    cpu_s = _cpu() - cpu0
    load_after = os.getloadavg()

    picked = sample_indices(tokens)
    args.sample.write_text(
        json.dumps({"texts": [texts[i] for i in picked], "vectors": [vectors[i] for i in picked]})
    )
    print(
        json.dumps(
            {
                "documents": len(docs),
                "chunks": len(chunks),
                "tokens": sum(tokens),
                "max_tokens": max(tokens, default=0),
                "window": embedder.max_tokens,
                "over_window": sum(t > embedder.max_tokens for t in tokens),
                "batch_size": embedder.batch_size,
                "prepare_s": prepare_s,
                "load_s": load_s,
                "encode_s": encode_s,
                "cpu_s": cpu_s,
                "chunks_per_s": len(chunks) / encode_s if encode_s else None,
                "tokens_per_s": sum(tokens) / encode_s if encode_s else None,
                "load_before": load_before,
                "load_after": load_after,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
