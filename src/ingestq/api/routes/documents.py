"""Documents and search over HTTP: ingest (upload, URL, text, path) → 202, list, get, delete, reprocess.

`POST /v1/documents` takes `multipart/form-data` (one or more file parts, optional `collection` and
`metadata` fields, metadata a JSON object) or JSON (`url`, `text` + `title`, or `path`, with
`collection` and `metadata`). It registers each document as pending and queues its ingestion job through
the same code as the library (`Documents.ingest`), then answers 202 at once with the document, its job,
and a `Location` (`/v1/documents/{collection}/{id}`, both percent-encoded). Uploads are read while they
stream, capped and hashed on the way (see api/uploads.py); nothing is stored unless the whole body was
accepted.

Paths: the service reads none unless INGESTQ_INGEST_PATH_ROOTS names directories (unset means no path
ingestion here, unlike the library and CLI), and then only under them (the same check as the library's,
again in the worker). URLs keep the worker's SSRF guard. A client's file name is metadata only.

Reads (GET, and `POST /v1/search`, which changes nothing) need a read token; changes need an admin token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ingestq.api.document_schemas import (
    COLLECTION_RULE,
    Accepted,
    AcceptedBatch,
    ChunkView,
    DocumentDetail,
    DocumentPage,
    DocumentView,
    HitView,
    JobView,
    Reprocessed,
    SearchBody,
    SearchResult,
    SourceBody,
    Timings,
    Tokens,
    check_collection,
)
from ingestq.api.errors import ApiError, ShapedRoute
from ingestq.api.idempotency import fingerprint, key_of, remember, replay
from ingestq.api.schemas import ErrorBody
from ingestq.api.state import Admin, IngestqRuntime, Reader, service_state
from ingestq.api.uploads import (
    FORM_OVERHEAD,
    FilePart,
    Form,
    read_json,
    read_multipart,
    safe_name,
    too_large,
)
from ingestq.api.webhook_callbacks import BeforeEnqueue, document_callbacks, form_callbacks
from ingestq.client.client import Client
from ingestq.client.documents import Documents
from ingestq.model.document import Document, DocumentStatus
from ingestq.model.job import Job, JobFilter, JobState
from ingestq.pipeline.ingest.kinds import INGEST_KIND
from ingestq.runtime import Runtime

_ERROR_TEXT = {
    401: "No valid bearer token",
    403: "The token may only read (or, for a path, path ingestion is off on this service)",
    404: "No such document or collection",
    409: "The collection was embedded with another model than this service's",
    413: "A file is over INGESTQ_UPLOAD_MAX_BYTES, or the request over that plus 1 MiB (nothing was stored)",
    415: "Neither multipart/form-data nor application/json",
    422: "Invalid request: body, path, query, source, or an Idempotency-Key reused for another request",
    503: "The database is unavailable, or (uploads) the process receives INGESTQ_UPLOADS_IN_FLIGHT "
    "already: retry after the Retry-After header's seconds",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _ERROR_TEXT[status]} for status in statuses}


router = APIRouter(route_class=ShapedRoute, responses=_errors(401, 422, 503), tags=["documents"])

_DOCUMENTS_KEY = "ingestq_documents"
_TEXT_SUFFIXES = (".md", ".markdown", ".txt")

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "collection": {"type": "string"},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": SourceBody.model_json_schema(ref_template="#/components/schemas/{model}")
            },
        },
    }
}


def documents_of(request: Request, runtime: Runtime) -> Documents:
    """One `Documents` per runtime, kept on the application: the query embedder is loaded once."""
    cached: tuple[Runtime, Documents] | None = getattr(request.app.state, _DOCUMENTS_KEY, None)
    if cached is None or cached[0] is not runtime:
        cached = (runtime, Documents(runtime.client, runtime.settings))
        setattr(request.app.state, _DOCUMENTS_KEY, cached)
    return cached[1]


_BASES_KEY = "ingestq_documents_base"


def _base(request: Request) -> str:
    """This route's path under whatever prefix or mount the application gives it. Worked out once per
    root path: `url_for` walks every route of the application, a twentieth of an upload's CPU."""
    bases: dict[str, str] | None = getattr(request.app.state, _BASES_KEY, None)
    if bases is None:
        bases = {}
        setattr(request.app.state, _BASES_KEY, bases)
    root = str(request.scope.get("root_path", ""))
    found = bases.get(root)
    if found is None:
        found = request.url_for("ingest_documents").path
        if len(bases) < 16:  # a proxy could send any prefix: remember only a few
            bases[root] = found
    return found


