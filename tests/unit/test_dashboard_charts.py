"""The geometry of the dashboard's server-rendered charts: throughput bars and a document's stage timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingestq.api.dashboard.throughput import CHART_HEIGHT, WINDOW_MINUTES, chart
from ingestq.api.dashboard.timeline import stage_timeline
from ingestq.model.job import Job, JobState

T = datetime(2030, 1, 1, tzinfo=UTC)


def test_throughput_bars_stack_failed_on_succeeded_scaled_to_the_busiest_minute() -> None:
    tp = chart({(59, JobState.SUCCEEDED): 30, (59, JobState.FAILED): 10, (10, JobState.SUCCEEDED): 1}, T)
    assert (tp.succeeded, tp.failed, tp.peak) == (31, 10, 40)
    assert len(tp.bars) == WINDOW_MINUTES
    newest = tp.bars[-1]
    assert newest.minutes_ago == 0
    assert (newest.ok_height, newest.bad_height) == (75.0, 25.0)
    assert newest.bad_y + newest.bad_height == newest.ok_y  # failed sits on top of succeeded
    assert newest.ok_y + newest.ok_height == CHART_HEIGHT
    assert tp.bars[10].ok_height == 2.5
    assert tp.failure_rate == 10 / 41


def test_throughput_keeps_a_lone_job_visible_and_clamps_skewed_buckets() -> None:
    tp = chart({(0, JobState.SUCCEEDED): 10_000, (1, JobState.FAILED): 1, (75, JobState.FAILED): 2}, T)
    assert tp.bars[1].bad_height == 1.5  # one failure among thousands still shows
    assert tp.bars[-1].failed == 2  # a finish stamped past the window lands in the newest bar
    assert tp.bars[0].label == "59 min ago: 10000 succeeded, 0 failed"
    assert chart({}, T).failure_rate is None


def _job(**fields: object) -> Job:
    base: dict[str, object] = {
        "id": 7,
        "queue": "ingest",
        "kind": "ingestq.ingest",
        "payload": {},
        "state": JobState.SUCCEEDED,
        "priority": 0,
        "attempt": 1,
        "max_attempts": 3,
        "run_at": T,
        "created_at": T,
        "started_at": T + timedelta(seconds=1),
        "finished_at": T + timedelta(seconds=4),
        "dedupe_key": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "cancel_requested": False,
        "progress": None,
        "last_error": None,
        "errors": (),
        "document_id": "d",
        "result": {"stage_seconds": {"embed": 1.0, "fetch": 0.5, "parse": 0.5, "weird": "x"}, "chunks": 3},
    }
    base.update(fields)
    return Job(**base)  # type: ignore[arg-type]


def test_stage_timeline_orders_stages_and_adds_queue_wait_and_commit() -> None:
    timeline = stage_timeline([_job()])
    assert timeline is not None
    assert [(s.stage, s.seconds) for s in timeline.segments] == [
        ("queued", 1.0),
        ("fetch", 0.5),
        ("parse", 0.5),
        ("embed", 1.0),
        ("commit", 1.0),
    ]
    assert timeline.total == 4.0
    last = timeline.segments[-1]
    assert last.x + last.width == timeline.width
    assert last.label == "commit and finish"


def test_stage_timeline_skips_runs_without_stage_figures() -> None:
    failed = _job(id=9, state=JobState.FAILED)
    bare = _job(id=8, result={"chunks": 1})
    assert stage_timeline([failed, bare]) is None
    timeline = stage_timeline([failed, bare, _job()])
    assert timeline is not None
    assert timeline.job.id == 7
