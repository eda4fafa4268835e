"""The `WebhookStore` half of SqliteStore: endpoints, callbacks, deliveries, on the store's own thread.

The deliveries are enqueued by the triggers of migration 7 inside whichever write transaction finishes a
job or settles a document (see store/webhook_base.py); these methods only register URLs and read or
update what the triggers wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingestq.errors import DeliveryNotFound, InvalidJobState
from ingestq.model.job import Job, NewJob
from ingestq.model.webhook import (
    DeliveryAttempt,
    DeliveryFilter,
    DeliveryOptions,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from ingestq.store.queries import load_queries
from ingestq.store.sqlite.base import SqliteBase
from ingestq.store.sqlite.engine import Engine
from ingestq.store.sqlite.rows import dt, ts
from ingestq.store.webhook_rows import attempt_from_row, delivery_from_row, endpoint_from_row, filter_params

W = load_queries("ingestq.store.sqlite", "webhook_queries.sql")


def _target(url: str, options: DeliveryOptions) -> dict[str, Any]:
    return {"url": url, "queue": options.queue, "max_attempts": options.max_attempts}


class _Ops:
    """The synchronous operations, on the engine's connection (called on the store's thread)."""

    @staticmethod
    def endpoints_set(
        e: Engine, collection: str, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> list[WebhookEndpoint]:
        with e.write() as cur:
            cur.execute(W["webhook_endpoints_clear"], {"collection": collection})
            for url in dict.fromkeys(urls):
                cur.execute(
                    W["webhook_endpoint_insert"],
                    {"collection": collection, "now": ts(now), **_target(url, options)},
                )
        return _Ops.endpoints_list(e, collection)

    @staticmethod
    def endpoints_list(e: Engine, collection: str | None) -> list[WebhookEndpoint]:
        return [
            endpoint_from_row(r, dt) for r in e.read(W["webhook_endpoints_list"], {"collection": collection})
        ]

    @staticmethod
    def insert_with_callbacks(
        e: Engine, job: NewJob, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> Job:
        with e.write() as cur:
            inserted, fresh = e._insert_one(cur, job, ts(now))
            if fresh:
                e._check_depths(cur, {job.queue})
            for url in dict.fromkeys(urls):
                cur.execute(W["job_callback_insert"], {"job_id": inserted.id, **_target(url, options)})
        return inserted

    @staticmethod
    def callbacks(e: Engine, job_id: int) -> list[str]:
        return [url for (url,) in e.read(W["job_callbacks_list"], {"job_id": job_id})]

    @staticmethod
    def document_callbacks_add(
        e: Engine, collection: str, document_id: str, urls: Sequence[str], options: DeliveryOptions
    ) -> None:
        with e.write() as cur:
            for url in dict.fromkeys(urls):
                params = {"collection": collection, "document_id": document_id, **_target(url, options)}
                cur.execute(W["document_callback_insert"], params)

    @staticmethod
    def delivery_get(e: Engine, delivery_id: int) -> WebhookDelivery | None:
        found = e.read(W["webhook_delivery_get"], {"id": delivery_id})
        return delivery_from_row(found[0], dt) if found else None

    @staticmethod
    def delivery_list(e: Engine, flt: DeliveryFilter) -> list[WebhookDelivery]:
        params = filter_params(flt)
        return [delivery_from_row(r, dt) for r in e.read(W["webhook_delivery_list"], params)]

    @staticmethod
    def attempts(e: Engine, delivery_id: int) -> list[DeliveryAttempt]:
        rows = e.read(W["webhook_attempts_list"], {"delivery_id": delivery_id})
        return [attempt_from_row(r, dt) for r in rows]

    @staticmethod
    def attempt_record(e: Engine, params: dict[str, Any]) -> None:
        with e.write() as cur:
            cur.execute(W["webhook_attempt_insert"], params)
            cur.execute(W["webhook_delivery_attempted"], params)

    @staticmethod
    def prune(e: Engine, params: dict[str, Any]) -> int:
        with e.write() as cur:
            cur.execute(W["webhook_prune"], params)
            return int(e.conn.changes())

    @staticmethod
    def redeliver(e: Engine, delivery_id: int, now: datetime) -> WebhookDelivery:
        with e.write() as cur:
            if not cur.execute(W["webhook_delivery_get"], {"id": delivery_id}).fetchall():
                raise DeliveryNotFound(delivery_id)
            live: list[Any] = cur.execute(W["webhook_delivery_live_job"], {"id": delivery_id}).fetchall()
            if live:
                raise InvalidJobState(
                    f"webhook delivery {delivery_id} is still being delivered (job {live[0][0]}): "
                    "redeliver it once that job has finished"
                )
            ((job_id,),) = cur.execute(
                W["webhook_redeliver_job"], {"id": delivery_id, "now": ts(now)}
            ).fetchall()
            cur.execute(W["webhook_delivery_requeued"], {"id": delivery_id, "job_id": job_id})
        found = _Ops.delivery_get(e, delivery_id)
        assert found is not None
        return found


class SqliteWebhooks(SqliteBase):
    """The WebhookStore half of SqliteStore (which sets its wake-up event after a redelivery)."""

    async def webhook_endpoints_set(
        self, collection: str, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> list[WebhookEndpoint]:
        return await self._run(_Ops.endpoints_set, self._e, collection, urls, options, now)

    async def webhook_endpoints_list(self, collection: str | None) -> list[WebhookEndpoint]:
        return await self._run(_Ops.endpoints_list, self._e, collection)

    async def job_insert_with_callbacks(
        self, job: NewJob, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> Job:
        inserted = await self._run(_Ops.insert_with_callbacks, self._e, job, urls, options, now)
        self._jobs_changed()
        return inserted

    async def job_callbacks(self, job_id: int) -> list[str]:
        return await self._run(_Ops.callbacks, self._e, job_id)

    async def document_callbacks_add(
        self, collection: str, document_id: str, urls: Sequence[str], options: DeliveryOptions
    ) -> None:
        await self._run(_Ops.document_callbacks_add, self._e, collection, document_id, urls, options)

    async def webhook_delivery_get(self, delivery_id: int) -> WebhookDelivery | None:
        return await self._run(_Ops.delivery_get, self._e, delivery_id)

    async def webhook_delivery_list(self, flt: DeliveryFilter) -> list[WebhookDelivery]:
        return await self._run(_Ops.delivery_list, self._e, flt)

    async def webhook_attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        return await self._run(_Ops.attempts, self._e, delivery_id)

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
        params = {
            "delivery_id": delivery_id,
            "job_id": job_id,
            "status": DeliveryStatus(status).value,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
            "now": ts(now),
        }
        await self._run(_Ops.attempt_record, self._e, params)

    async def webhook_prune(self, status: DeliveryStatus, before: datetime, limit: int) -> int:
        params = {"status": DeliveryStatus(status).value, "before": ts(before), "limit": limit}
        return await self._run(_Ops.prune, self._e, params)

    async def webhook_redeliver(self, delivery_id: int, now: datetime) -> WebhookDelivery:
        delivery = await self._run(_Ops.redeliver, self._e, delivery_id, now)
        self._jobs_changed()
        return delivery

    def _jobs_changed(self) -> None:
        """Jobs were inserted by this process: wake its waiting workers (SqliteStore overrides)."""
