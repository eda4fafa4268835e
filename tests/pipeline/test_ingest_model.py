"""Ingestion with the real default model (all-MiniLM-L6-v2, offline) on SQLite: recall@5 of the
shared markdown corpus's 20 questions, on a fixed sample (every expected file plus distractors) so
that `make test` stays fast. The full-corpus figure is measured by `make corpus` (bench/corpus.py)."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import JobState
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.settings import Settings
from ingestq.worker import Worker, WorkerConfig

DISTRACTORS = 25
_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def parse_queries(text: str) -> list[tuple[str, set[str]]]:
    """(question, acceptable files) per table row of queries.md."""
    found = []
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            also = set(re.findall(r"`([^`]+)`", m.group(4)))
            found.append((m.group(2).strip(), {m.group(3), *also}))
    return found


@pytest.mark.slow
async def test_recall_at_5_on_a_markdown_sample_with_the_default_model(corpora: Path, tmp_path: Path) -> None:
    root = corpora / "markdown"
    queries = parse_queries((corpora / "queries.md").read_text(encoding="utf-8"))
    assert len(queries) == 20
    wanted = {f for _, files in queries for f in files if (root / f).is_file()}
    others = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md"))
    sample = sorted(
        wanted | set(random.Random(7).sample([o for o in others if o not in wanted], DISTRACTORS))
    )

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'recall.db'}")
    async with Client.connect(settings) as client:
        docs = Documents(client, settings)
        batch = await docs.ingest([root / f for f in sample], collection="md")
        async with IngestRuntime(client.store, settings) as runtime:
            worker = Worker(client.store, runtime.registry(), WorkerConfig(concurrency=8))
            await asyncio.wait_for(worker.run(drain=True), 600)
        states = [(await client.get(b.job.id)).state for b in batch]
        assert states.count(JobState.SUCCEEDED) == len(sample)
        for b in batch[:3]:
            result = (await client.get(b.job.id)).result
            assert result["max_tokens"] <= 256  # never over the model's window

        found = 0
        for question, files in queries:
            hits = await docs.search(question, k=5, collection="md")
            got = {Path(h.document_id).relative_to(root.resolve()).as_posix() for h in hits}
            found += bool(got & files)
    recall = found / len(queries)
    print(f"recall@5 on {len(sample)} files: {recall:.2f}")
    assert recall >= 0.8
