"""`/v1/events` and `/v1/jobs/{id}/events`: Server-Sent Events of job state changes and progress.

Reading needs a read token (like every GET). An EventSource cannot send headers on reconnect, so the
resume point may also come as `?last_event_id=`; the `Last-Event-ID` header wins when both are given.
Resume works within this process's window: its last 10,000 events, kept while anybody follows and for
two minutes after (see api/events/feed.py); otherwise the stream starts with `event: reset`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import StreamingResponse

from ingestq.api.errors import ApiError, ShapedRoute
from ingestq.api.events.stream import MAX_FILTER_VALUES, EventFilter, open_stream, resume_id
from ingestq.api.schemas import INT64, MAX_NAME, error_responses, name_error
from ingestq.api.state import IngestqClient, Reader
from ingestq.model.job import Job

router = APIRouter(route_class=ShapedRoute, responses=error_responses(401, 422, 503), tags=["events"])

STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An event stream: `event: job` (a state change), `event: progress`, `event: reset` "
        "(resume impossible: re-read, then follow), `event: bye` (server shutdown); each with `id:` and "
        "JSON `data:`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
LastEventId = Annotated[
    str | None,
    Query(max_length=64, description="Resume after this event id (for EventSource reconnects)"),
]


def _names(values: list[str] | None, what: str) -> frozenset[str] | None:
    if not values:
        return None
    problem = name_error(values, what)
    if problem is None and len(values) > MAX_FILTER_VALUES:
        problem = f"{what}: at most {MAX_FILTER_VALUES} values"
    if problem is not None:
        raise ApiError(422, "invalid_request", problem)
    return frozenset(values)


@router.get(
    "/events",
    summary="Follow every job's state changes and progress (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=STREAM_DOC,
    dependencies=[Reader],
)
async def events(
    request: Request,
    queue: Annotated[list[str] | None, Query(max_length=MAX_NAME, description="Only these queues")] = None,
    kind: Annotated[list[str] | None, Query(max_length=MAX_NAME, description="Only these kinds")] = None,
    collection: Annotated[
        list[str] | None, Query(max_length=MAX_NAME, description="Only ingestion jobs of these collections")
    ] = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    wanted = EventFilter(
        queues=_names(queue, "queue"),
        kinds=_names(kind, "kind"),
        collections=_names(collection, "collection"),
    )
    return await open_stream(request, wanted, _checked(resume_id(request, last_event_id)))


@router.get(
    "/jobs/{job_id}/events",
    summary="Follow one job's state changes and progress (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={**STREAM_DOC, **error_responses(404)},
    dependencies=[Reader],
)
async def job_events(
    request: Request,
    client: IngestqClient,
    job_id: Annotated[int, Path(ge=1, le=INT64, description="Job id")],
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    await client.get(job_id)  # 404 for a job that does not exist, before the stream's 200

    async def now() -> Job:
        return await client.get(job_id)

    return await open_stream(
        request, EventFilter(job_id=job_id), _checked(resume_id(request, last_event_id)), first=now
    )


def _checked(value: str | None) -> str | None:
    """A Last-Event-ID is short printable ASCII; anything else is not ours and cannot resume (reset)."""
    if value is None:
        return None
    if len(value) > 64 or not value.isascii() or not value.isprintable():
        return ""
    return value
