"""`ingestq.probe` markers: refused unless the worker has a marker directory, and then only a plain file
name inside it. A refused marker fails the job at once (no retry) and touches no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestq.builtin import PROBE_KIND
from ingestq.clock import ManualClock
from ingestq.model.job import Job, JobState, NewJob
from ingestq.settings import Settings
from ingestq.store.base import Store
from ingestq.worker import Worker, WorkerConfig


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


async def run_probe(store: Store, payload: dict[str, object], config: WorkerConfig | None = None) -> Job:
    clock = ManualClock()
    (job,) = await store.job_insert_many([NewJob(kind=PROBE_KIND, payload=payload)], clock.now())
    await Worker(store, None, config, clock).run(drain=True)
    done = await store.job_get(job.id)
    assert done is not None
    return done


async def test_without_a_marker_directory_a_marker_is_refused_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    target = tmp_path / "appended"
    job = await run_probe(store, {"marker": str(target)})
    assert (job.state, job.attempt) == (JobState.FAILED, 1)  # permanent: no retry
    assert job.last_error is not None
    assert "probe markers are off" in job.last_error
    assert "\n" not in job.last_error
    assert not target.exists()


async def test_without_a_marker_directory_a_plain_name_is_refused_too(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a relative name must not land in the worker's working directory
    job = await run_probe(store, {"marker": "marker"})
    assert job.state is JobState.FAILED
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("marker", ["/ABS", "../x", "../markers/x", "..", ".", "sub/x"])
async def test_a_marker_that_is_a_path_is_refused(store: Store, tmp_path: Path, marker: str) -> None:
    allowed = tmp_path / "markers"
    allowed.mkdir()
    marker = marker.replace("/ABS", str(tmp_path / "abs"))  # an absolute path, e.g. /tmp/.../abs
    before = tree(tmp_path)
    job = await run_probe(store, {"marker": marker}, WorkerConfig(probe_marker_dir=str(allowed)))
    assert (job.state, job.attempt) == (JobState.FAILED, 1)
    assert job.last_error is not None
    assert "must be a plain file name" in job.last_error
    assert tree(tmp_path) == before


async def test_a_plain_name_is_written_inside_the_marker_directory(store: Store, tmp_path: Path) -> None:
    allowed = tmp_path / "markers"
    allowed.mkdir()
    job = await run_probe(store, {"marker": "m"}, WorkerConfig(probe_marker_dir=str(allowed)))
    assert (job.state, job.attempt) == (JobState.SUCCEEDED, 1)
    assert (allowed / "m").read_text() == f"start {job.id} 1\ndone {job.id} 1\n"


async def test_a_symlinked_marker_is_not_followed(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("")
    allowed = tmp_path / "markers"
    allowed.mkdir()
    (allowed / "link").symlink_to(outside)
    job = await run_probe(store, {"marker": "link"}, WorkerConfig(probe_marker_dir=str(allowed)))
    assert job.state is not JobState.SUCCEEDED
    assert outside.read_text() == ""


async def test_the_setting_turns_markers_on(store: Store, tmp_path: Path) -> None:
    clock = ManualClock()
    (job,) = await store.job_insert_many([NewJob(kind=PROBE_KIND, payload={"marker": "m"})], clock.now())
    settings = Settings(probe_marker_dir=str(tmp_path))  # as INGESTQ_PROBE_MARKER_DIR would
    await Worker(store, None, settings, clock).run(drain=True)
    assert (tmp_path / "m").read_text() == f"start {job.id} 1\ndone {job.id} 1\n"


async def test_seconds_and_fail_times_need_no_setting(store: Store) -> None:
    job = await run_probe(store, {"fail_times": 1, "seconds": 0.01})
    # attempt 1 failed as planned and waits for its retry (the test's clock does not move)
    assert (job.state, job.attempt) == (JobState.QUEUED, 1)
    assert job.last_error is not None
    assert "probe failure on attempt 1" in job.last_error
    assert (await run_probe(store, {"seconds": 0.01})).state is JobState.SUCCEEDED
