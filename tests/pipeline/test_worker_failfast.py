"""`ingestq worker` checks, before its first ingestion claim, that this machine can ingest: a parser
process starts and (with the local model) the model loads. If not: one line, `error: <cause>; <fix>`,
exit status 3, no job claimed. Real worker processes, a real SQLite file, a real sandbox; the breakage is
a package on PYTHONPATH that shadows a real dependency and fails to import (see `breakage`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from breakage import LXML_CLEAN, pythonpath, shadow

from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.job import Job, JobFilter
from ingestq.settings import Settings

INGESTQ = str(Path(sys.executable).parent / "ingestq")
EXIT_UNAVAILABLE = 3


def _worker(
    tmp_path: Path, broken: Path, *args: str, embedder: str = "fake"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INGESTQ_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}",
        "INGESTQ_EMBEDDER": embedder,
        "PYTHONPATH": pythonpath(broken),
    }
    return subprocess.run(
        [INGESTQ, "worker", "--grace", "5", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _queue_documents(tmp_path: Path, n: int) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}", embedder="fake")
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(n):
        (folder / f"doc{i}.md").write_text(f"# Document {i}\n\nSome text about topic {i}.\n")

    async def go() -> None:
        async with Client.connect(settings) as client:
            assert len(await Documents(client, settings).ingest([str(folder)])) == n

    asyncio.run(go())


def _jobs(tmp_path: Path) -> list[Job]:
    async def go() -> list[Job]:
        async with Client.connect(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")) as client:
            return await client.store.job_list(JobFilter(limit=1000))

    return asyncio.run(go())


def test_a_worker_whose_parser_cannot_start_exits_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shadow(broken, "trafilatura", LXML_CLEAN)
    _queue_documents(tmp_path, 3)
    proc = _worker(tmp_path, broken)
    assert proc.returncode == EXIT_UNAVAILABLE, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: parser process failed to start: ImportError: {LXML_CLEAN}; repair the parser libraries "
        f"in the worker's Python environment ({sys.prefix}) as the error says"
    ]
    jobs = _jobs(tmp_path)
    assert [(j.state.value, j.attempt) for j in jobs] == [("queued", 0)] * 3  # nothing claimed
    # draining (--once) checks too when ingestion jobs are queued
    proc = _worker(tmp_path, broken, "--once")
    assert proc.returncode == EXIT_UNAVAILABLE, proc.stderr
    assert proc.stderr.startswith("error: parser process failed to start: ImportError: lxml.html.clean")


def test_a_worker_that_does_not_serve_ingestion_skips_the_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shadow(broken, "trafilatura", LXML_CLEAN)
    proc = _worker(tmp_path, broken, "--queues", "default", "--once")
    assert proc.returncode == 0, proc.stderr
    assert "stopped: no jobs" in proc.stderr
    proc = _worker(tmp_path, broken, "--once")  # draining, and no ingestion job queued
    assert proc.returncode == 0, proc.stderr
    assert "stopped: no jobs" in proc.stderr


def test_a_worker_whose_local_model_does_not_load_exits_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shadow(broken, "torch", "libtorch_cpu.so: cannot open shared object file: No such file or directory")
    proc = _worker(tmp_path, broken, embedder="local")
    assert proc.returncode == EXIT_UNAVAILABLE, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: the local embedding model failed to load: ImportError: libtorch_cpu.so: cannot open "
        "shared object file: No such file or directory; repair torch and sentence-transformers in the "
        "worker's Python environment"
    ]


def test_ingest_wait_on_a_machine_that_cannot_parse_says_why_and_keeps_the_documents(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shadow(broken, "trafilatura", LXML_CLEAN)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"doc{i}.md").write_text(f"# Document {i}\n\nText {i}.\n")
    env = {
        **os.environ,
        "INGESTQ_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}",
        "INGESTQ_EMBEDDER": "fake",
        "PYTHONPATH": pythonpath(broken),
    }
    proc = subprocess.run(
        [INGESTQ, "ingest", str(folder), "--wait"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "parser process failed to start: ImportError" in errors[0]
    assert "Traceback" not in proc.stderr
    assert [(j.state.value, j.attempt) for j in _jobs(tmp_path)] == [("queued", 0)] * 3


def test_sigterm_during_the_start_up_check_exits_cleanly(tmp_path: Path) -> None:
    """A supervisor may stop a worker while its start-up check still waits (a model loading, a parser
    process importing): exit 0 with nothing claimed, not the default action of the signal."""
    broken = tmp_path / "broken"
    package = broken / "trafilatura"
    package.mkdir(parents=True)
    marker = tmp_path / "importing"
    # the parser child hangs while importing its parsers, so the check waits
    (package / "__init__.py").write_text(
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)\n"
    )
    _queue_documents(tmp_path, 2)
    env = {
        **os.environ,
        "INGESTQ_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}",
        "INGESTQ_EMBEDDER": "fake",
        "PYTHONPATH": pythonpath(broken),
    }
    worker = subprocess.Popen(
        [INGESTQ, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():  # the check is under way: its parser child is importing
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, stderr
    assert "stopped before its first claim" in stderr
    assert "Traceback" not in stderr
    assert [(j.state.value, j.attempt) for j in _jobs(tmp_path)] == [("queued", 0)] * 2
