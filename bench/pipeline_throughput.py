"""End-to-end ingestion vs the raw model, side by side in one process, on the markdown corpus.

Each round embeds the corpus's chunks with the model alone (`encode` over every chunk text, batch 32:
the model's own throughput, with its global length sort), then ingests the same corpus with ingestq
(fresh SQLite file, one in-process ingestion worker as `ingestq ingest --wait` runs it, the same loaded
model), and prints chunks/s and CPU seconds of both and their ratio. Rounds alternate so that the
machine's load weighs on both alike; the load average is printed with every figure.

    python -m bench.pipeline_throughput [--rounds 2] [--concurrency N] [--docs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bench.markdown_chunks import MARKDOWN, chunk_all, parsed_markdown
from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.pipeline.config import PipelineConfig, build_chunker
from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.settings import Settings
from ingestq.worker import Worker, WorkerConfig


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def cpu_seconds() -> float:
    """This process and its waited-for children (the parser processes, once the pool is closed)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def raw(embedder: SentenceTransformerEmbedder, texts: list[str]) -> tuple[float, float]:
    embedder.encode_sync(texts[:8])  # loaded and warm (the runtime's close unloads it)
    started, cpu = time.perf_counter(), cpu_seconds()
    embedder.encode_sync(texts, batch_size=embedder.batch_size)
    return time.perf_counter() - started, cpu_seconds() - cpu


async def ingestq(
    embedder: SentenceTransformerEmbedder, folder: Path, concurrency: int | None
) -> tuple[float, float, int]:
    embedder.encode_sync(["warm"])
    with tempfile.TemporaryDirectory(prefix="ingestq-pipe-") as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db")
        if concurrency:  # set explicitly, as INGESTQ_INGEST_CONCURRENCY would
            settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", ingest_concurrency=concurrency)
        async with Client.connect(settings) as client:
            started, cpu = time.perf_counter(), cpu_seconds()
            batch = await Documents(client, settings).ingest([folder])
            async with IngestRuntime(client.store, settings, embedder=embedder, clock=client.clock) as rt:
                # (read by name, so that this script also measures older code: PYTHONPATH=<old>/src)
                in_flight = getattr(settings, "ingest_concurrency", settings.concurrency)
                config = WorkerConfig.from_settings(settings, concurrency=in_flight, queues=(INGEST_QUEUE,))
                await Worker(client.store, rt.registry(), config, client.clock).run(drain=True)
            seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            chunks = 0
            for item in batch:
                job = await client.store.job_get(item.job.id)
                if job is not None and isinstance(job.result, dict):
                    chunks += int(job.result.get("chunks", 0))
    return seconds, cpu, chunks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="worker concurrency (default: ingest's)"
    )
    parser.add_argument("--docs", type=int, default=None, help="only the first N files (a subset folder)")
    args = parser.parse_args()

    folder = MARKDOWN
    tmp_corpus: tempfile.TemporaryDirectory[str] | None = None
    if args.docs:
        tmp_corpus = tempfile.TemporaryDirectory(prefix="ingestq-md-")
        folder = Path(tmp_corpus.name)
        for i, file in enumerate(sorted(MARKDOWN.rglob("*.md"))[: args.docs]):
            (folder / f"{i:05d}-{file.name}").write_bytes(file.read_bytes())
    embedder = SentenceTransformerEmbedder()
    chunker = build_chunker(PipelineConfig().chunker, embedder)
    texts = [c.text for _, c in chunk_all(chunker, parsed_markdown(folder))]
    print(f"{len(texts)} chunks from {folder}; concurrency {args.concurrency or 'default'}", flush=True)
    ratios: list[float] = []
    for n in range(1, args.rounds + 1):
        raw_s, raw_cpu = raw(embedder, texts)
        raw_rate = len(texts) / raw_s
        print(f"round {n} raw model: {raw_rate:5.1f} chunks/s ({raw_s:.1f} s, cpu {raw_cpu:.1f} s) {load()}")
        ing_s, ing_cpu, chunks = asyncio.run(ingestq(embedder, folder, args.concurrency))
        rate = chunks / ing_s
        ratios.append(rate / raw_rate)
        print(
            f"round {n} ingestq:   {rate:5.1f} chunks/s ({ing_s:.1f} s, cpu {ing_cpu:.1f} s, "
            f"{chunks} chunks) {load()} -> {rate / raw_rate:.2f}x raw",
            flush=True,
        )
    print(f"median ingestq/raw: {statistics.median(ratios):.2f}x")
    if tmp_corpus is not None:
        tmp_corpus.cleanup()


if __name__ == "__main__":
    main()
