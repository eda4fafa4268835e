"""Row mapping of the webhook tables, shared by both backends (each passes its own time converter)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ingestq.model.webhook import (
    DeliveryAttempt,
    DeliveryFilter,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

Time = Callable[[Any], datetime]


def _maybe(to_dt: Time, value: Any) -> datetime | None:
    return None if value is None else to_dt(value)


def endpoint_from_row(row: Sequence[Any], to_dt: Time) -> WebhookEndpoint:
    collection, url, queue, max_attempts, created_at = row
    return WebhookEndpoint(collection, url, queue, max_attempts, to_dt(created_at))


def delivery_from_row(row: Sequence[Any], to_dt: Time) -> WebhookDelivery:
    (id_, message_id, event, url, body, queue, max_attempts, subject, collection, document_id, job_id) = row[
        :11
    ]
    status, attempts, last_code, last_error, created, last_at, delivered = row[11:]
    return WebhookDelivery(
        id=id_,
        message_id=message_id,
        event=event,
        url=url,
        body=body,
        queue=queue,
        max_attempts=max_attempts,
        subject_job_id=subject,
        collection=collection,
        document_id=document_id,
        job_id=job_id,
        status=DeliveryStatus(status),
        attempts=attempts,
        last_status_code=last_code,
        last_error=last_error,
        created_at=to_dt(created),
        last_attempt_at=_maybe(to_dt, last_at),
        delivered_at=_maybe(to_dt, delivered),
    )


def attempt_from_row(row: Sequence[Any], to_dt: Time) -> DeliveryAttempt:
    delivery_id, n, job_id, at, status_code, error, duration_ms = row
    return DeliveryAttempt(delivery_id, n, job_id, to_dt(at), status_code, error, float(duration_ms))


def filter_params(flt: DeliveryFilter) -> dict[str, Any]:
    return {
        "status": None if flt.status is None else DeliveryStatus(flt.status).value,
        "event": flt.event,
        "collection": flt.collection,
        "subject_job_id": flt.subject_job_id,
        "before_id": flt.before_id,
        "limit": flt.limit,
    }
