"""The `callbacks` of POST /v1/jobs and POST /v1/documents: checked, then registered with what they
announce (atomically with the job; before the documents' jobs are queued)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from ingestq.api.errors import ApiError
from ingestq.client.webhooks import Webhooks
from ingestq.errors import ConfigError
from ingestq.model.document import Document
from ingestq.model.job import Job, NewJob
from ingestq.runtime import Runtime

BeforeEnqueue = Callable[[Sequence[Document]], Awaitable[None]]


def form_callbacks(value: str) -> list[str]:
    """A multipart `callbacks` field: a JSON array of URLs, or URLs separated by whitespace."""
    value = value.strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            urls = json.loads(value)
        except ValueError:
            raise ApiError(422, "invalid_callback", "callbacks: not a JSON array") from None
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ApiError(422, "invalid_callback", "callbacks: must be a JSON array of URLs")
        return urls
    return value.split()


def _webhooks(runtime: Runtime, urls: Sequence[str]) -> Webhooks:
    webhooks = Webhooks(runtime.client, runtime.settings)
    try:
        webhooks.check(urls)
    except ConfigError as exc:
        raise ApiError(422, "invalid_callback", str(exc)) from None
    return webhooks


async def insert_with_callbacks(runtime: Runtime, job: NewJob, urls: Sequence[str], now: datetime) -> Job:
    return await _webhooks(runtime, urls).insert_with_callbacks(job, urls, now)


def document_callbacks(runtime: Runtime, urls: Sequence[str]) -> BeforeEnqueue | None:
    """The `before_enqueue` hook of Documents.ingest that registers `urls` for each document (None when
    there are none). Raises ApiError 422 at once for a bad URL, before anything is registered."""
    if not urls:
        return None
    webhooks = _webhooks(runtime, urls)

    async def register(docs: Sequence[Document]) -> None:
        for doc in docs:
            await webhooks.add_document_callbacks(doc.collection, doc.id, urls)

    return register
