"""`/dashboard/events`: the one event stream a dashboard tab follows (static/dashboard.js), signed in by
the session cookie (EventSource cannot send a bearer token, and a token in the URL would reach logs).

Every event of the process's feed is sent; the page throttles its refreshes. Without a session the
answer is a plain 401 (not the login redirect pages get): the script then falls back to polling, whose
htmx requests move the page to the sign-in form. The route itself is declared in routes.py, before the
dashboard's catch-all 404.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from ingestq.api.errors import ApiError
from ingestq.api.events.stream import EventFilter, open_stream, resume_id


def unauthorized() -> Response:
    return Response("sign in first\n", status_code=401, media_type="text/plain")


async def stream_for_tab(request: Request) -> Response:
    try:
        return await open_stream(request, EventFilter(), resume_id(request, None))
    except ApiError as exc:  # the stream cap: the page polls instead
        return Response(
            exc.message + "\n", status_code=exc.status, headers=exc.headers, media_type="text/plain"
        )
