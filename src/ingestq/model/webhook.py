"""Webhook values passed across the Store seam: endpoints, callbacks, deliveries and their attempts.

A delivery's life (`DeliveryStatus`, kept by the delivery handler in webhooks/deliver.py)::

    pending ──2xx──────────────────────────────▶ delivered
       │ └──5xx, 408, 429, timeout: the job retries (attempts left) ──▶ pending
       └──other 4xx, refused target, attempts exhausted──▶ failed
    delivered | failed ──redeliver (a person)──▶ pending (a new job, the same webhook-id and body)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

WEBHOOK_KIND = "ingestq.webhook"
"""The built-in job kind that sends one delivery (payload: {"delivery_id": N})."""


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    """Enqueued, or waiting for a retry."""
    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    FAILED = "failed"
    """Given up: a permanent refusal (4xx other than 408/429, a refused target) or attempts exhausted."""


JOB_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")
DOCUMENT_EVENTS = ("document.indexed", "document.failed", "document.quarantined")


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How deliveries to a URL are enqueued: their queue and attempts (from the registering settings)."""

    queue: str = "webhooks"
    max_attempts: int = 8


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    collection: str
    url: str
    queue: str
    max_attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: int
    message_id: str
    """The `webhook-id` header: the same on every attempt and redelivery."""
    event: str
    url: str
    body: str
    """The JSON text sent (fixed at enqueue)."""
    queue: str
    max_attempts: int
    subject_job_id: int | None
    collection: str | None
    document_id: str | None
    job_id: int | None
    """The delivery's latest job (a redelivery enqueues a new one)."""
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: int
    n: int
    """1, 2, ... across every job of the delivery (redeliveries continue the count)."""
    job_id: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Keyset-paginated listing, newest first: pass the last id you saw as `before_id`."""

    status: DeliveryStatus | None = None
    event: str | None = None
    collection: str | None = None
    subject_job_id: int | None = None
    before_id: int | None = None
    limit: int = 50
