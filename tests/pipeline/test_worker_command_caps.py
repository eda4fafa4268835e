"""`ingestq worker`, as deployed, runs at most INGESTQ_INGEST_CONCURRENCY ingestion jobs at once.

A real worker process, a real SQLite file and a real HTTP embedder that holds its first request, so the
documents stay `running` long enough to be counted. Before the composition root, the worker command
registered its own copy of the ingestion kinds without the cap and ran all of them at once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from http_embed_server import EmbedServer

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import JobFilter, JobState
from ingestq.settings import Settings

INGESTQ = str(Path(sys.executable).parent / "ingestq")
CAP = 2
DOCUMENTS = 6


def _counts(settings: Settings) -> dict[JobState, int]:
    async def go() -> dict[JobState, int]:
        async with Client.connect(settings) as client:
            jobs = await client.store.job_list(JobFilter(limit=100))
        counts = dict.fromkeys(JobState, 0)
        for job in jobs:
            counts[job.state] += 1
        return counts

    return asyncio.run(go())


def test_the_worker_command_caps_ingestion_jobs_at_the_setting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with EmbedServer(dimension=8) as server:
        env = {
            **os.environ,
            "INGESTQ_DATABASE_URL": url,
            "INGESTQ_EMBEDDER": "openai",
            "INGESTQ_EMBEDDER_BASE_URL": server.url + "/v1",
            "INGESTQ_EMBEDDER_MODEL": "text-embedding-3-small",
            "INGESTQ_EMBEDDER_DIMENSION": "8",
            "INGESTQ_INGEST_CONCURRENCY": str(CAP),
        }
        settings = Settings(
            database_url=url,
            embedder="openai",
            embedder_base_url=server.url + "/v1",
            embedder_model="text-embedding-3-small",
            embedder_dimension=8,
        )
        for i in range(DOCUMENTS):
            (tmp_path / f"doc{i}.md").write_text(f"# Document {i}\n\nSome text about topic {i}.\n")

        async def queue() -> None:
            async with Client.connect(settings) as client:
                batch = await Documents(client, settings).ingest([str(tmp_path)], include=["*.md"])
                assert len(batch) == DOCUMENTS

        asyncio.run(queue())
        gate = server.hold(1)  # the first embedding request waits: its document stays running
        log = tmp_path / "worker.log"
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                [INGESTQ, "worker", "--concurrency", "10"], env=env, stdout=out, stderr=out
            )
        try:
            seen: list[int] = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                counts = _counts(settings)
                if counts[JobState.RUNNING]:
                    seen.append(counts[JobState.RUNNING])
                    if gate.arrived.is_set():
                        break
                assert worker.poll() is None, log.read_text()
                time.sleep(0.05)
            assert gate.arrived.wait(60), log.read_text()
            assert seen, "no ingestion job was ever seen running"
            assert max(seen) <= CAP, f"running at once: {seen} (cap {CAP})"
            gate.release.set()
            while time.monotonic() < deadline:
                counts = _counts(settings)
                assert counts[JobState.RUNNING] <= CAP, counts
                if counts[JobState.SUCCEEDED] == DOCUMENTS:
                    break
                assert worker.poll() is None, log.read_text()
                time.sleep(0.05)
            assert _counts(settings)[JobState.SUCCEEDED] == DOCUMENTS, log.read_text()
        finally:
            worker.terminate()
            assert worker.wait(60) == 0, log.read_text()
