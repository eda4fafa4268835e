"""The ingestion job's kind, apart from model/document.py so that naming it does not build the document
dataclasses at start-up (tests/cli/test_worker_startup.py checks that a draining worker never imports them).
The stores do not use it: they settle the document of any job that carries a document_id.
"""

from __future__ import annotations

INGEST_JOB_KIND = "ingestq.ingest"
"""The job kind that ingests one document (payload: collection, document_id)."""
