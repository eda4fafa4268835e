"""The `ingestq.webhook` job kind: send one delivery, record the attempt, and tell the worker what next.

A delivery's fate by answer (the job's retries are the normal retry policy's, with the backoff of
`webhook_backoff_base`/`webhook_backoff_max`):

- 2xx: delivered.
- 408, 429 and 5xx, a timeout, a refused connection, a name that does not resolve: retried; a 429's
  Retry-After (seconds or an HTTP date, capped at webhook_backoff_max) replaces the backoff.
- any other 4xx, a 3xx (redirects are not followed), a URL or address the guard refuses, no signing secret
  on the worker: failed at once.

The attempt is recorded (status code, error, duration) before the handler returns or raises, so the API
shows it even while the job waits for its retry. The body and the webhook-id are the delivery's, fixed at
enqueue; only webhook-timestamp (and so the signature) is the attempt's own.
"""

from __future__ import annotations

import time
from typing import Any

from ingestq.clock import Clock
from ingestq.errors import ConfigError, PermanentError, RetryableError
from ingestq.model.webhook import WEBHOOK_KIND, DeliveryStatus
from ingestq.settings import Settings
from ingestq.store.webhook_base import WebhookStore
from ingestq.tasks.registry import Registry
from ingestq.tasks.task import JobContext
from ingestq.webhooks import signing
from ingestq.webhooks.send import Answer, Limits, post
from ingestq.webhooks.target import TargetRefused

RETRYABLE_STATUS = frozenset({408, 429})


class DeliveryFailed(PermanentError):
    """The receiver refused the delivery for good (a 4xx other than 408/429, or a 3xx)."""


class Deliverer:
    def __init__(self, store: WebhookStore, settings: Settings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._limits = Limits(
            timeout=settings.webhook_timeout,
            max_response_bytes=settings.webhook_max_response_bytes,
            allow_private=settings.webhook_allow_private,
        )

    def _keys(self) -> list[bytes]:
        secret = self._settings.webhook_secret
        if secret is None:
            raise PermanentError(
                "INGESTQ_WEBHOOK_SECRET is not set on this worker: deliveries cannot be signed"
            )
        try:
            return signing.parse_secrets(secret.get_secret_value())
        except ConfigError as exc:
            raise PermanentError(str(exc)) from None

    async def deliver(self, ctx: JobContext, delivery_id: int) -> dict[str, Any]:
        job = ctx.job
        delivery = await self._store.webhook_delivery_get(delivery_id)
        if delivery is None:
            raise PermanentError(f"webhook delivery {delivery_id} no longer exists")
        started = time.perf_counter()
        now = self._clock.now()
        code: int | None = None
        try:
            keys = self._keys()
            body = delivery.body.encode()
            headers = signing.headers(keys, delivery.message_id, int(now.timestamp()), body)
            answer = await post(delivery.url, headers, body, self._limits)
            code = answer.status_code
            _judge(answer, self._settings.webhook_backoff_max)
        except (PermanentError, RetryableError) as exc:
            last = isinstance(exc, PermanentError) or job.attempt >= job.max_attempts
            status = DeliveryStatus.FAILED if last else DeliveryStatus.PENDING
            await self._record(delivery_id, job.id, status, code, str(exc), started)
            raise
        await self._record(delivery_id, job.id, DeliveryStatus.DELIVERED, code, None, started)
        return {"delivery_id": delivery_id, "status_code": code}

    async def _record(
        self,
        delivery_id: int,
        job_id: int,
        status: DeliveryStatus,
        code: int | None,
        error: str | None,
        started: float,
    ) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        await self._store.webhook_attempt_record(
            delivery_id, job_id, status, code, error, duration_ms, self._clock.now()
        )


def _judge(answer: Answer, backoff_max: float) -> None:
    """Return for a 2xx; raise what the worker should do otherwise."""
    status = answer.status_code
    if 200 <= status < 300:
        return
    said = f": {answer.excerpt}" if answer.excerpt else ""
    if status >= 500 or status in RETRYABLE_STATUS:
        retry_after = None if answer.retry_after is None else min(answer.retry_after, backoff_max)
        raise RetryableError(f"receiver answered HTTP {status}{said}", retry_after=retry_after)
    if 300 <= status < 400:
        raise DeliveryFailed(
            f"receiver answered HTTP {status} (redirects are not followed: register the final URL)"
        )
    raise DeliveryFailed(f"receiver answered HTTP {status}{said}")


def webhook_store(store: object) -> WebhookStore:
    if not isinstance(store, WebhookStore):
        raise ConfigError(f"{store!r} does not implement webhooks")
    return store


def register_webhooks(registry: Registry, store: object, settings: Settings, clock: Clock) -> Registry:
    """Register the `ingestq.webhook` kind, delivering with `store` (a WebhookStore) and `settings`."""
    deliverer = Deliverer(webhook_store(store), settings, clock)
    registry.task(
        deliverer.deliver,
        name=WEBHOOK_KIND,
        queue=settings.webhook_queue,
        max_attempts=settings.webhook_max_attempts,
        backoff_base=settings.webhook_backoff_base,
        backoff_max=settings.webhook_backoff_max,
        timeout=settings.webhook_timeout * 2,
    )
    return registry


__all__ = ["TargetRefused", "register_webhooks"]
