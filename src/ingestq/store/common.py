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
    """The Job an enqueue just wrote, built from what it wrote (no read back)."""
    return Job(
        id=job_id,
        queue=new.queue,
        kind=new.kind,
        payload=new.payload,
        priority=new.priority,
        state=_QUEUED,
        run_at=run_at,
        attempt=0,
        max_attempts=new.max_attempts,
        dedupe_key=new.dedupe_key,
        lease_owner=None,
        lease_expires_at=None,
        cancel_requested=False,
        progress=None,
        result=None,
        last_error=None,
        errors=(),
        document_id=new.document_id,
        created_at=created_at,
        started_at=None,
        finished_at=None,
    )


_QUEUED = JobState.QUEUED
