"""The `WebhookStore` half of PostgresStore: endpoints, callbacks, deliveries, on the pool's connections.

The deliveries are enqueued by the triggers of migration 7 inside whichever transaction finishes a job
or settles a document (see store/webhook_base.py); these methods only register URLs and read or update
what the triggers wrote.
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
from ingestq.store.postgres import insert
from ingestq.store.postgres.pool import PostgresPool
from ingestq.store.postgres.statements import Q
from ingestq.store.queries import load_queries
from ingestq.store.webhook_rows import attempt_from_row, delivery_from_row, endpoint_from_row, filter_params

W = load_queries("ingestq.store.postgres", "webhook_queries.sql")


def _same(value: Any) -> Any:
    return value


def _target(url: str, options: DeliveryOptions) -> dict[str, Any]:
    return {"url": url, "queue": options.queue, "max_attempts": options.max_attempts}


class PostgresWebhooks(PostgresPool):
    async def webhook_endpoints_set(
        self, collection: str, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> list[WebhookEndpoint]:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(W["webhook_endpoints_clear"], {"collection": collection})
            for url in dict.fromkeys(urls):
                params = {"collection": collection, "now": now, **_target(url, options)}
                await conn.execute(W["webhook_endpoint_insert"], params)
        return await self.webhook_endpoints_list(collection)

    async def webhook_endpoints_list(self, collection: str | None) -> list[WebhookEndpoint]:
        rows = await self._fetchall(W["webhook_endpoints_list"], {"collection": collection})
        return [endpoint_from_row(r, _same) for r in rows]

    async def job_insert_with_callbacks(
        self, job: NewJob, urls: Sequence[str], options: DeliveryOptions, now: datetime
    ) -> Job:
        async with self._connection() as conn, conn.transaction():
            (inserted,) = await insert.insert(conn, [job], now)
            for url in dict.fromkeys(urls):
                await conn.execute(W["job_callback_insert"], {"job_id": inserted.id, **_target(url, options)})
        return inserted

    async def job_callbacks(self, job_id: int) -> list[str]:
        return [url for (url,) in await self._fetchall(W["job_callbacks_list"], {"job_id": job_id})]

    async def document_callbacks_add(
        self, collection: str, document_id: str, urls: Sequence[str], options: DeliveryOptions
    ) -> None:
        async with self._connection() as conn, conn.transaction():
            for url in dict.fromkeys(urls):
                params = {"collection": collection, "document_id": document_id, **_target(url, options)}
                await conn.execute(W["document_callback_insert"], params)

    async def webhook_delivery_get(self, delivery_id: int) -> WebhookDelivery | None:
        row = await self._fetchone(W["webhook_delivery_get"], {"id": delivery_id})
        return None if row is None else delivery_from_row(row, _same)

    async def webhook_delivery_list(self, flt: DeliveryFilter) -> list[WebhookDelivery]:
        params = filter_params(flt)
        return [delivery_from_row(r, _same) for r in await self._fetchall(W["webhook_delivery_list"], params)]

    async def webhook_attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        rows = await self._fetchall(W["webhook_attempts_list"], {"delivery_id": delivery_id})
        return [attempt_from_row(r, _same) for r in rows]

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
            "now": now,
        }
        async with self._connection() as conn, conn.transaction():
            await conn.execute(W["webhook_attempt_insert"], params)
            await conn.execute(W["webhook_delivery_attempted"], params)

    async def webhook_prune(self, status: DeliveryStatus, before: datetime, limit: int) -> int:
        params = {"status": DeliveryStatus(status).value, "before": before, "limit": limit}
        async with self._connection() as conn:
            cur = await conn.execute(W["webhook_prune"], params)
            return cur.rowcount

    async def webhook_redeliver(self, delivery_id: int, now: datetime) -> WebhookDelivery:
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(W["webhook_delivery_get"] + " FOR UPDATE", {"id": delivery_id})
            if await cur.fetchone() is None:
                raise DeliveryNotFound(delivery_id)
            cur = await conn.execute(W["webhook_delivery_live_job"], {"id": delivery_id})
            live = await cur.fetchone()
            if live is not None:
                raise InvalidJobState(
                    f"webhook delivery {delivery_id} is still being delivered (job {live[0]}): "
                    "redeliver it once that job has finished"
                )
            cur = await conn.execute(W["webhook_redeliver_job"], {"id": delivery_id, "now": now})
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(W["webhook_delivery_requeued"], {"id": delivery_id, "job_id": row[0]})
            await conn.execute(Q["jobs_notify"])
        found = await self.webhook_delivery_get(delivery_id)
        assert found is not None
        return found
