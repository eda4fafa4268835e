"""Build jobs without a database (for pure unit tests of the retry policy and the executor)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ingestq.model.job import DEFAULT_MAX_ATTEMPTS, Job, JobState

T0 = datetime(2030, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)


def make_job(**changes: Any) -> Job:
    """A running job on its first attempt, with any field overridden."""
    job = Job(
        id=next(_ids),
        queue="default",
        kind="ingestq.probe",
        payload={},
        priority=0,
        state=JobState.RUNNING,
        run_at=T0,
        attempt=1,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
        dedupe_key=None,
        lease_owner="test:1:abc",
        lease_expires_at=None,
        cancel_requested=False,
        progress=None,
        result=None,
        last_error=None,
        errors=(),
        document_id=None,
        created_at=T0,
        started_at=T0,
        finished_at=None,
    )
    return replace(job, **changes)
