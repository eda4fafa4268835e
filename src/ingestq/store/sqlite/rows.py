"""Conversions between SQLite values (REAL unix seconds, JSON text, 0/1) and the job model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ingestq.core.job import ErrorRecord, Job, JobState, Progress

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_STATES = {s.value: s for s in JobState}


def ts(when: datetime) -> float:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: ingestq needs timezone-aware UTC datetimes")
    return when.timestamp()


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def opt_dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def dumps(value: Any, what: str = "value") -> str:
    try:
        return _dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {what} is not JSON-serialisable: {exc}") from None


def opt_dumps(value: Any, what: str = "value") -> str | None:
    return None if value is None else dumps(value, what)


def progress_json(progress: Progress) -> str:
    return _dumps({"stage": progress.stage, "done": progress.done, "total": progress.total})


def _progress(text: str | None) -> Progress | None:
    if text is None:
        return None
    raw = json.loads(text)
    return Progress(stage=raw["stage"], done=raw.get("done", 0), total=raw.get("total"))


def _errors(text: str) -> tuple[ErrorRecord, ...]:
    if text == "[]":
        return ()
    return tuple(
        ErrorRecord(attempt=e["attempt"], at=dt(e["at"]), message=e["message"]) for e in json.loads(text)
    )


def job_from_row(row: Sequence[Any]) -> Job:
    """A row of the job columns, in the order the queries list them (the order of Job's fields)."""
    return Job(
        id=row[0],
        queue=row[1],
        kind=row[2],
        payload=json.loads(row[3]),
        priority=row[4],
        state=_STATES[row[5]],
        run_at=dt(row[6]),
        attempt=row[7],
        max_attempts=row[8],
        dedupe_key=row[9],
        lease_owner=row[10],
        lease_expires_at=opt_dt(row[11]),
        cancel_requested=bool(row[12]),
        progress=_progress(row[13]),
        result=None if row[14] is None else json.loads(row[14]),
        last_error=row[15],
        errors=_errors(row[16]),
        document_id=row[17],
        created_at=dt(row[18]),
        started_at=opt_dt(row[19]),
        finished_at=opt_dt(row[20]),
    )


def loads_list(text: str) -> list[Any]:
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array, got {text[:40]!r}")
    return value
