"""Conversions between SQLite values (REAL unix seconds, JSON text, 0/1) and the job model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ingestq.model.job import ErrorRecord, Job, JobState, Progress

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_STATES = {s.value: s for s in JobState}
_loads = json.loads
_raw_decode = json.JSONDecoder().raw_decode
_RUNNING = JobState.RUNNING
_fromts = datetime.fromtimestamp


def ts(when: datetime) -> float:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: ingestq needs timezone-aware UTC datetimes")
    return when.timestamp()


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def dumps(value: Any, what: str = "value") -> str:
    try:
        return _dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {what} is not JSON-serialisable: {exc}") from None


def progress_json(progress: Progress) -> str:
    return _dumps({"stage": progress.stage, "done": progress.done, "total": progress.total})


def _progress(text: str) -> Progress:
    raw = json.loads(text)
    return Progress(stage=raw["stage"], done=raw.get("done", 0), total=raw.get("total"))


def _errors(text: str) -> tuple[ErrorRecord, ...]:
    return tuple(
        ErrorRecord(attempt=e["attempt"], at=dt(e["at"]), message=e["message"]) for e in json.loads(text)
    )


def job_from_row(row: Sequence[Any]) -> Job:
    """A row of the job columns, in the order the queries list them (the order of Job's fields)."""
    # The hot path of claim: locals instead of helper calls for the nullable times.
    (id_, queue, kind, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, owner) = row[:11]
    (lease, cancel, progress, result, last_error, errors, document_id, created, started, finished) = row[11:]
    return Job(
        id=id_,
        queue=queue,
        kind=kind,
        payload=_loads(payload),
        priority=priority,
        state=_STATES[state],
        run_at=_fromts(run_at, UTC),
        attempt=attempt,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        lease_owner=owner,
        lease_expires_at=None if lease is None else _fromts(lease, UTC),
        cancel_requested=bool(cancel),
        progress=None if progress is None else _progress(progress),
        result=None if result is None else _loads(result),
        last_error=last_error,
        errors=() if errors == "[]" else _errors(errors),
        document_id=document_id,
        created_at=_fromts(created, UTC),
        started_at=None if started is None else _fromts(started, UTC),
        finished_at=None if finished is None else _fromts(finished, UTC),
    )


def _payload(text: str) -> Any:
    """json.loads for the payloads this store wrote itself (compact, nothing around them) through the
    documented JSONDecoder.raw_decode, which skips json.loads's whitespace checks around the document:
    the claim decodes one payload per job. Anything else (a row written by hand) takes json.loads and
    its errors."""
    try:
        value, end = _raw_decode(text)
    except ValueError:
        return _loads(text)
    return value if end == len(text) else _loads(text)


def claimed_job(row: Sequence[Any], owner: str, lease_expires_at: datetime, started_at: datetime) -> Job:
    """A row of the claim statements' columns, as the Job its claim made: the fields the claim set itself
    come from the caller instead of the row (building claimed jobs is the store's main cost per job)."""
    (id_, queue, kind, payload, priority, run_at, attempt, max_attempts, dedupe_key, progress) = row[:10]
    (result, last_error, errors, document_id, created) = row[10:]
    return Job(
        id=id_,
        queue=queue,
        kind=kind,
        payload=_payload(payload),
        priority=priority,
        state=_RUNNING,
        run_at=_fromts(run_at, UTC),
        attempt=attempt,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        lease_owner=owner,
        lease_expires_at=lease_expires_at,
        cancel_requested=False,
        progress=None if progress is None else _progress(progress),
        result=None if result is None else _loads(result),
        last_error=last_error,
        errors=() if errors == "[]" else _errors(errors),
        document_id=document_id,
        created_at=_fromts(created, UTC),
        started_at=started_at,
        finished_at=None,
    )


def loads_list(text: str) -> list[Any]:
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array, got {text[:40]!r}")
    return value
