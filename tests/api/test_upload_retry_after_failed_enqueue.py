"""A request that registered its upload and then failed before queueing the job (the process died, the
database went away, a callback could not be registered) leaves a `pending` document without a job. The
client's retry with the same bytes must queue that job, not answer `pending` for a document no worker
will ever take (it did: the retry found the document by its content and returned it as a duplicate)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from service import serving

from ingestq.client.documents import Documents
from ingestq.model.document import Document
from ingestq.runtime import Runtime
from ingestq.settings import Settings

BODY = b"# Interrupted upload\n\nRegistered, then the request failed before its job was queued.\n"


class Interrupted(Exception):
    pass


async def _register_without_a_job(database_url: str) -> Document:
    """What the failed request left: the upload stored and its document registered, no job."""
    registered: list[Document] = []

    async def fail(docs: Sequence[Document]) -> None:
        registered.extend(docs)
        raise Interrupted

    async with await Runtime.open(Settings(database_url=database_url, embedder="fake")) as rt:
        documents = Documents(rt.client, rt.settings)
        with contextlib.suppress(Interrupted):
            await documents.ingest(uploads=[("report.md", BODY)], collection="c", before_enqueue=fail)
        (doc,) = registered
        assert not await rt.client.list()  # the window: a document, no job
    return doc


def test_a_retry_queues_the_job_an_interrupted_upload_never_got(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with serving(url, tmp_path / "serve.log", env={"INGESTQ_EMBEDDER": "fake"}):
        pass  # migrated by the service, as in production
    doc = asyncio.run(_register_without_a_job(url))
    assert doc.status.value == "pending"
    with serving(url, tmp_path / "serve.log", "--with-worker", env={"INGESTQ_EMBEDDER": "fake"}) as service:
        answer = httpx.post(
            service.url + "/v1/documents", files={"file": ("report.md", BODY)}, data={"collection": "c"}
        )
        assert answer.status_code == 202, answer.text
        (accepted,) = answer.json()["documents"]
        assert accepted["document_id"] == doc.id
        assert accepted["job_id"] is not None
        deadline = time.monotonic() + 60
        while (status := httpx.get(service.url + accepted["location"]).json()["status"]) != "indexed":
            assert status in ("pending", "parsing", "chunking", "embedding"), status
            assert time.monotonic() < deadline
            time.sleep(0.1)
        again = httpx.post(
            service.url + "/v1/documents", files={"file": ("report.md", BODY)}, data={"collection": "c"}
        )
        (duplicate,) = again.json()["documents"]
        assert (duplicate["duplicate"], duplicate["job_id"]) == (True, accepted["job_id"])
