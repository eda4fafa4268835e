"""Issue 8, defect 6: with a fast embedder, thousands of small documents ingest with no failure and
every job at attempt 1.

Everything is real: an OpenAI-compatible embedding server in a process of its own (answering in about a
millisecond, as a GPU box or a hosted API does), a store that already holds chunks (SQLite file or
PostgreSQL with pgvector), `ingestq ingest DIR --wait` as a subprocess (the command of the report) and a
separate `ingestq worker` process serving the same queue (as in the report). Before the lead's fix, jobs
finished faster than their outcomes were committed, claims ran ahead of the completer (2,541 ingestion
jobs running at once under a cap of 64) and the rescuer took the worker's own live jobs as lost: 'lease
expired: worker lost', retries, and failures after 3 attempts.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.fast_embed import (
    INGEST_CAP,
    RunningSampler,
    embed_server,
    ingest_env,
    ingestq_bin,
    last_job_id,
    outcomes,
    write_markdown,
)

pytestmark = pytest.mark.slow

DOCUMENTS = 2_000  # "thousands", as the issue asks, on both backends (15 s on SQLite, 23 s on PostgreSQL)
PRE_DOCUMENTS = 20  # x 50 sections: ~2,000 chunks in the store before the timed batch
DIMENSION = 8
# A short lease (heartbeats every second) shows the defect with a few thousand documents rather than
# 8,000. On the code before the fix (932db32) this test failed on both backends: SQLite 93 and 149 of
# 2,000 jobs past attempt 1 as 'lease expired: worker lost' (max attempt 3) in two runs, PostgreSQL 545 of
# 1,000 (its run had 1,000 documents then), and up to 408 ingestion jobs running in one worker (cap 64).
# At a 5 s lease only the cap check failed there.
LEASE = "3"


def run_ingest(folder: Path, env: dict[str, str], log: Path) -> str:
    with log.open("ab") as out:
        done = subprocess.run(
            [ingestq_bin(), "ingest", str(folder), "--wait"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=out,
            timeout=240,
        )
    text = done.stdout.decode(errors="replace")
    assert done.returncode == 0, text[-2000:] + log.read_text()[-2000:]
    return text


def test_thousands_of_small_documents_ingest_at_attempt_1(index_database_url: str, tmp_path: Path) -> None:
    url = index_database_url
    count = DOCUMENTS
    docs = write_markdown(tmp_path / "docs", count)
    pre = write_markdown(tmp_path / "pre", PRE_DOCUMENTS, sections=50, start=1_000_000)
    log = tmp_path / "ingestq.log"
    with embed_server(DIMENSION) as (embed_url, _server):
        env = {**ingest_env(url, embed_url, DIMENSION), "INGESTQ_LEASE_SECONDS": LEASE}
        run_ingest(pre, env, log)
        preloaded = outcomes(url, 0)
        assert preloaded.clean, preloaded.problems
        assert preloaded.chunks >= 1_000
        mark = last_job_id(url)

        with log.open("ab") as out:
            worker = subprocess.Popen(
                [ingestq_bin(), "worker", "--queues", "ingest"], env=env, stdout=out, stderr=out
            )
        try:
            with RunningSampler(url, period=0.1) as sampler:
                started = time.monotonic()
                summary = run_ingest(docs, env, log)
                elapsed = time.monotonic() - started
            assert worker.poll() is None, log.read_text()[-2000:]
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
    assert code == 0, log.read_text()[-2000:]

    found = outcomes(url, mark)
    shown = f"{found.problems}; {elapsed:.1f} s; log tail: {log.read_text()[-1500:]}"
    assert found.jobs == count, shown
    assert found.succeeded == count, shown
    assert found.at_attempt_1 == count, shown
    assert found.lease_errors == 0, shown
    assert f"indexed {count} of {count} documents" in summary, summary
    assert "rescued" not in log.read_text(), shown
    # both processes ran ingestion jobs, and neither ever held more running at once than its cap
    assert sampler.samples > 0
    assert len(sampler.most_per_worker) == 2, sampler.most_per_worker
    assert sampler.most_by_one_worker <= INGEST_CAP, sampler.most_per_worker
