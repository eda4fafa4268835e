"""One SSE stream: the response every events route returns, following the process's feed.

The wire format (text/event-stream): a `retry:` hint first, then per event `id: <epoch>-<seq>`,
`event: job|progress`, `data: <json>`; a `: keep-alive` comment after `KEEPALIVE` seconds of silence (so
proxies and load balancers keep the connection); `event: reset` when the `Last-Event-ID` cannot be
resumed (another process's id, or older than the buffer): the client re-reads what it shows, then
follows; `event: bye` before the server closes the stream at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ingestq.api.errors import ApiError
from ingestq.api.events.feed import Event, JobFeed
from ingestq.api.state import STATE_KEY, ServiceState, service_state
from ingestq.model.job import Job

FEED_KEY = "ingestq_event_feed"
KEEPALIVE = 15.0  # seconds of silence before a comment line (below the usual 60 s proxy idle timeouts)
RETRY_MS = 2000  # the reconnect delay EventSource is told to use
STREAM_RETRY_AFTER = 5  # seconds a refused stream is told to wait
MAX_FILTER_VALUES = 20


@dataclass(frozen=True)
class EventFilter:
    job_id: int | None = None
    queues: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    collections: frozenset[str] | None = None

    def __call__(self, event: Event) -> bool:
        return (
            (self.job_id is None or event.job_id == self.job_id)
            and (self.queues is None or event.queue in self.queues)
            and (self.kinds is None or event.kind in self.kinds)
            and (self.collections is None or event.collection in self.collections)
        )


def feed_of(app: FastAPI) -> JobFeed:
    """The process's one feed, made on first use over the service's store."""
    feed: JobFeed | None = getattr(app.state, FEED_KEY, None)
    if feed is None or feed.closed:
        state: ServiceState = getattr(app.state, STATE_KEY)
        client = state.runtime.client
        feed = JobFeed(client.store, client.clock)
        setattr(app.state, FEED_KEY, feed)
    return feed


async def close_feed(app: FastAPI) -> None:
    """End every stream of this application (its lifespan's shutdown, or the server's exit signal)."""
    feed: JobFeed | None = getattr(app.state, FEED_KEY, None)
    if feed is not None:
        await feed.close()


def begin_shutdown(app: FastAPI) -> None:
    """Tell every stream to say goodbye and end; safe to call from a signal handler's thread."""
    feed: JobFeed | None = getattr(app.state, FEED_KEY, None)
    if feed is not None:
        feed.begin_close()


def resume_id(request: Request, query_value: str | None) -> str | None:
    header = request.headers.get("last-event-id")
    return header if header else query_value


class EventStreamResponse(StreamingResponse):
    """Gives the stream's slot back however the response ends: a generator that never started (the
    client left before the headers went out) would never run its own `finally`."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def open_stream(
    request: Request,
    wanted: EventFilter,
    last_id: str | None,
    first: Callable[[], Awaitable[Job]] | None = None,
) -> StreamingResponse:
    """Admit a stream (503 beyond the cap), work out where it resumes, and return the response. A stream
    that does not resume starts with `first()`'s job as it is, read after subscribing: a change in
    between then comes twice (harmless), never not at all."""
    state = service_state(request)
    cap = state.runtime.settings.sse_max_streams
    feed = feed_of(request.app)
    if feed.subscribers >= cap:
        raise ApiError(
            503,
            "too_many_streams",
            f"this process already serves {cap} event streams; retry later or poll",
            {"Retry-After": str(STREAM_RETRY_AFTER)},
        )
    start = await feed.subscribe()
    resumed = feed.parse_id(last_id)
    reset = last_id is not None and (resumed is None or not feed.resumable(resumed))
    cursor = resumed if resumed is not None and not reset else start
    released = False
    opening: str | None = None
    if first is not None and (resumed is None or reset):
        try:
            opening = feed.snapshot(await first(), cursor)
        except BaseException:
            feed.unsubscribe()
            raise

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            feed.unsubscribe()

    return EventStreamResponse(_frames(feed, wanted, cursor, reset, opening, release), release)


async def _frames(
    feed: JobFeed,
    wanted: EventFilter,
    cursor: int,
    reset: bool,
    opening: str | None,
    release: Callable[[], None],
) -> AsyncIterator[str]:
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if reset:
            # the id names the present, so the client's next reconnect resumes from here
            yield f'id: {feed.epoch}-{cursor}\nevent: reset\ndata: {{"reason":"not resumable"}}\n\n'
        if opening is not None:
            yield opening
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while not feed.closing:
            if cursor < feed.last_seq and not feed.resumable(cursor):
                # this stream fell behind the buffer (a very slow reader): start over from the present
                cursor = feed.last_seq
                yield f'id: {feed.epoch}-{cursor}\nevent: reset\ndata: {{"reason":"fell behind"}}\n\n'
            batch = feed.after(cursor)
            if batch:
                cursor = batch[-1].seq
                frames = "".join(e.frame for e in batch if wanted(e))
                if frames:
                    quiet_since = loop.time()
                    yield frames
                continue
            left = quiet_since + KEEPALIVE - loop.time()
            if left <= 0:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
                continue
            await feed.wait_after(cursor, left)
        yield 'event: bye\ndata: {"reason":"server shutting down"}\n\n'
    finally:
        release()
