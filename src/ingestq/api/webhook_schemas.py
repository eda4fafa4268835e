"""Request and response models of `/v1/webhooks` (and the `callbacks` field of POST /v1/jobs and
POST /v1/documents), separate from the library's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ingestq.model.webhook import DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEndpoint

CallbackUrl = Annotated[str, Field(min_length=1, max_length=2048, description="an absolute http(s) URL")]
Callbacks = Annotated[
    list[CallbackUrl],
    Field(
        max_length=10,
        description="URLs told when this ends (signed Standard Webhooks deliveries, see docs/webhooks.md)",
    ),
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EndpointsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urls: Callbacks


class EndpointOut(_Out):
    collection: str
    url: str
    queue: str
    max_attempts: int
    created_at: datetime


class EndpointsOut(BaseModel):
    endpoints: list[EndpointOut]

    @classmethod
    def of(cls, endpoints: list[WebhookEndpoint]) -> EndpointsOut:
        return cls(endpoints=[EndpointOut.model_validate(e) for e in endpoints])


class DeliveryOut(_Out):
    """A delivery: what was sent where (`body`, fixed at enqueue), and what became of it."""

    id: int
    message_id: str = Field(description="the webhook-id header: the same on every attempt and redelivery")
    event: str
    url: str
    body: str
    queue: str
    max_attempts: int
    subject_job_id: int | None
    collection: str | None
    document_id: str | None
    job_id: int | None = Field(description="the delivery's latest job")
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls.model_validate(delivery)


class AttemptOut(_Out):
    n: int
    job_id: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]

    @classmethod
    def with_attempts(cls, delivery: WebhookDelivery, attempts: list[DeliveryAttempt]) -> DeliveryDetailOut:
        base = DeliveryOut.of(delivery).model_dump()
        return cls(**base, attempt_log=[AttemptOut.model_validate(a) for a in attempts])


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next: int | None = Field(description="pass as `before_id` for the next page; null on the last one")
