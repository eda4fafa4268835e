"""What both backends share and the contract suite asserts on: messages and the claim order.

Cheap to import (model/job.py only): every worker imports it before its first claim.
"""

from __future__ import annotations

from datetime import datetime

from ingestq.model.job import Job, JobState, NewJob

LEASE_LOST = "lease expired: worker lost"
"""The error the lease rescue records on a job whose worker stopped heartbeating."""
NOT_INITIALISED = "database is not initialised: run `ingestq db migrate`"
CANCELLED_BEFORE_INDEXED = "cancelled before it was indexed"
"""Why a never-indexed document failed when the job that concerned it was cancelled (see
model/document.py: a job carrying a document_id settles that document when it ends without its handler)."""


def claim_order_key(job: Job) -> tuple[int, datetime, int]:
    """Claim order: higher priority first, then due first, then FIFO (ids grow with insertion)."""
    return (-job.priority, job.run_at, job.id)


def queued_job(job_id: int, new: NewJob, run_at: datetime, created_at: datetime) -> Job:
    """The Job an enqueue just wrote, built from what it wrote (no read back). Positional, in Job's field
    order (tests/unit/test_job_rows.py pins it): this runs once per enqueued job, and a frozen dataclass's
    keyword call costs a quarter more."""
    return Job(
        job_id,
        new.queue,
        new.kind,
        new.payload,
        new.priority,
        _QUEUED,
        run_at,
        0,  # attempt
        new.max_attempts,
        new.dedupe_key,
        None,  # lease_owner
        None,  # lease_expires_at
        False,  # cancel_requested
        None,  # progress
        None,  # result
        None,  # last_error
        (),  # errors
        new.document_id,
        created_at,
        None,  # started_at
        None,  # finished_at
    )


_QUEUED = JobState.QUEUED
