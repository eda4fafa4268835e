"""Issue 8, "fail fast, lose nothing", end to end: a worker whose parser processes stop starting (a parser
dependency broken under it) gives every ingestion job back without spending an attempt, shows why in
`ingestq stats` within 5 s, and ingests them all once the dependency is mended. A real `ingestq worker`,
a real SQLite file, the real sandbox, 1,000 documents; the breakage is a package on the worker's
PYTHONPATH that shadows trafilatura and fails to import in every parser child started after it appears.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from breakage import LXML_CLEAN, mend, pythonpath, shadow

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import Job, JobFilter, JobState, WorkerInfo
from ingestq.settings import Settings

INGESTQ = str(Path(sys.executable).parent / "ingestq")
DOCUMENTS = 1000


def _jobs(settings: Settings) -> list[Job]:
    async def go() -> list[Job]:
        async with Client.connect(settings) as client:
            jobs: list[Job] = []
            before: int | None = None
            while True:
                page = await client.store.job_list(JobFilter(limit=500, before_id=before))
                if not page:
                    return jobs
                jobs += page
                before = page[-1].id

    return asyncio.run(go())


def _workers(settings: Settings) -> list[WorkerInfo]:
    async def go() -> list[WorkerInfo]:
        async with Client.connect(settings) as client:
            return await client.workers()

    return asyncio.run(go())


def _parser_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"ingestq.pipeline.sandbox" in cmdline:
            found.append(int(entry.name))
    return found


def _wait_for(text: str, log: Path, worker: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


@pytest.mark.slow
def test_documents_wait_for_a_broken_parser_and_ingest_once_it_is_mended(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    settings = Settings(database_url=url, embedder="fake")
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(DOCUMENTS):
        (folder / f"doc{i:04}.md").write_text(f"# Document {i}\n\nSome text about topic {i}.\n")
    pypath = tmp_path / "pythonpath"
    pypath.mkdir()
    env = {
        **os.environ,
        "INGESTQ_DATABASE_URL": url,
        "INGESTQ_EMBEDDER": "fake",
        "PYTHONPATH": pythonpath(pypath),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([INGESTQ, "worker", "--grace", "10"], env=env, stdout=out, stderr=out)
    try:
        _wait_for("started", log, worker, 120)  # the start-up check passed: a parser child is idle
        package = shadow(pypath, "trafilatura", LXML_CLEAN)  # break it under the running worker
        children = _parser_children(worker.pid)
        assert children, log.read_text()
        for pid in children:  # idle, so no document is in it: the next parse needs a new child
            os.kill(pid, signal.SIGKILL)

        async def queue() -> None:
            async with Client.connect(settings) as client:
                assert len(await Documents(client, settings).ingest([str(folder)])) == DOCUMENTS

        asyncio.run(queue())
        queued_at = time.monotonic()

        # the reason is visible within 5 s
        while not any(w.unavailable and "lxml.html.clean" in w.unavailable for w in _workers(settings)):
            assert time.monotonic() - queued_at < 5, (_workers(settings), log.read_text()[-3000:])
            time.sleep(0.1)
        stats = subprocess.run(
            [INGESTQ, "--db", url, "stats", "--json"], capture_output=True, text=True, check=True, timeout=60
        )
        (shown,) = json.loads(stats.stdout)["workers"]
        assert (
            "ingestq.ingest: parser process failed to start: ImportError: lxml.html" in shown["unavailable"]
        )

        # every document stays queued, no attempt spent (the jobs in flight when it broke are given back)
        deadline = time.monotonic() + 15
        while True:
            jobs = _jobs(settings)
            assert len(jobs) == DOCUMENTS
            assert all(j.state in (JobState.QUEUED, JobState.RUNNING) for j in jobs), log.read_text()[-3000:]
            if all(j.state is JobState.QUEUED and j.attempt == 0 for j in jobs):
                break
            assert time.monotonic() < deadline, [(j.id, j.state, j.attempt) for j in jobs if j.attempt]
            time.sleep(0.2)
        time.sleep(3)  # and stay so while it is broken
        assert all(j.state is JobState.QUEUED and j.attempt == 0 for j in _jobs(settings))
        assert worker.poll() is None, log.read_text()

        mend(package)  # the worker's recheck (backoff up to 30 s) finds it mended and resumes
        deadline = time.monotonic() + 300
        while True:
            jobs = _jobs(settings)
            done = sum(j.state is JobState.SUCCEEDED for j in jobs)
            if done == DOCUMENTS:
                break
            assert not any(j.state is JobState.FAILED for j in jobs), log.read_text()[-3000:]
            assert time.monotonic() < deadline, (done, log.read_text()[-3000:])
            time.sleep(0.5)
        assert all(j.attempt == 1 for j in jobs)
        deadline = time.monotonic() + 30
        while any(w.unavailable for w in _workers(settings)):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(30)  # within its grace period (10 s) and then some
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
