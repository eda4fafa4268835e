"""`ingestq bench queue` end to end: real worker processes drain real probe jobs on a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

INGESTQ = str(Path(sys.executable).with_name("ingestq"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTQ_")}
    return subprocess.run(
        [INGESTQ, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_bench_queue_runs_every_job_and_leaves_no_trace(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bench.db'}"
    proc = _run(
        "--db",
        db,
        "bench",
        "queue",
        "--jobs",
        "60",
        "--workers",
        "2",
        "--concurrency",
        "3",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["backend"], result["jobs"], result["succeeded"]) == ("sqlite", 60, 60)
    assert (result["workers"], result["concurrency"]) == (2, 3)
    assert result["run_per_second"] > 0
    assert result["enqueue_per_second"] > 0

    stats = json.loads(_run("--db", db, "stats", "--json", cwd=tmp_path).stdout)
    left = [q for q in stats["queues"] if q["queue"] == "ingestq.bench" and any(q["counts"].values())]
    assert left == [], "bench jobs must be purged after the run"

    # a job left in the bench queue would be counted as a bench job: refuse, on one line
    _run("--db", db, "enqueue", "ingestq.probe", "--queue", "ingestq.bench", cwd=tmp_path)
    refused = _run("--db", db, "bench", "queue", "--jobs", "5", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: queue 'ingestq.bench' still has 1")
    assert "Traceback" not in refused.stderr