def location(request: Request, collection: str, document_id: str) -> str:
    return f"{_base(request)}/{quote(collection, safe='')}/{quote(document_id, safe='')}"


def _collection(name: str | None, docs: Documents) -> str:
    try:
        return check_collection(name or docs.settings.default_collection)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


def _invalid(exc: ValidationError, where: str) -> RequestValidationError:
    return RequestValidationError(
        [{**err, "loc": (where, *err.get("loc", ()))} for err in exc.errors(include_url=False)]
    )


# --- ingest -----------------------------------------------------------------------------------------


@router.post(
    "/documents",
    name="ingest_documents",
    summary="Ingest uploaded files (multipart) or a URL, text or path (JSON): 202 with documents and jobs",
    status_code=202,
    response_model=AcceptedBatch,
    dependencies=[Admin],
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {
            "model": AcceptedBatch,
            "description": "every file was already there (same content): nothing queued",
        },
        **_errors(403, 413, 415),
    },
)
async def ingest_documents(
    request: Request,
    runtime: IngestqRuntime,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="send the request again with the same key: the first answer comes back (24 h)",
        ),
    ] = None,
) -> JSONResponse:
    docs = documents_of(request, runtime)
    key = key_of(idempotency_key, "POST /v1/documents")
    with service_state(request).uploads.admit():  # 503 past INGESTQ_UPLOADS_IN_FLIGHT (api/admission.py)
        run, asked, form = await _read_ingest(request, docs, runtime)
        try:
            if key is None:
                return _accepted(await run())
            wanted = fingerprint(asked)
            replayed = await replay(docs.store, key, wanted, runtime.client.clock.now())
            if replayed is not None:
                return replayed
            response = _accepted(await run())
            return await remember(docs.store, key, wanted, response, runtime.client.clock.now())
        finally:
            if form is not None:
                form.close()  # the spooled uploads: stored by now, or not wanted


async def _read_ingest(
    request: Request, docs: Documents, runtime: Runtime
) -> tuple[Callable[[], Awaitable[list[Accepted]]], dict[str, Any], Form | None]:
    """Read and check the whole request; return what will ingest it, what it asks for (the
    Idempotency-Key fingerprint: the same files and fields, whatever the multipart boundary), and the
    form whose spooled files the caller closes."""
    cap = docs.settings.upload_max_bytes
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        form = await read_multipart(request, cap, cap + FORM_OVERHEAD)
        try:
            collection, metadata = _form_fields(form.fields, docs)
            if not form.files:
                raise ApiError(422, "invalid_request", "no file part in the multipart body")
            urls = form_callbacks(form.fields.get("callbacks", ""))
            hook = document_callbacks(runtime, urls)
        except BaseException:
            form.close()
            raise
        asked = {
            "collection": collection,
            "metadata": metadata,
            "files": [[f.name, f.digest] for f in form.files],
            "callbacks": urls,
        }
        return (
            (lambda: _ingest_uploads(request, docs, form.files, collection, metadata, hook)),
            asked,
            form,
        )
    if media == "application/json" or media.endswith("+json"):
        raw = await read_json(request, cap + FORM_OVERHEAD)
        try:
            body = SourceBody.model_validate(raw)
        except ValidationError as exc:
            raise _invalid(exc, "body") from None
        asked = body.model_dump(mode="json")
        asked["collection"] = _collection(body.collection, docs)
        hook = document_callbacks(runtime, body.callbacks)
        return (lambda: _ingest_json(request, docs, body, hook)), asked, None
    raise ApiError(
        415,
        "unsupported_media_type",
        "send multipart/form-data (files) or application/json (url, text, path)",
    )


