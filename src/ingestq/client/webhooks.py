"""`Webhooks`: the one API over callback URLs and deliveries, for the HTTP service, the dashboard and
library users (`Webhooks(client, settings)`).

URLs are checked where they are registered (an absolute http(s) URL, no credentials; a secret configured
to sign with), and again by the worker before every attempt, which also resolves the name and refuses
non-public addresses (webhooks/target.py). Deliveries are enqueued by the store itself, in the transaction
of the outcome they announce (store/webhook_base.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ingestq.client.client import Client
from ingestq.errors import ConfigError, DeliveryNotFound
from ingestq.model.job import Job, NewJob
from ingestq.model.webhook import (
    DeliveryAttempt,
    DeliveryFilter,
    DeliveryOptions,
    WebhookDelivery,
    WebhookEndpoint,
)
from ingestq.settings import Settings
from ingestq.store.webhook_base import WebhookStore
from ingestq.webhooks.deliver import webhook_store
from ingestq.webhooks.signing import parse_secrets
from ingestq.webhooks.target import TargetRefused, check_url

MAX_CALLBACKS = 10
"""Callback URLs one request or one collection may name."""


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: WebhookDelivery
    attempts: list[DeliveryAttempt]


class Webhooks:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.store: WebhookStore = webhook_store(client.store)

    @property
    def options(self) -> DeliveryOptions:
        return DeliveryOptions(
            queue=self.settings.webhook_queue, max_attempts=self.settings.webhook_max_attempts
        )

    def check(self, urls: Sequence[str]) -> list[str]:
        """The URLs, deduplicated in order, or ConfigError (one line): too many, a malformed one, or no
        secret to sign deliveries with."""
        unique = list(dict.fromkeys(urls))
        if not unique:
            return []
        if len(unique) > MAX_CALLBACKS:
            raise ConfigError(f"at most {MAX_CALLBACKS} callback URLs, got {len(unique)}")
        secret = self.settings.webhook_secret
        if secret is None:
            raise ConfigError("callbacks need INGESTQ_WEBHOOK_SECRET (whsec_...) to sign deliveries")
        parse_secrets(secret.get_secret_value())
        for url in unique:
            try:
                check_url(url)
            except TargetRefused as exc:
                raise ConfigError(str(exc)) from None
        return unique

    async def set_endpoints(self, collection: str, urls: Sequence[str]) -> list[WebhookEndpoint]:
        checked = self.check(urls)
        return await self.store.webhook_endpoints_set(
            collection, checked, self.options, self.client.clock.now()
        )

    async def endpoints(self, collection: str | None = None) -> list[WebhookEndpoint]:
        return await self.store.webhook_endpoints_list(collection)

    async def insert_with_callbacks(
        self, job: NewJob, urls: Sequence[str], now: datetime | None = None
    ) -> Job:
        """Insert `job` with its callbacks in one transaction (URLs checked first); `now`: the insert's
        time (the clock's by default)."""
        checked = self.check(urls)
        when = now or self.client.clock.now()
        return await self.store.job_insert_with_callbacks(job, checked, self.options, when)

    async def add_document_callbacks(self, collection: str, document_id: str, urls: Sequence[str]) -> None:
        await self.store.document_callbacks_add(collection, document_id, self.check(urls), self.options)

    async def deliveries(self, flt: DeliveryFilter | None = None) -> list[WebhookDelivery]:
        return await self.store.webhook_delivery_list(flt or DeliveryFilter())

    async def delivery(self, delivery_id: int) -> DeliveryDetail:
        found = await self.store.webhook_delivery_get(delivery_id)
        if found is None:
            raise DeliveryNotFound(delivery_id)
        return DeliveryDetail(found, await self.store.webhook_attempts(delivery_id))

    async def redeliver(self, delivery_id: int) -> WebhookDelivery:
        """A new job for the delivery: the same webhook-id and body. Raises DeliveryNotFound, or
        InvalidJobState while it is still being delivered."""
        return await self.store.webhook_redeliver(delivery_id, self.client.clock.now())
