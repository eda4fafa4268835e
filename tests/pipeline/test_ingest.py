"""Ingestion end to end on every backend: documents API → queue → worker → sandboxed parse → chunk →
cached embed → commit with the job's outcome → search. Deterministic fake embedder for speed (the real
model has its own test in test_ingest_model.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ingestq.client.client import Client
from ingestq.client.documents import DocumentNotFound, Documents, ModelMismatch
from ingestq.model.document import DocumentStatus
from ingestq.model.job import Job, JobState
from ingestq.pipeline.ingest.runtime import IngestRuntime
from ingestq.settings import Settings
from ingestq.tasks.retry import ExponentialBackoff
from ingestq.worker import Probes, Worker, WorkerConfig

FAST_RETRY = ExponentialBackoff(base=0.01, max=0.05, jitter=0.0)

PARAGRAPHS = [
    f"Paragraph {i} talks about topic number {i}: " + " ".join(f"word{i}x{j}" for j in range(40)) + "."
    for i in range(12)
]


def long_doc(paragraphs: Sequence[str]) -> str:
    return "# Long document\n\n" + "\n\n".join(paragraphs) + "\n"


@pytest.fixture
def fake_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"embedder": "fake", "embedder_dimension": 32})


async def drain(client: Client, settings: Settings, concurrency: int = 4) -> Worker:
    async with IngestRuntime(client.store, settings) as runtime:
        worker = Worker(
            client.store,
            runtime.registry(),
            WorkerConfig(concurrency=concurrency),
            retry_policy=FAST_RETRY,
        )
        await asyncio.wait_for(worker.run(drain=True), 120)
    return worker


async def job_of(client: Client, job: Job) -> Job:
    return await client.get(job.id)


def result(job: Job) -> dict[str, Any]:
    assert isinstance(job.result, dict), job
    return job.result


async def test_ingest_search_reingest_and_edit(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.md").write_text(long_doc(PARAGRAPHS))
    (folder / "retries.md").write_text(
        "# Retries\n\nFailed jobs come back with exponential backoff and jitter.\n"
    )
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a docx")
    (folder / "skip.txt").write_text("excluded by the glob")
    docs = Documents(client, fake_settings)

    batch = await docs.ingest([folder], collection="kb", exclude=["*.txt"])
    assert sorted(Path(b.document.id).name for b in batch) == ["broken.docx", "long.md", "retries.md"]
    again = await docs.ingest([folder], collection="kb", exclude=["*.txt"])
    assert [b.job.id for b in again] == [b.job.id for b in batch]  # deduped: not queued twice

    await drain(client, fake_settings)
    by_name = {Path(b.document.id).name: await job_of(client, b.job) for b in batch}
    assert by_name["long.md"].state is JobState.SUCCEEDED
    assert by_name["retries.md"].state is JobState.SUCCEEDED
    first = result(by_name["long.md"])
    assert first["chunks"] > 3
    assert first["embedded"] == first["chunks"]
    assert first["reused"] == 0

    bad = by_name["broken.docx"]
    assert bad.state is JobState.FAILED
    assert bad.attempt == 1  # permanent: no retry
    bad_doc = await docs.get(str(folder / "broken.docx"), "kb")
    assert bad_doc.status is DocumentStatus.FAILED
    assert bad_doc.error
    assert "\n" not in bad_doc.error

    long_id = str((folder / "long.md").resolve())
    indexed = await docs.get(long_id, "kb")
    assert indexed.status is DocumentStatus.INDEXED
    assert indexed.chunk_count == first["chunks"]

    hits = await docs.search("exponential backoff jitter", k=3, collection="kb")
    assert hits[0].document_id.endswith("retries.md")
    assert hits[0].title == "Retries"
    text_hits = await docs.search("word7x3", k=3, collection="kb", mode="text")
    assert text_hits
    assert text_hits[0].document_id == long_id

    # unchanged: the served version already is these bytes, model and settings; nothing is parsed or
    # embedded again, the document is indexed at the same version
    before = await docs.get(long_id, "kb")
    (job,) = [b.job for b in await docs.ingest([folder / "long.md"], collection="kb")]
    assert (await docs.get(long_id, "kb")).status is DocumentStatus.PENDING
    await drain(client, fake_settings)
    same = result(await job_of(client, job))
    assert (same["unchanged"], same["embedded"], same["reused"]) == (True, 0, first["chunks"])
    after = await docs.get(long_id, "kb")
    assert (after.status, after.version, after.chunk_count) == (
        DocumentStatus.INDEXED,
        before.version,
        before.chunk_count,
    )
    assert (await docs.search("word7x3", k=1, collection="kb", mode="text"))[0].document_id == long_id

    # reprocess rebuilds anyway (the parser may have changed): parsed again, every chunk from the cache
    (job,) = await docs.reprocess([long_id], "kb")
    await drain(client, fake_settings)
    rebuilt = result(await job_of(client, job))
    assert "unchanged" not in rebuilt
    assert (rebuilt["embedded"], rebuilt["reused"]) == (0, first["chunks"])

    # one paragraph edited: only the chunks it lands in are embedded again
    edited = list(PARAGRAPHS)
    edited[5] = "This paragraph was rewritten entirely with new words about zebras."
    (folder / "long.md").write_text(long_doc(edited))
    (job,) = [b.job for b in await docs.ingest([folder / "long.md"], collection="kb")]
    await drain(client, fake_settings)
    changed = result(await job_of(client, job))
    assert 1 <= changed["embedded"] <= 2
    assert changed["reused"] >= changed["chunks"] - 2
    assert (await docs.search("zebras", k=1, collection="kb", mode="text"))[0].document_id == long_id
    assert not await docs.search("word5x7", k=3, collection="kb", mode="text")

    # a query with another model than the collection's is refused
    local = fake_settings.model_copy(update={"embedder": "local"})
    with pytest.raises(ModelMismatch, match="fake/hash"):
        await Documents(client, local).search("anything", collection="kb")

    await docs.delete(long_id, "kb")
    with pytest.raises(DocumentNotFound):
        await docs.get(long_id, "kb")
    assert all(h.document_id != long_id for h in await docs.search("zebras", collection="kb"))


async def test_uploads_and_reprocess(client: Client, fake_settings: Settings) -> None:
    docs = Documents(client, fake_settings)
    (one,) = await docs.ingest(uploads=[("notes.md", b"# Notes\n\nUploaded bytes live in the database.\n")])
    await drain(client, fake_settings)
    assert (await job_of(client, one.job)).state is JobState.SUCCEEDED
    doc = await docs.get(one.document.id)
    assert doc.blob_id is not None
    assert doc.source == "upload:notes.md"
    (job,) = await docs.reprocess([doc.id])
    await drain(client, fake_settings)
    assert result(await job_of(client, job))["reused"] == doc.chunk_count


async def test_a_parser_that_times_out_is_retried_then_quarantined(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    slow = fake_settings.model_copy(update={"parse_time_limit": 0.001})
    path = tmp_path / "a.md"
    path.write_text("# A\n\n" + "Some words in a paragraph.\n\n" * 100_000)  # parsing takes > 1 ms
    docs = Documents(client, slow)
    (item,) = await docs.ingest([path])
    for _ in range(20):  # drain returns while a retry is not yet due
        await drain(client, slow)
        job = await job_of(client, item.job)
        if job.finished_at is not None:
            break
        await asyncio.sleep(0.05)
    assert job.state is JobState.FAILED
    assert job.attempt == 3
    doc = await docs.get(item.document.id)
    assert doc.status is DocumentStatus.QUARANTINED
    assert doc.error is not None
    assert "timed out" in doc.error
    counts = await docs.counts()
    assert counts.get(DocumentStatus.QUARANTINED) == 1


async def test_a_file_that_vanished_fails_with_one_line(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "gone.md"
    path.write_text("# soon gone\n")
    docs = Documents(client, fake_settings)
    (item,) = await docs.ingest([path])
    path.unlink()
    await drain(client, fake_settings)
    job = await job_of(client, item.job)
    assert job.state is JobState.FAILED
    doc = await docs.get(item.document.id)
    assert doc.status is DocumentStatus.FAILED
    assert doc.error == f"{path}: no such file"


async def test_broken_corpus_files_fail_permanently_and_the_rest_is_served(
    client: Client, fake_settings: Settings, corpora: Path
) -> None:
    if client.store.backend != "sqlite":
        pytest.skip("the corpus sample runs once, on SQLite")
    broken = sorted((corpora / "pdf-broken").iterdir())[:6] + sorted((corpora / "docx-broken").iterdir())[:4]
    good = [
        corpora / "markdown" / f for f in ("templates/404.md", "installation/windows.md", "about/security.md")
    ]
    docs = Documents(client, fake_settings)
    batch = await docs.ingest([*broken, *good], collection="mixed")
    await drain(client, fake_settings)
    for item in batch:
        job = await job_of(client, item.job)
        doc = await docs.get(item.document.id, "mixed")
        assert job.state in (JobState.SUCCEEDED, JobState.FAILED), (doc.id, job.state)
        if job.state is JobState.FAILED:
            assert doc.status in (DocumentStatus.FAILED, DocumentStatus.QUARANTINED)
            assert doc.error
            assert "\n" not in doc.error
            assert "Traceback" not in doc.error
        else:
            assert doc.status is DocumentStatus.INDEXED
            assert job.progress is not None
            # throttled by the worker: some stage was recorded, not necessarily the last one
            assert job.progress.stage in {"fetch", "detect", "parse", "chunk", "embed", "commit"}
    for item in batch[-3:]:
        assert (await job_of(client, item.job)).state is JobState.SUCCEEDED


async def test_urls_are_fetched_by_the_worker_only_where_allowed(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "page.md").write_text("# Served\n\nThis page came over real HTTP from a local server.\n")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/page.md"
    try:
        (refused,) = await Documents(client, fake_settings).ingest([url], collection="private")
        await drain(client, fake_settings)
        doc = await Documents(client, fake_settings).get(url, "private")
        assert doc.status is DocumentStatus.FAILED
        assert doc.error is not None
        assert "non-public address" in doc.error
        assert (await job_of(client, refused.job)).attempt == 1

        allowed = fake_settings.model_copy(update={"fetch_allow_private": True})
        (ok,) = await Documents(client, allowed).ingest([url], collection="web")
        await drain(client, allowed)
        assert (await job_of(client, ok.job)).state is JobState.SUCCEEDED
        hits = await Documents(client, allowed).search("real HTTP local server", k=1, collection="web")
        assert hits[0].source == url
        assert hits[0].title == "Served"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_a_cancelled_ingestion_stops_at_a_stage_boundary(
    client: Client, fake_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "big.md"
    path.write_text("# Big\n\n" + "Many words in one more paragraph here.\n\n" * 60_000)
    docs = Documents(client, fake_settings)
    (item,) = await docs.ingest([path])
    async with IngestRuntime(client.store, fake_settings) as runtime:
        probes = Probes()
        started = probes.arm("job_started")
        config = WorkerConfig(concurrency=1, lease_seconds=0.9)
        worker = Worker(client.store, runtime.registry(), config, probes=probes)
        task = asyncio.create_task(worker.run(drain=True))
        await started.next(within=60)
        await client.cancel(item.job.id)  # running: the worker hears of it with its next heartbeat
        await asyncio.wait_for(task, 120)
    job = await job_of(client, item.job)
    assert job.state is JobState.CANCELLED
    doc = await docs.get(item.document.id)
    assert doc.status is DocumentStatus.FAILED
    assert doc.error == "cancelled before it was indexed"
