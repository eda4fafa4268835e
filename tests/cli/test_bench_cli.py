"""`ingestq bench queue` end to end: real worker processes drain real probe jobs on a SQLite file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from ingestq.builtin import PROBE_KIND
from ingestq.client.client import Client
from ingestq.settings import Settings

INGESTQ = str(Path(sys.executable).with_name("ingestq"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    return subprocess.run(
        [INGESTQ, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_bench_queue_runs_every_job_and_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "bench.db"
    db = f"sqlite:///{path}"
    proc = _run(
        "--db", db, "bench", "queue", "--jobs", "40", "--workers", "2", "-c", "3", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["backend"], result["jobs"], result["succeeded"]) == ("sqlite", 40, 40)
    assert (result["workers"], result["concurrency"]) == (2, 3)
    assert result["run_per_second"] > 0
    assert result["enqueue_per_second"] > 0
    with sqlite3.connect(path) as conn:
        (left,) = conn.execute("SELECT count(*) FROM ingestq_jobs WHERE queue = 'ingestq.bench'").fetchone()
    assert left == 0, "bench jobs must be purged after the run"

    # a job already waiting in the bench queue would be counted as a bench job: refuse, on one line
    client = await Client.connect(Settings(database_url=db))
    async with client:
        await client.enqueue(PROBE_KIND, {}, queue="ingestq.bench")
    refused = _run("--db", db, "bench", "queue", "--jobs", "5", cwd=tmp_path)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: queue 'ingestq.bench' still has 1")