def _form_fields(fields: dict[str, str], docs: Documents) -> tuple[str, dict[str, Any]]:
    unknown = sorted(set(fields) - {"collection", "metadata", "callbacks"})
    if unknown:
        raise ApiError(
            422, "invalid_request", f"unknown form field {unknown[0]!r} (collection, metadata, callbacks)"
        )
    metadata: Any = {}
    if fields.get("metadata", "").strip():
        try:
            metadata = json.loads(fields["metadata"])
        except ValueError:
            raise ApiError(422, "invalid_request", "metadata: not JSON") from None
        if not isinstance(metadata, dict):
            raise ApiError(422, "invalid_request", "metadata: must be a JSON object")
    return _collection(fields.get("collection"), docs), metadata


async def _ingest_uploads(
    request: Request,
    docs: Documents,
    files: Sequence[FilePart],
    collection: str,
    metadata: dict[str, Any],
    hook: BeforeEnqueue | None = None,
) -> list[Accepted]:
    out: list[Accepted] = []
    seen: dict[str, Accepted] = {}  # the same bytes twice in one request: one document
    for part in files:
        if part.digest in seen:
            out.append(seen[part.digest].model_copy(update={"duplicate": True}))
            continue
        found = await _existing(request, docs, collection, part.digest)
        if found is None:
            (ingested,) = await docs.ingest(
                uploads=[(part.name, part.file)],
                collection=collection,
                metadata=metadata,
                before_enqueue=hook,
            )
            found = _accepted_one(request, ingested.document, ingested.job, duplicate=False)
        seen[part.digest] = found
        out.append(found)
    return out


async def _ingest_json(
    request: Request, docs: Documents, body: SourceBody, hook: BeforeEnqueue | None
) -> list[Accepted]:
    collection = _collection(body.collection, docs)
    if body.text is not None:
        data = body.text.encode()
        if len(data) > docs.settings.upload_max_bytes:
            raise too_large("text", docs.settings.upload_max_bytes)
        name = safe_name(body.title or "text")
        if not name.lower().endswith(_TEXT_SUFFIXES):
            name += ".md"
        part = FilePart(name)
        with part.file:
            part.write(data)
            return await _ingest_uploads(request, docs, [part], collection, body.metadata, hook)
    if body.path is not None:
        roots = docs.settings.ingest_path_roots
        if not roots:  # unset or empty: the service ingests no paths (docs/security.md)
            raise ApiError(
                403,
                "paths_disabled",
                "path ingestion is off on this service (INGESTQ_INGEST_PATH_ROOTS); upload the file instead",
            )
        ingested = await docs.ingest(
            [body.path], collection=collection, metadata=body.metadata, before_enqueue=hook
        )
    else:
        assert body.url is not None
        ingested = await docs.ingest(
            [body.url], collection=collection, metadata=body.metadata, before_enqueue=hook
        )
    return [_accepted_one(request, i.document, i.job, duplicate=False) for i in ingested]


async def _existing(request: Request, docs: Documents, collection: str, digest: str) -> Accepted | None:
    """The document of `collection` that already holds these bytes, with its latest job, if any.

    None for a pending document without any job: an earlier request registered it and then failed
    before its job was queued (the process died, the database went away, a callback could not be
    registered). Ingesting it again queues the job it never got, instead of answering `pending`
    for a document that no worker will ever take."""
    doc = await docs.store.document_by_content(collection, digest)
    if doc is None:
        return None
    jobs = await _jobs_of(docs.client, collection, doc.id, None)
    if not jobs and doc.status is DocumentStatus.PENDING:
        return None
    return _accepted_one(request, doc, jobs[0] if jobs else None, duplicate=True)


def _accepted_one(request: Request, doc: Document, job: Job | None, *, duplicate: bool) -> Accepted:
    return Accepted(
        document_id=doc.id,
        collection=doc.collection,
        job_id=job.id if job is not None else None,
        status=doc.status.value,
        duplicate=duplicate,
        location=location(request, doc.collection, doc.id),
    )


