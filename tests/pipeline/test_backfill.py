"""Backfill on every backend: after a change of chunker settings it re-makes and re-embeds exactly the
documents of the collection built with the old settings (not those already current, not those of other
collections), as a job that reports its progress; another model is refused, for queries and backfills."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingestq.client.client import Client
from ingestq.client.documents import Documents, ModelMismatch
from ingestq.errors import PermanentError
from ingestq.model.document import DocumentStatus
from ingestq.model.job import Job, JobState
from ingestq.pipeline.ingest.kinds import BACKFILL_KIND
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.settings import Settings
from ingestq.worker import Worker, WorkerConfig

PARAGRAPHS = [
    f"Paragraph {i} is about subject {i}: " + " ".join(f"term{i}n{j}" for j in range(30)) + "."
    for i in range(6)
]


@pytest.fixture
def settings_a(settings: Settings) -> Settings:
    """Chunks fill the fake model's 64-token window."""
    return settings.model_copy(update={"embedder": "fake", "embedder_dimension": 16})


@pytest.fixture
def settings_b(settings_a: Settings) -> Settings:
    return settings_a.model_copy(update={"chunk_tokens": 24})


async def drain(client: Client, settings: Settings) -> None:
    async with IngestRuntime(client.store, settings) as runtime:
        worker = Worker(client.store, runtime.registry(), WorkerConfig(concurrency=2))
        await asyncio.wait_for(worker.run(drain=True), 120)


async def finished(client: Client, job: Job) -> Job:
    found = await client.get(job.id)
    assert found.state is JobState.SUCCEEDED, found
    assert isinstance(found.result, dict)
    return found


async def test_backfill_rebuilds_only_what_other_settings_made(
    client: Client, settings_a: Settings, settings_b: Settings, tmp_path: Path
) -> None:
    kb, other = tmp_path / "kb", tmp_path / "other"
    kb.mkdir()
    other.mkdir()
    (kb / "long.md").write_text("# Long\n\n" + "\n\n".join(PARAGRAPHS) + "\n")
    (kb / "fresh.md").write_text("# Fresh\n\n" + "\n\n".join(PARAGRAPHS[:3]) + "\n")
    (other / "elsewhere.md").write_text("# Elsewhere\n\n" + "\n\n".join(PARAGRAPHS[3:]) + "\n")
    a = Documents(client, settings_a)
    by_name = {Path(i.document.id).name: i.document.id for i in await a.ingest([kb], collection="kb")}
    long_id, fresh_id = by_name["long.md"], by_name["fresh.md"]
    (elsewhere,) = await a.ingest([other], collection="other")
    await drain(client, settings_a)
    before = await a.get(long_id, "kb")
    old_chunks = await a.chunks(long_id, "kb")
    assert max(c.token_count for c in old_chunks) > 24
    assert (await a.backfill("kb")) == []  # nothing changed yet

    b = Documents(client, settings_b)
    (fresh_again,) = await b.ingest([kb / "fresh.md"], collection="kb")  # already current under B
    await drain(client, settings_b)

    # the backfill itself runs as a job, with progress
    backfill = await b.enqueue_backfill("kb")
    assert backfill.kind == BACKFILL_KIND
    await drain(client, settings_b)
    done = await finished(client, backfill)
    assert done.result == {"queued": 1}
    assert done.progress is not None
    assert (done.progress.stage, done.progress.done) == ("queue", 1)
    (rebuilt,) = [j for j in await client.list() if j.kind != BACKFILL_KIND and j.id > fresh_again.job.id]
    result = (await finished(client, rebuilt)).result
    assert isinstance(result, dict)

    after = await b.get(long_id, "kb")
    new_chunks = await b.chunks(long_id, "kb")
    assert result["chunks"] == len(new_chunks) == after.chunk_count > len(old_chunks)
    assert max(c.token_count for c in new_chunks) <= 24
    assert result["embedded"] > 0  # new chunk texts, new vectors
    assert result["embedded"] + result["reused"] == result["chunks"]
    assert after.version == before.version + 1
    assert after.settings_hash == b.config.fingerprint() != before.settings_hash
    assert (await b.get(fresh_id, "kb")).version == 2  # its own ingest, not the backfill
    untouched = await b.get(elsewhere.document.id, "other")
    assert (untouched.version, untouched.settings_hash) == (1, a.config.fingerprint())
    assert (await b.backfill("kb")) == []
    assert len(await b.backfill("other")) == 1  # stale too, but only when asked for
    hits = await b.search("term4n7", k=1, collection="kb", mode="text")
    assert [h.document_id for h in hits] == [long_id]
    assert {d.status for d in await b.list("kb")} == {DocumentStatus.INDEXED}

    # another model than the collection's: refused, before any model is loaded
    local = Documents(client, settings_b.model_copy(update={"embedder": "local"}))
    with pytest.raises(ModelMismatch) as refused:
        await local.search("anything", collection="kb")
    assert str(refused.value) == (
        "collection 'kb' was embedded with fake/hash; this query would be embedded with "
        "sentence-transformers/all-MiniLM-L6-v2 (set INGESTQ_EMBEDDER to match)"
    )
    with pytest.raises(PermanentError, match="holds fake/hash vectors"):
        await local.backfill("kb")
