"""`/v1/webhooks`: a collection's endpoints, and the deliveries (list, one with its attempts, redeliver).

Deliveries are enqueued by the store in the transaction of what they announce; these routes only show
them and enqueue a person's redelivery. See docs/webhooks.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ingestq.api.errors import ApiError, ShapedRoute
from ingestq.api.schemas import INT64, MAX_LIST_LIMIT, MAX_NAME, error_responses
from ingestq.api.state import Admin, IngestqRuntime, Reader
from ingestq.api.webhook_schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    EndpointsIn,
    EndpointsOut,
)
from ingestq.client.webhooks import Webhooks
from ingestq.errors import ConfigError
from ingestq.model.webhook import DeliveryFilter, DeliveryStatus
from ingestq.runtime import Runtime

router = APIRouter(route_class=ShapedRoute, responses=error_responses(401, 403, 422, 503), tags=["webhooks"])

DeliveryId = Annotated[int, Path(ge=1, le=INT64, description="Delivery id")]
Collection = Annotated[str, Path(min_length=1, max_length=MAX_NAME)]


def webhooks_of(runtime: Runtime) -> Webhooks:
    return Webhooks(runtime.client, runtime.settings)


def invalid_callbacks(exc: ConfigError) -> ApiError:
    return ApiError(422, "invalid_callback", str(exc))


@router.put(
    "/webhooks/endpoints/{collection}",
    summary="Set a collection's endpoints (every document indexed, failed or quarantined is announced)",
    response_model=EndpointsOut,
    dependencies=[Admin],
)
async def set_endpoints(runtime: IngestqRuntime, collection: Collection, body: EndpointsIn) -> EndpointsOut:
    try:
        endpoints = await webhooks_of(runtime).set_endpoints(collection, body.urls)
    except ConfigError as exc:
        raise invalid_callbacks(exc) from None
    return EndpointsOut.of(endpoints)


@router.get(
    "/webhooks/endpoints",
    summary="Every collection's endpoints (or one collection's)",
    response_model=EndpointsOut,
    dependencies=[Reader],
)
async def list_endpoints(
    runtime: IngestqRuntime, collection: Annotated[str | None, Query(max_length=MAX_NAME)] = None
) -> EndpointsOut:
    return EndpointsOut.of(await webhooks_of(runtime).endpoints(collection))


@router.get(
    "/webhooks/deliveries",
    summary="List deliveries, newest first (keyset pagination)",
    response_model=DeliveryPage,
    dependencies=[Reader],
)
async def list_deliveries(
    runtime: IngestqRuntime,
    status: DeliveryStatus | None = None,
    event: Annotated[str | None, Query(max_length=MAX_NAME, description="e.g. job.failed")] = None,
    collection: Annotated[str | None, Query(max_length=MAX_NAME)] = None,
    subject_job_id: Annotated[int | None, Query(ge=1, le=INT64, description="the job announced")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=INT64, description="the `next` of a page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
) -> DeliveryPage:
    flt = DeliveryFilter(status, event, collection, subject_job_id, before_id, limit)
    found = await webhooks_of(runtime).deliveries(flt)
    return DeliveryPage(
        deliveries=[DeliveryOut.of(d) for d in found], next=found[-1].id if len(found) == limit else None
    )


@router.get(
    "/webhooks/deliveries/{delivery_id}",
    summary="One delivery with every attempt (status code, error, duration)",
    response_model=DeliveryDetailOut,
    responses=error_responses(404),
    dependencies=[Reader],
)
async def get_delivery(runtime: IngestqRuntime, delivery_id: DeliveryId) -> DeliveryDetailOut:
    detail = await webhooks_of(runtime).delivery(delivery_id)
    return DeliveryDetailOut.with_attempts(detail.delivery, detail.attempts)


@router.post(
    "/webhooks/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery again (a new job; the same webhook-id and body)",
    description="202 with the delivery, pending again. 409 while its latest job is still queued or running.",
    status_code=202,
    response_model=DeliveryOut,
    responses=error_responses(404, 409),
    dependencies=[Admin],
)
async def redeliver(
    request: Request, response: Response, runtime: IngestqRuntime, delivery_id: DeliveryId
) -> DeliveryOut:
    delivery = await webhooks_of(runtime).redeliver(delivery_id)
    response.headers["Location"] = str(request.url_for("get_delivery", delivery_id=delivery_id))
    return DeliveryOut.of(delivery)