def _accepted(accepted: list[Accepted]) -> JSONResponse:
    batch = AcceptedBatch(documents=accepted)
    headers: dict[str, str] = {}
    if len(accepted) == 1:
        (one,) = accepted
        batch = batch.model_copy(
            update={
                "document_id": one.document_id,
                "collection": one.collection,
                "job_id": one.job_id,
                "status": one.status,
                "duplicate": one.duplicate,
            }
        )
        headers["Location"] = one.location
    status = 200 if accepted and all(a.duplicate for a in accepted) else 202
    return JSONResponse(batch.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


# --- list, get ----------------------------------------------------------------------------------------


@router.get(
    "/documents",
    summary="Documents by id, keyset-paginated: pass next_after as after (and next_after_collection as "
    "after_collection)",
    response_model=DocumentPage,
    dependencies=[Reader],
)
async def list_documents(
    request: Request,
    runtime: IngestqRuntime,
    collection: Annotated[str | None, Query(description=COLLECTION_RULE)] = None,
    status: DocumentStatus | None = None,
    after: Annotated[str | None, Query(description="the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_collection: Annotated[
        str | None, Query(description="the last collection of the previous page")
    ] = None,
) -> DocumentPage:
    docs = documents_of(request, runtime)
    name = _collection(collection, docs) if collection is not None else None
    found = await docs.list(name, status, after, limit, after_collection if name is None else None)
    last = found[-1] if len(found) == limit else None
    return DocumentPage(
        documents=[DocumentView.of(d, location(request, d.collection, d.id)) for d in found],
        next_after=last.id if last is not None else None,
        next_after_collection=last.collection if last is not None and name is None else None,
    )


async def _jobs_of(
    client: Client, collection: str, document_id: str, states: tuple[JobState, ...] | None
) -> list[Job]:
    """Ingestion jobs of the document, newest first."""
    flt = JobFilter(states=states, kinds=(INGEST_KIND,), document_id=document_id, limit=50)
    jobs = await client.list(flt)
    return [j for j in jobs if j.payload.get("collection") == collection]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 3)


def _timings(job: Job, now: datetime) -> Timings:
    result = job.result if isinstance(job.result, dict) else {}
    stages = result.get("stage_seconds")
    end = job.finished_at or (now if job.state is JobState.RUNNING else None)
    return Timings(
        queued_seconds=_seconds(job.created_at, job.started_at),
        run_seconds=_seconds(job.started_at, end),
        stages={str(k): float(v) for k, v in stages.items()} if isinstance(stages, dict) else {},
    )


@router.get(
    "/documents/{collection}/{document_id:path}",
    responses=_errors(404),
    summary="One document: status, version, its latest job, timings per stage, tokens, last error",
    response_model=DocumentDetail,
    response_model_exclude_none=False,
    dependencies=[Reader],
)
async def get_document(
    request: Request,
    runtime: IngestqRuntime,
    collection: str,
    document_id: str,
    chunks: Annotated[bool, Query(description="include the current version's chunks")] = False,
) -> DocumentDetail:
    docs = documents_of(request, runtime)
    doc = await docs.get(document_id, _collection(collection, docs))
    jobs = await _jobs_of(runtime.client, doc.collection, doc.id, None)
    job = jobs[0] if jobs else None
    # a status poll reads the token sum only; the chunks (their text) only when asked for
    records = await docs.store.document_chunks(doc.collection, doc.id) if chunks else None
    indexed = (
        sum(c.token_count for c in records)
        if records is not None
        else await docs.store.document_token_count(doc.collection, doc.id)
    )
    result = job.result if job is not None and isinstance(job.result, dict) else {}
    embedded = result.get("embedded_tokens")
    return DocumentDetail(
        **DocumentView.of(doc, location(request, doc.collection, doc.id)).model_dump(),
        job=JobView.of(job) if job is not None else None,
        last_error=doc.error or (job.last_error if job is not None else None),
        timings=_timings(job, runtime.client.clock.now()) if job is not None else None,
        tokens=Tokens(
            indexed=indexed,
            embedded=int(embedded) if isinstance(embedded, int) else None,
        ),
        chunks=[ChunkView.of(c) for c in records] if records is not None else None,
    )


# --- delete, reprocess --------------------------------------------------------------------------------


@router.post(
    "/documents/{collection}/{document_id:path}/reprocess",
    responses=_errors(403, 404),
    summary="Queue the document again from its stored source (its current version stays searchable)",
    status_code=202,
    response_model=Reprocessed,
    dependencies=[Admin],
)
async def reprocess_document(
    request: Request, runtime: IngestqRuntime, collection: str, document_id: str
) -> JSONResponse:
    docs = documents_of(request, runtime)
    name = _collection(collection, docs)
    (job,) = await docs.reprocess([document_id], name)
    doc = await docs.get(document_id, name)
    where = location(request, name, document_id)
    body = Reprocessed(
        document_id=doc.id, collection=name, job_id=job.id, status=doc.status.value, location=where
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": where})


@router.delete(
    "/documents/{collection}/{document_id:path}",
    responses=_errors(403, 404),
    summary="Delete the document, its chunks and vectors, in any state; a live ingestion job is cancelled",
    dependencies=[Admin],
)
async def delete_document(
    request: Request, runtime: IngestqRuntime, collection: str, document_id: str
) -> dict[str, Any]:
    docs = documents_of(request, runtime)
    name = _collection(collection, docs)
    await docs.get(document_id, name)  # 404 before touching any job
    cancelled, running = [], []
    for job in await _jobs_of(runtime.client, name, document_id, (JobState.QUEUED, JobState.RUNNING)):
        if (await runtime.client.cancel(job.id)).state is JobState.RUNNING:
            running.append(job.id)
        cancelled.append(job.id)
    # A running job stops at its next stage boundary once its worker hears of the cancel (at its next
    # heartbeat), but one that reaches its commit first would write the document back: wait for it to
    # end (a lease at most), then delete.
    still_running = await _wait_finished(runtime.client, running, runtime.settings.lease_seconds)
    await docs.delete(document_id, name)
    return {
        "document_id": document_id,
        "collection": name,
        "deleted": True,
        "cancelled_jobs": cancelled,
        "still_running": still_running,
    }


async def _wait_finished(client: Client, job_ids: list[int], seconds: float) -> list[int]:
    """The jobs of `job_ids` still running after `seconds` (polled)."""
    deadline = asyncio.get_running_loop().time() + seconds
    waiting = list(job_ids)
    while waiting:
        waiting = [j for j in waiting if (await client.get(j)).state is JobState.RUNNING]
        if not waiting or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.1)
    return waiting


# --- search -------------------------------------------------------------------------------------------


async def _search(request: Request, runtime: Runtime, body: SearchBody) -> SearchResult:
    docs = documents_of(request, runtime)
    name = _collection(body.collection, docs)
    if await docs.store.collection_get(name) is None:
        raise ApiError(
            404, "not_found", f"collection {name!r} does not exist (ingest something into it first)"
        )
    hits = await docs.search(body.query, body.k, name, body.metadata, body.mode)
    return SearchResult(
        query=body.query,
        collection=name,
        mode=body.mode,
        hits=[HitView.of(h, location(request, h.collection, h.document_id)) for h in hits],
    )


@router.post(
    "/search",
    responses=_errors(404, 409),
    summary="Search a collection: hits with title, heading path, page, score and text",
    response_model=SearchResult,
    dependencies=[Reader],
)
async def search_post(request: Request, runtime: IngestqRuntime, body: SearchBody) -> SearchResult:
    return await _search(request, runtime, body)


@router.get(
    "/search",
    responses=_errors(404, 409),
    summary="Search a collection (query string; metadata as a JSON object)",
    response_model=SearchResult,
    dependencies=[Reader],
)
async def search_get(
    request: Request,
    runtime: IngestqRuntime,
    q: Annotated[str, Query(min_length=1, max_length=10_000, description="the query")],
    collection: str | None = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    mode: str = "hybrid",
    metadata: Annotated[
        str | None, Query(description='equality filters, a JSON object: {"lang": "en"}')
    ] = None,
) -> SearchResult:
    try:
        filters = json.loads(metadata) if metadata else {}
        body = SearchBody(query=q, collection=collection, k=k, mode=mode, metadata=filters)  # type: ignore[arg-type]
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise _invalid(exc, "query") from None
        raise ApiError(422, "invalid_request", "metadata: not JSON") from None
    return await _search(request, runtime, body)
