"""The stores build Job from rows whose columns are in Job's field order, a mapping mypy cannot check
(four `str | None` fields in a row). These tests pin Job's field order, the column order of every
job-returning query, and each builder against a job whose fields all differ, so a swap fails here."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingestq.model.job import ErrorRecord, Job, JobState, NewJob, Progress
from ingestq.store.common import queued_job
from ingestq.store.postgres import rows as pg_rows
from ingestq.store.queries import load_queries
from ingestq.store.sqlite import rows as sqlite_rows

FIELDS = [
    "id",
    "queue",
    "kind",
    "payload",
    "priority",
    "state",
    "run_at",
    "attempt",
    "max_attempts",
    "dedupe_key",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested",
    "progress",
    "result",
    "last_error",
    "errors",
    "document_id",
    "created_at",
    "started_at",
    "finished_at",
]
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


# Every field distinct from the others of its type, so that two swapped arguments change the result.
RUNNING = Job(
    id=1,
    queue="the-queue",
    kind="the-kind",
    payload={"p": 1},
    priority=5,
    state=JobState.RUNNING,
    run_at=at(1),
    attempt=2,
    max_attempts=7,
    dedupe_key="the-dedupe-key",
    lease_owner="the-owner",
    lease_expires_at=at(2),
    cancel_requested=False,
    progress=Progress("parse", 3, 9),
    result={"r": 2},
    last_error="the-error",
    errors=(ErrorRecord(attempt=1, at=at(6), message="first"),),
    document_id="the-document",
    created_at=at(3),
    started_at=at(4),
    finished_at=at(5),
)


def test_job_fields_are_in_the_order_the_stores_build_them() -> None:
    assert [f.name for f in dataclasses.fields(Job)] == FIELDS


_COLUMNS = re.compile(r"\b(?:j\.)?id,\s+(?:j\.)?queue,\s+(?:j\.)?kind,.*?\bfinished_at\b", re.DOTALL)
# a column read through an expression that keeps its meaning (the claim sends no empty error history)
_WRAPPED = re.compile(r"nullif\((?:j\.)?(\w+), '\[\]'\)")
# a column left out, still in its place (the change feed's job_watch reads no result or error history)
_LEFT_OUT = re.compile(r"(?:NULL|'\[\]') AS (\w+)")


@pytest.mark.parametrize("package", ["ingestq.store.sqlite", "ingestq.store.postgres"])
def test_job_returning_queries_list_the_columns_in_field_order(package: str) -> None:
    found = 0
    for name, sql in load_queries(package).items():
        for match in _COLUMNS.finditer(sql):
            listed = _LEFT_OUT.sub(r"\1", _WRAPPED.sub(r"\1", match.group(0)))
            columns = [c.strip().removeprefix("j.") for c in listed.split(",")]
            assert columns == FIELDS, name
            found += 1
    assert found >= 8


def _errors_json() -> list[dict[str, Any]]:
    return [{"attempt": e.attempt, "at": e.at.isoformat(), "message": e.message} for e in RUNNING.errors]


def test_postgres_job_from_row() -> None:
    progress = {"stage": "parse", "done": 3, "total": 9}
    values = {**dataclasses.asdict(RUNNING), "state": "running", "progress": progress}
    row = tuple({**values, "errors": _errors_json()}[f] for f in FIELDS)
    assert pg_rows.job_from_row(row) == RUNNING


def _sqlite_row(job: Job) -> dict[str, Any]:
    def stamp(value: datetime | None) -> float | None:
        return None if value is None else value.timestamp()

    return {
        **{f: getattr(job, f) for f in FIELDS},
        "payload": json.dumps(job.payload),
        "state": job.state.value,
        "run_at": stamp(job.run_at),
        "lease_expires_at": stamp(job.lease_expires_at),
        "cancel_requested": int(job.cancel_requested),
        "progress": json.dumps({"stage": "parse", "done": 3, "total": 9}),
        "result": json.dumps(job.result),
        "errors": json.dumps(
            [{"attempt": e.attempt, "at": e.at.timestamp(), "message": e.message} for e in job.errors]
        ),
        "created_at": stamp(job.created_at),
        "started_at": stamp(job.started_at),
        "finished_at": stamp(job.finished_at),
    }


def test_sqlite_job_from_row() -> None:
    values = _sqlite_row(RUNNING)
    assert sqlite_rows.job_from_row(tuple(values[f] for f in FIELDS)) == RUNNING


def test_sqlite_claimed_job() -> None:
    """The claim's columns (store/sqlite/queries.sql, claim_update) plus what the claim set itself."""
    claimed = dataclasses.replace(RUNNING, finished_at=None)
    values = _sqlite_row(claimed)
    columns = "id queue kind payload priority run_at attempt max_attempts dedupe_key progress result "
    columns += "last_error errors document_id created_at"
    row = tuple(values[c] for c in columns.split())
    assert sqlite_rows.claimed_job(row, "the-owner", at(2), at(4)) == claimed


def test_queued_job() -> None:
    new = NewJob(
        kind="the-kind",
        payload={"p": 1},
        queue="the-queue",
        priority=5,
        run_at=at(1),
        max_attempts=7,
        dedupe_key="the-dedupe-key",
        document_id="the-document",
    )
    expected = dataclasses.replace(
        RUNNING,
        state=JobState.QUEUED,
        attempt=0,
        lease_owner=None,
        lease_expires_at=None,
        progress=None,
        result=None,
        last_error=None,
        errors=(),
        started_at=None,
        finished_at=None,
    )
    assert queued_job(1, new, at(1), at(3)) == expected
