"""Real `ingestq worker` processes, real signals, a real database per backend.

Jobs are `ingestq.probe` with a marker file (in tmp_path, which the workers are told to allow with
INGESTQ_PROBE_MARKER_DIR): each attempt appends `start <id> <attempt>` and, when it
finishes, `done <id> <attempt>`. Tests wait for marker lines (never a fixed sleep) and then check where
every job ended up.
"""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest
from workers import count_events, get, insert, marker_lines, start_worker, stop, wait_for_line

from ingestq.builtin import PROBE_KIND
from ingestq.model.job import JobState, NewJob

pytestmark = pytest.mark.slow


def probe(marker: Path, **payload: object) -> NewJob:
    # the payload names a file only; the worker's marker directory (start_worker's marker_dir) holds it
    return NewJob(kind=PROBE_KIND, payload={"marker": marker.name, **payload})


def test_several_workers_run_every_job_exactly_once(database_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    jobs = insert(database_url, [probe(marker) for _ in range(3000)])
    workers = [
        start_worker(
            database_url, "--once", "--concurrency", "16", log=tmp_path / "worker.log", marker_dir=tmp_path
        )
        for _ in range(3)
    ]
    codes = [w.wait(120) for w in workers]
    assert codes == [0, 0, 0], (tmp_path / "worker.log").read_text()[-2000:]
    events = count_events(marker)
    for job in jobs:
        assert events[("start", job.id)] == 1, job.id
        assert events[("done", job.id)] == 1, job.id
    assert len(marker_lines(marker)) == 2 * len(jobs)
    assert {get(database_url, j.id).state for j in (jobs[0], jobs[1500], jobs[-1])} == {JobState.SUCCEEDED}


def test_a_killed_workers_job_runs_again_after_its_lease(database_url: str, tmp_path: Path) -> None:
    marker, log = tmp_path / "marker", tmp_path / "worker.log"
    # Attempt 1 sleeps far longer than the test; the rescued attempt 2 is quick.
    app = tmp_path / "killtasks.py"
    app.write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from ingestq.tasks.registry import Registry
            from ingestq.tasks.task import JobContext

            registry = Registry()

            @registry.task(name="first_slow")
            async def first_slow(ctx: JobContext, marker: str) -> None:
                with open(marker, "a") as f:
                    f.write(f"start {ctx.job.id} {ctx.job.attempt}\\n")
                if ctx.job.attempt == 1:
                    await asyncio.sleep(600)
                with open(marker, "a") as f:
                    f.write(f"done {ctx.job.id} {ctx.job.attempt}\\n")
            """
        )
    )
    (job,) = insert(database_url, [NewJob(kind="first_slow", payload={"marker": str(marker)})])
    args = ("--app", "killtasks:registry", "--lease", "1", "--poll-interval", "0.1")
    victim = start_worker(database_url, *args, cwd=tmp_path, log=log)
    try:
        wait_for_line(marker, ("start", job.id, 1), procs=[victim])
    finally:
        stop(victim, signal.SIGKILL)
    assert get(database_url, job.id).state is JobState.RUNNING  # nobody released it: it died
    rescuer = start_worker(database_url, *args, cwd=tmp_path, log=log)
    try:
        wait_for_line(marker, ("done", job.id, 2), timeout=30, procs=[rescuer])
    finally:
        assert stop(rescuer) == 0
    done = get(database_url, job.id)
    assert (done.state, done.attempt) == (JobState.SUCCEEDED, 2)
    assert [e.attempt for e in done.errors] == [1]


def test_sigterm_releases_an_unfinished_job_without_burning_its_attempt(
    database_url: str, tmp_path: Path
) -> None:
    marker, log = tmp_path / "marker", tmp_path / "worker.log"
    (job,) = insert(database_url, [probe(marker, seconds=600)])
    worker = start_worker(database_url, "--grace", "0.2", log=log, marker_dir=tmp_path)
    wait_for_line(marker, ("start", job.id, 1), procs=[worker])
    assert stop(worker) == 0
    released = get(database_url, job.id)
    assert (released.state, released.attempt, released.lease_owner) == (JobState.QUEUED, 0, None)
    assert "releasing 1 in-flight jobs" in log.read_text()


def test_sigterm_lets_a_short_job_finish(database_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    (job,) = insert(database_url, [probe(marker, seconds=0.5)])
    worker = start_worker(database_url, "--grace", "60", log=tmp_path / "worker.log", marker_dir=tmp_path)
    wait_for_line(marker, ("start", job.id, 1), procs=[worker])
    assert stop(worker) == 0
    assert ("done", job.id, 1) in marker_lines(marker)
    assert get(database_url, job.id).state is JobState.SUCCEEDED


def test_a_second_signal_stops_at_once(database_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    jobs = insert(database_url, [probe(marker, seconds=600) for _ in range(3)])
    worker = start_worker(database_url, "--grace", "600", log=tmp_path / "worker.log", marker_dir=tmp_path)
    for job in jobs:
        wait_for_line(marker, ("start", job.id, 1), procs=[worker])
    worker.send_signal(signal.SIGTERM)
    assert stop(worker, signal.SIGINT, timeout=15) == 0
    for job in jobs:
        assert (get(database_url, job.id).state, get(database_url, job.id).attempt) == (JobState.QUEUED, 0)


def test_once_drains_and_reports(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    insert(database_url, [NewJob(kind=PROBE_KIND) for _ in range(20)])
    worker = start_worker(database_url, "--once", log=log)
    assert worker.wait(60) == 0
    text = log.read_text()
    assert "started" in text
    assert "stopped: 20 succeeded" in text


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_such_module_xyz", "cannot import 'no_such_module_xyz'"),
        ("json:nothing_here", "is not a Registry or a task"),
        ("broken_tasks", "raised NameError: name 'undefined_name' is not defined"),
    ],
)
def test_bad_app_is_one_line_and_exit_2(database_url: str, tmp_path: Path, app: str, message: str) -> None:
    log = tmp_path / "worker.log"
    (tmp_path / "broken_tasks.py").write_text("import os\nundefined_name + 1\n")
    worker = start_worker(database_url, "--once", "--app", app, cwd=tmp_path, log=log)
    assert worker.wait(60) == 2
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: --app")
    assert message in lines[0]


def test_sigterm_does_not_wait_for_a_stuck_sync_handler(database_url: str, tmp_path: Path) -> None:
    marker, log = tmp_path / "marker", tmp_path / "worker.log"
    (tmp_path / "synctasks.py").write_text(
        textwrap.dedent(
            """
            import time
            from ingestq.tasks.registry import Registry

            registry = Registry()

            @registry.task(name="stuck")
            def stuck(marker: str) -> None:
                with open(marker, "a") as f:
                    f.write("start 0 1\\n")
                time.sleep(600)
            """
        )
    )
    (job,) = insert(database_url, [NewJob(kind="stuck", payload={"marker": str(marker)})])
    worker = start_worker(
        database_url, "--app", "synctasks:registry", "--grace", "0.2", cwd=tmp_path, log=log
    )
    wait_for_line(marker, ("start", 0, 1), procs=[worker])
    assert stop(worker, timeout=20) == 0
    released = get(database_url, job.id)
    assert (released.state, released.attempt) == (JobState.QUEUED, 0)


def test_a_production_worker_refuses_probe_markers(database_url: str, tmp_path: Path) -> None:
    # No INGESTQ_PROBE_MARKER_DIR: whoever enqueues a probe cannot make the worker append to a file.
    target, log = tmp_path / "appended", tmp_path / "worker.log"
    (job,) = insert(database_url, [NewJob(kind=PROBE_KIND, payload={"marker": str(target)})])
    worker = start_worker(database_url, "--once", log=log)
    assert worker.wait(60) == 0, log.read_text()[-2000:]
    failed = get(database_url, job.id)
    assert (failed.state, failed.attempt) == (JobState.FAILED, 1)
    assert failed.last_error is not None
    assert "probe markers are off" in failed.last_error
    assert not target.exists()
