"""A small sample of the fault suite (`make chaos`, bench/chaos): real `ingestq worker` processes on SQLite,
a few hundred jobs, a handful of faults each; for ingestion, a fault-injecting embedding provider over
real HTTP and parser children killed mid-document. The full suite, its figures and the PostgreSQL scenarios
are in docs/reliability.md."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` is beside src/, not installed
from bench.chaos.fault_server import Window
from bench.chaos.ingest_faults import embed_faults, parser_kills
from bench.chaos.scenarios import Env, Options, Result, sigkill, sqlite_full_disk
from bench.chaos.scenarios import rolling_sigterm as rolling

pytestmark = pytest.mark.slow


@pytest.fixture
def env() -> Iterator[Env]:
    own = Env("sqlite")
    try:
        yield own
    finally:
        own.close()


def _explain(res: Result) -> str:
    fig = res.figures
    return f"{res.faults}; {res.recovery}; {fig}; checks {res.checks}"


async def test_sigkill_three_workers_thrice_loses_nothing_and_never_runs_an_attempt_twice(env: Env) -> None:
    opts = Options(
        jobs=300, seconds=0.5, lease=3.0, every=(1.5, 2.0), max_faults=3, baseline=False, timeout=90
    )
    res = await sigkill(env, opts)
    fig = res.figures
    assert fig is not None
    assert res.extra["lease"] == 3.0
    assert (fig.lost, fig.concurrent, fig.not_rerun) == (0, 0, 0), _explain(res)
    assert res.checks["integrity_check ok"], _explain(res)
    assert res.ok, _explain(res)


async def test_rolling_sigterm_twice_spends_no_attempt_and_exits_0(env: Env) -> None:
    opts = Options(jobs=300, seconds=0.3, every=(1.5, 2.0), max_faults=2, baseline=False, timeout=90)
    res = await rolling(env, opts)
    fig = res.figures
    assert fig is not None
    assert (fig.lost, fig.attempts_burned, fig.concurrent) == (0, 0, 0), _explain(res)
    assert res.ok, _explain(res)


needs_root = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="mounts a small tmpfs (Linux, root)"
)


@needs_root
async def test_full_disk_refuses_enqueue_and_keeps_what_was_committed(env: Env) -> None:
    # fill_seconds=0: the disk is freed before the workers (still starting) meet it
    opts = Options(jobs=300, seconds=0.05, fill_seconds=0.0, baseline=False, timeout=90)
    res = await sqlite_full_disk(env, opts)
    assert "database or disk is full" in res.extra["enqueue_error"], res.extra
    assert res.extra["integrity"] == "ok"
    assert res.figures is not None
    assert res.figures.lost == 0, _explain(res)
    assert res.ok, _explain(res)


@needs_root
async def test_workers_that_met_a_full_disk_resume_once_space_is_freed(env: Env) -> None:
    opts = Options(jobs=300, seconds=0.05, fill_seconds=4.0, resume_within=10.0, baseline=False, timeout=60)
    res = await sqlite_full_disk(env, opts)
    assert res.figures is not None
    assert res.figures.lost == 0, _explain(res)
    assert res.checks["work resumed"], _explain(res)


async def test_embedding_provider_faults_spend_no_attempt_and_keep_the_shared_limit(env: Env) -> None:
    # 429 asking for longer than a call may wait, on every request for 3 s: the workers give the jobs
    # back and wait for the service; then 429 with a short Retry-After, cut replies and timeouts on some
    windows = [
        Window(0.0, 3.0, "429", 1.0, retry_after=90),
        Window(3.0, 60.0, "429", 0.1, retry_after=1),
        Window(3.0, 60.0, "cut", 0.15),
        Window(3.0, 60.0, "timeout", 0.05),
    ]
    opts = Options(jobs=100, baseline=False, timeout=90)
    res = await embed_faults(env, opts, windows=windows, rpm=600)
    fig = res.figures
    assert fig is not None
    answered = res.extra["answered"]
    assert answered.get("429", 0) > 0, answered
    assert answered.get("ok", 0) > 0, answered
    assert (fig.lost, fig.finished_twice, fig.attempts_burned) == (0, 0, 0), _explain(res)
    assert res.extra["max_per_minute"] <= 600
    assert res.ok, _explain(res)


async def test_parser_children_killed_retry_their_documents_and_quarantine_the_poison(env: Env) -> None:
    opts = Options(jobs=40, workers=2, every=(0.5, 1.0), max_faults=3, baseline=False, timeout=90)
    res = await parser_kills(env, opts, sets=("markdown",))
    fig = res.figures
    assert fig is not None
    assert fig.lost == 0, _explain(res)
    assert res.extra["poison_attempts"] == 3, _explain(res)
    assert res.ok, _explain(res)
