"""The webhook half of the storage seam: callback URLs, deliveries and their attempts.

Deliveries are never inserted by these methods: each backend's migration 7 installs triggers that
insert a delivery (and its `ingestq.webhook` job) in the transaction that finishes a job with callbacks
or settles a document of a collection with endpoints, whichever statement does it. That is the
transactional outbox; tests/contract/test_webhooks.py holds both backends to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ingestq.model.job import Job, NewJob
from ingestq.model.webhook import (
    DeliveryAttempt,
    DeliveryFilter,
    DeliveryOptions,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)


@runtime_checkable
class WebhookStore(Protocol):
    async def webhook_endpoints_set(
        self, collection: str, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> list[WebhookEndpoint]:
        """Replace the collection's endpoints by `urls` (none: the collection has no endpoint)."""
        ...

    async def webhook_endpoints_list(self, collection: str | None) -> list[WebhookEndpoint]: ...

    async def job_insert_with_callbacks(
        self, job: NewJob, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> Job:
        """Insert `job` like job_insert_many (dedupe, QueueFull) and its callbacks in one transaction, so
        the job cannot end before they exist. A dedupe hit adds the callbacks to the job found."""
        ...

    async def job_callbacks(self, job_id: int) -> list[str]: ...

    async def document_callbacks_add(
        self, collection: str, document_id: str, urls: Sequence[str], options: DeliveryOptions
    ) -> None:
        """Callbacks announced the next time the document is indexed, failed or quarantined (then removed).
        Add them before enqueueing the document's job."""
        ...

    async def webhook_delivery_get(self, delivery_id: int) -> WebhookDelivery | None: ...

    async def webhook_delivery_list(self, flt: DeliveryFilter) -> list[WebhookDelivery]:
        """Newest first (id descending), keyset-paginated by `before_id`."""
        ...

    async def webhook_attempts(self, delivery_id: int) -> list[DeliveryAttempt]: ...

    async def webhook_attempt_record(
        self,
        delivery_id: int,
        job_id: int,
        status: DeliveryStatus,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        now: datetime,
    ) -> None:
        """Append attempt n+1 and set the delivery's status, last status code and error (one transaction)."""
        ...

    async def webhook_prune(self, status: DeliveryStatus, before: datetime, limit: int) -> int:
        """Delete up to `limit` deliveries in `status` (delivered or failed: never a pending one) whose
        last activity was before `before`, with their attempts; return how many. Oldest first."""
        ...

    async def webhook_redeliver(self, delivery_id: int, now: datetime) -> WebhookDelivery:
        """Enqueue a new job for the delivery (same message id and body), status pending. Raises
        DeliveryNotFound, or InvalidJobState while its latest job is still queued or running."""
        ...
