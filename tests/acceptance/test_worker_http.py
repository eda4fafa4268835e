"""`ingestq worker --http-port`: liveness, readiness and Prometheus metrics from a real worker process.

The database going away is played by another process holding SQLite's write lock: the worker's
heartbeats fail, readiness turns 503 within a lease while liveness keeps answering 200 (restarting the
worker would not bring the database back), and readiness returns once the lock is let go.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import httpx
from workers import INGESTQ, insert, stop

from ingestq.builtin import PROBE_KIND
from ingestq.model.job import NewJob


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _until(check: Callable[[], bool], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


def test_health_readiness_and_metrics_of_a_worker(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    url = f"sqlite:///{db}"
    subprocess.run([INGESTQ, "--db", url, "db", "migrate"], check=True, capture_output=True, timeout=60)
    insert(url, [NewJob(kind=PROBE_KIND, queue="q") for _ in range(5)])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "worker.log"
    env = {**os.environ, "INGESTQ_SQLITE_BUSY_TIMEOUT_MS": "50", "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [INGESTQ, "--db", url, "worker", "--http-port", str(port), "--lease", "1", "--grace", "1"],
            stdout=out,
            stderr=out,
            env=env,
        )
    try:
        _until(lambda: _status(base + "/readyz") == 200, "readiness")
        assert _status(base + "/healthz") == 200
        _until(lambda: 'outcome="succeeded"' in httpx.get(base + "/metrics").text, "the jobs' metrics")
        metrics = httpx.get(base + "/metrics").text
        assert re.search(
            r'ingestq_worker_jobs_finished_total\{kind="ingestq.probe",outcome="succeeded",'
            r'queue="q"\} 5\.0',
            metrics,
        ), metrics
        assert 'ingestq_worker_job_duration_seconds_count{kind="ingestq.probe",queue="q"} 5.0' in metrics
        labels = set(re.findall(r"(\w+)=\"", metrics))
        assert labels <= {"queue", "kind", "outcome", "source", "le"}, labels  # never a job or document id
        assert httpx.get(base + "/nothing").status_code == 404
        assert httpx.post(base + "/healthz").status_code == 405

        # the database goes away: another process holds the write lock
        blocker = apsw.Connection(str(db))
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            _until(lambda: _status(base + "/readyz") == 503, "readiness to fail", within=20)
            assert _status(base + "/healthz") == 200  # alive all the same
            body = httpx.get(base + "/readyz").json()
            assert body["status"] == "fail"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        _until(lambda: _status(base + "/readyz") == 200, "readiness to return", within=20)
        assert worker.poll() is None, log.read_text()
    finally:
        assert stop(worker) == 0, log.read_text()
    assert "serving /healthz, /readyz and /metrics on http://127.0.0.1:" in log.read_text()


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                INGESTQ,
                "--db",
                f"sqlite:///{tmp_path / 'q.db'}",
                "worker",
                "--queues",
                "q",
                "--http-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"--http-port {port}" in errors[0]
    assert "Traceback" not in result.stderr
