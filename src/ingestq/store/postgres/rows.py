"""Conversions between database rows and the job model's dataclasses (no SQL, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingestq.model.job import ErrorRecord, Job, JobState, Progress

_STATES = {state.value: state for state in JobState}


def progress_from_json(value: Any) -> Progress | None:
    if not value:
        return None
    return Progress(stage=str(value["stage"]), done=int(value.get("done", 0)), total=value.get("total"))


def progress_to_json(progress: Progress) -> str:
    return json.dumps({"stage": progress.stage, "done": progress.done, "total": progress.total})


def errors_from_json(value: Any) -> tuple[ErrorRecord, ...]:
    if not value:
        return ()
    return tuple(
        ErrorRecord(attempt=int(e["attempt"]), at=datetime.fromisoformat(e["at"]), message=str(e["message"]))
        for e in value
    )


def job_from_row(row: Sequence[Any]) -> Job:
    """A row whose columns follow Job's field order (every job-returning query in queries.sql;
    tests/unit/test_job_rows.py pins that order)."""
    (
        id_,
        queue,
        kind,
        payload,
        priority,
        state,
        run_at,
        attempt,
        max_attempts,
        dedupe_key,
        lease_owner,
        lease_expires_at,
        cancel_requested,
        progress,
        result,
        last_error,
        errors,
        document_id,
        created_at,
        started_at,
        finished_at,
    ) = row
    return Job(
        id=id_,
        queue=queue,
        kind=kind,
        payload=payload,
        priority=priority,
        state=_STATES[state],
        run_at=run_at,
        attempt=attempt,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        lease_owner=lease_owner,
        lease_expires_at=lease_expires_at,
        cancel_requested=cancel_requested,
        progress=progress_from_json(progress) if progress else None,
        result=result,
        last_error=last_error,
        errors=errors_from_json(errors) if errors else (),
        document_id=document_id,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
    )
