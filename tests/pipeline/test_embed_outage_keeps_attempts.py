"""An embedding service that keeps failing past the HTTP embedder's in-call retries is the provider's
fault, not the document's: a real `ingestq worker` process gives the job back with its attempt, stops
claiming ingestion until one check request succeeds, then indexes the document on its first attempt.

Before the fix the escaping `EmbedServiceUnavailable` was a plain `RetryableError`: each run of in-call
retries spent one of the document's 3 attempts, so this outage (12 failed requests, 5 per call) ended
with the document indexed on attempt 3, and a longer one failed it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from http_embed_server import EmbedServer

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.document import DocumentStatus
from ingestq.model.job import JobState
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.settings import Settings

INGESTQ = str(Path(sys.executable).with_name("ingestq"))
DEADLINE = 120.0  # a busy machine's worst case to start a worker and a parser; not a timing assertion
FAILED_REQUESTS = 12  # more than two calls' worth of in-call retries (5 each)


def worker_env(settings: Settings, server: EmbedServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    env.update(
        INGESTQ_DATABASE_URL=settings.database_url,
        INGESTQ_EMBEDDER="openai",
        INGESTQ_EMBEDDER_BASE_URL=server.url + "/v1",
        INGESTQ_EMBEDDER_DIMENSION=str(server.dimension),
        INGESTQ_EMBEDDER_TIMEOUT="10",
    )
    return env


async def test_a_provider_outage_spends_no_attempt_of_the_document(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "note.md"
    path.write_text("# Note\n\nA short document that the embedding service refuses for a while.\n")
    (item,) = await Documents(client, settings).ingest([path])

    with EmbedServer(dimension=8) as server:
        # Retry-After 0: the in-call retries go at once, so the outage outlasts them within seconds
        server.fail_next(FAILED_REQUESTS, status=503, retry_after="0")
        worker = await asyncio.create_subprocess_exec(
            *(INGESTQ, "worker", "--queues", INGEST_QUEUE, "--disable-ocr", "--poll-interval", "0.2"),
            env=worker_env(settings, server),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + DEADLINE
            job = await client.get(item.job.id)
            while job.state not in (JobState.SUCCEEDED, JobState.FAILED) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                job = await client.get(item.job.id)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(worker.communicate(), DEADLINE)
        embed_requests = [r for r in server.requests if r.path == "/v1/embeddings"]

    log = err.decode(errors="replace")
    assert job.state is JobState.SUCCEEDED, (job.last_error, log[-2000:])
    assert job.attempt == 1, (job.attempt, job.errors)
    assert len(embed_requests) > FAILED_REQUESTS  # the outage was met in full, then the service answered
    assert "embedding service unavailable" in log, log[-2000:]
    doc = await Documents(client, settings).get(item.document.id, item.document.collection)
    assert doc.status is DocumentStatus.INDEXED
    assert doc.version == 1
