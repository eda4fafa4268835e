"""The dashboard's Webhooks page: deliveries (filters, keyset pages), one delivery with its attempts and
body, a person's redelivery (a POST behind the same origin, session and CSRF checks as every dashboard
form), and the collections' endpoints. Everything shown comes from the network (URLs, bodies, errors) and
is rendered through autoescaping only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingestq.api.dashboard.routes import (
    PAGE_SIZE,
    DashboardRoute,
    _client,
    _guard,
    _Redirect,
    _Refused,
    _render,
    _state,
    _text,
    _viewer,
)
from ingestq.client.webhooks import Webhooks
from ingestq.errors import DeliveryNotFound
from ingestq.model.webhook import DOCUMENT_EVENTS, JOB_EVENTS, DeliveryFilter, DeliveryStatus

webhook_pages = APIRouter(prefix="/dashboard", route_class=DashboardRoute, include_in_schema=False)

REDELIVERED = "Delivery queued again: the same webhook-id and body, a new job."


@dataclass(frozen=True)
class _Query:
    status: DeliveryStatus | None
    event: str

    @classmethod
    def of(cls, params: Any) -> _Query:
        raw = str(params.get("status") or "")
        status = DeliveryStatus(raw) if raw in DeliveryStatus.__members__.values() else None
        event = str(params.get("event") or "").strip()
        return cls(status, event if event in (*JOB_EVENTS, *DOCUMENT_EVENTS) else "")

    def query(self) -> str:
        pairs = {"status": self.status.value if self.status else "", "event": self.event}
        return urlencode({k: v for k, v in pairs.items() if v})


def _webhooks(request: Request) -> Webhooks:
    return Webhooks(_client(request), _state(request).service.runtime.settings)


@webhook_pages.get("/webhooks", name="dashboard_webhooks")
async def webhooks_page(request: Request) -> Response:
    viewer = _viewer(request)
    query = _Query.of(request.query_params)
    before = request.query_params.get("before", "")
    before_id = int(before) if before.isdigit() else None
    webhooks = _webhooks(request)
    flt = DeliveryFilter(status=query.status, event=query.event or None, before_id=before_id, limit=PAGE_SIZE)
    deliveries = await webhooks.deliveries(flt)
    return _render(
        request,
        "webhooks.html",
        viewer,
        page="webhooks",
        deliveries=deliveries,
        endpoints=await webhooks.endpoints() if before_id is None else [],
        query=query,
        statuses=list(DeliveryStatus),
        events=[*JOB_EVENTS, *DOCUMENT_EVENTS],
        next_before=deliveries[-1].id if len(deliveries) == PAGE_SIZE else None,
        first_page=before_id is None,
        redelivered=REDELIVERED if request.query_params.get("notice") == "redelivered" else None,
    )


@webhook_pages.get("/webhooks/{delivery_id:int}", name="dashboard_webhook")
async def webhook_page(request: Request, delivery_id: int) -> Response:
    viewer = _viewer(request)
    try:
        detail = await _webhooks(request).delivery(delivery_id)
    except DeliveryNotFound as exc:
        raise _Refused(404, str(exc)) from None
    redelivered = REDELIVERED if request.query_params.get("notice") == "redelivered" else None
    return _render(
        request,
        "webhook.html",
        viewer,
        page="webhooks",
        delivery=detail.delivery,
        attempts=detail.attempts,
        redelivered=redelivered,
    )


@webhook_pages.post("/webhooks/redeliver")
async def webhook_redeliver(request: Request) -> Response:
    viewer, form = await _guard(request)
    raw = _text(form, "delivery_id")
    if not raw.isdigit():
        raise _Refused(400, "Which delivery? The form named none.")
    try:
        await _webhooks(request).redeliver(int(raw))
    except DeliveryNotFound as exc:
        raise _Refused(404, str(exc)) from None
    raise _Redirect(f"{viewer.base}/webhooks/{int(raw)}?notice=redelivered")
