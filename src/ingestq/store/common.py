"""What both backends share and the contract suite asserts on: messages and the claim order.

Cheap to import (model/job.py only): every worker imports it before its first claim.
"""

from __future__ import annotations

from datetime import datetime

from ingestq.model.job import Job

LEASE_LOST = "lease expired: worker lost"
"""The error the lease rescue records on a job whose worker stopped heartbeating."""
NOT_INITIALISED = "database is not initialised: run `ingestq db migrate`"
CANCELLED_BEFORE_INDEXED = "cancelled before it was indexed"
"""Why a never-indexed document failed when the job that concerned it was cancelled (see
model/document.py: a job carrying a document_id settles that document when it ends without its handler)."""


def claim_order_key(job: Job) -> tuple[int, datetime, int]:
    """Claim order: higher priority first, then due first, then FIFO (ids grow with insertion)."""
    return (-job.priority, job.run_at, job.id)
