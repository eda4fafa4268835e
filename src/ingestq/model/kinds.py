"""The ingestion job's kind and settle message, which the queue stores need as well as the pipeline.

A leaf apart from model/document.py so that a store serving plain jobs does not build the document
dataclasses at start-up (tests/cli/test_worker_startup.py checks that a draining worker never imports them).
"""

from __future__ import annotations

INGEST_JOB_KIND = "ingestq.ingest"
"""The job kind that ingests one document (payload: collection, document_id). The stores settle the
document when such a job ends without its handler (see model/document.py)."""
CANCELLED_BEFORE_INDEXED = "cancelled before it was indexed"
