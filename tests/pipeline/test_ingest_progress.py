"""Progress of an ingestion job is visible to other clients while the job runs: a real worker process
(`ingestq worker --once`) embeds through a real local HTTP embedding server (Ollama protocol) that parks
one request mid-document; while it is parked, this process's own client and `ingestq jobs show` in a
third process read the job's stage, done and total from the database. The job then finishes and its
result counts what was embedded and what came from the cache."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from http_embed_server import EmbedServer

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import Job, JobState, Progress
from ingestq.pipeline.ingest.kinds import INGEST_QUEUE
from ingestq.settings import Settings

INGESTQ = str(Path(sys.executable).with_name("ingestq"))
CHUNK_TOKENS = 16
DEADLINE = 120.0  # seconds a busy machine may take to show the progress; never a timing assertion


def worker_env(settings: Settings, server: EmbedServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    env.update(
        INGESTQ_DATABASE_URL=settings.database_url,
        INGESTQ_EMBEDDER="ollama",
        INGESTQ_EMBEDDER_BASE_URL=server.url,
        INGESTQ_EMBEDDER_DIMENSION=str(server.dimension),
        INGESTQ_CHUNK_TOKENS=str(CHUNK_TOKENS),
    )
    return env


async def progress_of(client: Client, job: Job, seen: list[Progress]) -> Progress:
    """The job's progress once it is past the first embedding slice: polled, since another process
    writes it; the parked request guarantees the job cannot move on meanwhile."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = await client.get(job.id)
        assert found.state is JobState.RUNNING, found
        if found.progress is not None and found.progress.done > 0:
            return found.progress
        if found.progress is not None:
            seen.append(found.progress)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no embedding progress within {DEADLINE:g}s; saw {seen}")


async def test_progress_is_visible_mid_job_from_other_clients(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "long.md"
    path.write_text("# Long\n\n" + "\n\n".join(f"Paragraph {i} says words{i}." for i in range(400)) + "\n")
    (item,) = await Documents(client, settings).ingest([path])

    with EmbedServer(dimension=8) as server:
        # requests of 64 texts (Ollama's default batch): the third one belongs to the second slice of
        # chunks, so the job has reported the first slice as done when it parks
        gate = server.hold(3)
        worker = await asyncio.create_subprocess_exec(
            *(INGESTQ, "worker", "--once", "--queues", INGEST_QUEUE, "--lease", "1.5", "--disable-ocr"),
            env=worker_env(settings, server),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert await asyncio.to_thread(gate.arrived.wait, DEADLINE), "the worker never embedded"
            progress = await progress_of(client, item.job, [])
            assert progress.stage == "embed"
            assert progress.total is not None
            assert 0 < progress.done < progress.total

            shown = await asyncio.create_subprocess_exec(
                *(INGESTQ, "--db", settings.database_url, "jobs", "show", str(item.job.id), "--json"),
                env=worker_env(settings, server),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(shown.communicate(), DEADLINE)
            assert shown.returncode == 0
            seen_by_cli = json.loads(out)
            assert seen_by_cli["state"] == "running"
            assert seen_by_cli["progress"]["stage"] == "embed"
            assert seen_by_cli["progress"]["total"] == progress.total
            assert 0 < seen_by_cli["progress"]["done"] < progress.total
        finally:
            gate.release.set()
            _, err = await asyncio.wait_for(worker.communicate(), DEADLINE)
        assert worker.returncode == 0, err.decode()

    job = await client.get(item.job.id)
    assert job.state is JobState.SUCCEEDED, job.last_error
    assert isinstance(job.result, dict)
    assert job.result["chunks"] == progress.total
    assert (job.result["embedded"], job.result["reused"]) == (progress.total, 0)
