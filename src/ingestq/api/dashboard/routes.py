"""The dashboard's pages: server-rendered HTML from the Client and Documents, called in-process.

GET pages render; every POST changes something and passes `_guard` first (a session, the admin role,
not read-only, the CSRF token, the same origin), then redirects back (post/redirect/get) with a notice
chosen from a fixed table, never text taken from the request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ingestq.api.auth import Role
from ingestq.api.dashboard.live import stream_for_tab, unauthorized
from ingestq.api.dashboard.render import SECURITY_HEADERS, STATIC, STATIC_FILES, environment, first_line
from ingestq.api.dashboard.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    Signer,
    cookie_attributes,
    csrf_matches,
    loopback_host,
    same_origin,
)
from ingestq.api.dashboard.throughput import throughput
from ingestq.api.dashboard.timeline import stage_timeline
from ingestq.api.state import ServiceState, client_address, service_state
from ingestq.api.uploads import safe_name
from ingestq.client.client import Client
from ingestq.client.documents import DocumentNotFound, Documents
from ingestq.errors import IngestqError, InvalidJobState, JobNotFound
from ingestq.model.document import DocumentStatus
from ingestq.model.job import FINISHED_STATES, Job, JobFilter, JobState

PAGE_SIZE = 50
BULK_CAP = 10_000  # most jobs one bulk action touches (the preview says so when more match)
FAILURE_SCAN = 2_000  # failed jobs read to group by reason
POLL_SECONDS = 3

RETRYABLE = (JobState.FAILED, JobState.CANCELLED)
CANCELLABLE = (JobState.QUEUED, JobState.RUNNING)
ACTIONS: dict[str, tuple[JobState, ...]] = {"retry": RETRYABLE, "cancel": CANCELLABLE}

NOTICES = {
    "retried": "Retried {n} job(s).",
    "cancelled": "Cancel requested for {n} job(s).",
    "skipped": "Nothing done: {n} job(s) were not in a state that allows it.",
    "none": "No job was selected.",
    "reprocessed": "Document queued for reprocessing.",
    "deleted": "Document deleted.",
    "uploaded": "Uploaded: the document is pending until a worker has indexed it.",
    "signedout": "Signed out.",
    "queue": "Queue limit saved.",
    "paused": "Queue paused: workers stop claiming its jobs at their next heartbeat.",
    "resumed": "Queue resumed: workers claim its jobs again from their next heartbeat.",
    "purged": "Purged {n} finished job(s).",
    "purgedfewer": "Purged {n} finished job(s): fewer than counted (some were retried or removed meanwhile).",
}

_templates = environment()


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class DashboardRoute(APIRoute):
    """Adds the security headers to every answer and turns refusals and errors into HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except _Redirect as exc:
                response = _redirect_for(request, exc.location)
            except _Refused as exc:
                response = _error_page(request, exc.status, exc.message)
            except (JobNotFound, DocumentNotFound) as exc:
                response = _error_page(request, 404, str(exc))
            except InvalidJobState as exc:
                response = _error_page(request, 409, str(exc))
            except IngestqError as exc:
                response = _error_page(request, 400, str(exc))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return guarded


dashboard_router = APIRouter(prefix="/dashboard", route_class=DashboardRoute, include_in_schema=False)


@dataclass
class _DashboardState:
    service: ServiceState
    signer: Signer
    documents: Documents


def _state(request: Request) -> _DashboardState:
    service = service_state(request)
    found: _DashboardState | None = getattr(request.app.state, "ingestq_dashboard", None)
    if found is None or found.service is not service:
        runtime = service.runtime
        found = _DashboardState(
            service, Signer.for_tokens(service.tokens), Documents(runtime.client, runtime.settings)
        )
        request.app.state.ingestq_dashboard = found
    return found


def _base(request: Request) -> str:
    return urlsplit(str(request.url_for("dashboard_overview"))).path.rstrip("/")


@dataclass
class Viewer:
    """Who looks at the page: their session (its CSRF token) and whether they may act."""

    session: Session
    read_only: bool
    signed_in: bool  # False without tokens: nobody signs in, there is no sign-out
    new_cookie: str | None = None
    base: str = "/dashboard"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def can_act(self) -> bool:
        return self.session.role >= Role.ADMIN and not self.read_only


def _viewer(request: Request) -> Viewer:
    state = _state(request)
    tokens = state.service.tokens
    base = _base(request)
    read_only = state.service.runtime.settings.dashboard_read_only
    if tokens.open and not loopback_host(request):
        raise _Refused(403, "Without INGESTQ_API_TOKENS the dashboard answers on a loopback address only.")
    session = state.signer.verify(request.cookies.get(COOKIE))
    if session is not None:
        return Viewer(session, read_only, not tokens.open, base=base)
    if tokens.open:
        cookie, session = state.signer.issue(Role.ADMIN)
        return Viewer(session, read_only, False, new_cookie=cookie, base=base)
    raise _Redirect(base + "/login")


def _redirect_for(request: Request, location: str) -> Response:
    if request.headers.get("hx-request"):  # an htmx fragment whose session ended: the whole page moves
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _render(
    request: Request, name: str, viewer: Viewer | None, http_status: int = 200, **context: Any
) -> Response:
    base = viewer.base if viewer is not None else _base(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    if notice is not None:
        count = request.query_params.get("n", "0")
        notice = notice.format(n=int(count) if count.isdigit() else 0)
    html = _templates.get_template(name).render(
        request_path=request.url.path,
        base=base,
        viewer=viewer,
        notice=notice,
        poll_seconds=POLL_SECONDS,
        csrf_field=CSRF_FIELD,
        **context,
    )
    response = HTMLResponse(html, status_code=http_status)
    if viewer is not None and viewer.new_cookie is not None:
        response.set_cookie(COOKIE, viewer.new_cookie, max_age=12 * 3600, **_cookie_kwargs(request, base))
    return response


def _cookie_kwargs(request: Request, base: str) -> dict[str, Any]:
    attributes = cookie_attributes(request)
    attributes["path"] = base or "/"
    return attributes


def _error_page(request: Request, status: int, message: str) -> Response:
    try:
        base = _base(request)
    except Exception:
        base = "/dashboard"
    html = _templates.get_template("error.html").render(
        base=base,
        viewer=None,
        notice=None,
        status=status,
        message=message,
        request_path=request.url.path,
        poll_seconds=POLL_SECONDS,
        csrf_field=CSRF_FIELD,
    )
    return HTMLResponse(html, status_code=status)


async def _guard(request: Request) -> tuple[Viewer, FormData]:
    """What every POST passes: the same origin, a session, the CSRF token, the right to act."""
    if not same_origin(request):
        raise _Refused(403, "Refused: this request did not come from the dashboard's own pages.")
    try:
        viewer = _viewer(request)
    except _Redirect:
        raise _Refused(403, "Refused: sign in first.") from None
    if viewer.new_cookie is not None:  # no session yet: there cannot be a CSRF token either
        raise _Refused(403, "Refused: the form's CSRF token is missing or stale; reload the page.")
    if not viewer.can_act:
        raise _Refused(403, "Refused: this dashboard is read-only for you.")
    # The body is read only once the cookie checks passed (an upload is spooled to disk, not memory).
    form = await request.form(max_files=1, max_fields=2 * BULK_CAP)
    presented = request.headers.get(CSRF_HEADER) or _text(form, CSRF_FIELD)
    if not csrf_matches(viewer.session, presented):
        raise _Refused(403, "Refused: the form's CSRF token is missing or stale; reload the page.")
    return viewer, form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _client(request: Request) -> Client:
    return service_state(request).runtime.client


# --- sign-in ------------------------------------------------------------------------------------------


@dashboard_router.get("/login", name="dashboard_login")
async def login_page(request: Request) -> Response:
    state = _state(request)
    if state.service.tokens.open:
        raise _Redirect(_base(request) + "/")
    return _render(request, "login.html", None, error=None)


@dashboard_router.post("/login")
async def login(request: Request) -> Response:
    if not same_origin(request):
        raise _Refused(403, "Refused: this request did not come from the dashboard's own pages.")
    state = _state(request)
    base = _base(request)
    form = await request.form()
    presented = _text(form, "token").strip() or None
    address = client_address(request)
    failures = state.service.failures
    if presented is not None and (wait := failures.retry_after(address)) is not None:
        error = f"Too many wrong tokens from this address: try again in {wait} s."
        page = _render(request, "login.html", None, http_status=429, error=error)
        page.headers["Retry-After"] = str(wait)
        return page
    role = state.service.tokens.role_of(presented)
    if role is None or state.service.tokens.open:
        if presented is not None:
            failures.failed(address)
        return _render(request, "login.html", None, http_status=401, error="That token is not valid.")
    cookie, _ = state.signer.issue(role)
    response = RedirectResponse(base + "/", status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=12 * 3600, **_cookie_kwargs(request, base))
    return response


@dashboard_router.post("/logout")
async def logout(request: Request) -> Response:
    if not same_origin(request):
        raise _Refused(403, "Refused: this request did not come from the dashboard's own pages.")
    state = _state(request)
    form = await request.form()
    session = state.signer.verify(request.cookies.get(COOKIE))
    if session is None or not csrf_matches(session, _text(form, CSRF_FIELD)):
        raise _Refused(403, "Refused: the form's CSRF token is missing or stale; reload the page.")
    base = _base(request)
    response = RedirectResponse(base + "/login?notice=signedout", status_code=303)
    response.delete_cookie(COOKIE, **_cookie_kwargs(request, base))
    return response


# --- static files -------------------------------------------------------------------------------------


@dashboard_router.get("/static/{name}", name="dashboard_static")
async def static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (STATIC / name).read_bytes()
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})


# --- overview -----------------------------------------------------------------------------------------


async def _overview(request: Request) -> dict[str, Any]:
    client = _client(request)
    stats = sorted(await client.stats(), key=lambda s: s.queue)
    now = client.clock.now()
    workers = sorted((w for w in await client.workers() if w.alive(now)), key=lambda w: w.worker_id)
    totals = {state: sum(s.counts.get(state, 0) for s in stats) for state in JobState}
    oldest = max((s.oldest_queued_age for s in stats if s.oldest_queued_age is not None), default=None)
    documents: dict[DocumentStatus, int] | None = None
    with contextlib.suppress(IngestqError):
        documents = await _state(request).documents.counts()
    return {
        "states": list(JobState),
        "stats": stats,
        "totals": totals,
        "oldest": oldest,
        "tp": await throughput(client),
        "workers": workers,
        "running": sum(w.running for w in workers),
        "capacity": sum(w.concurrency for w in workers),
        "documents": documents,
        "document_states": list(DocumentStatus),
    }


@dashboard_router.get("/", name="dashboard_overview")
async def overview(request: Request) -> Response:
    viewer = _viewer(request)
    return _render(request, "overview.html", viewer, page="overview", **await _overview(request))


@dashboard_router.get("/fragments/overview")
async def overview_fragment(request: Request) -> Response:
    viewer = _viewer(request)
    return _render(request, "_overview_live.html", viewer, **await _overview(request))


# --- jobs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _JobQuery:
    state: JobState | None
    queue: str
    kind: str

    @classmethod
    def of(cls, params: Any) -> _JobQuery:
        raw = str(params.get("state") or "")
        state = JobState(raw) if raw in JobState.__members__.values() else None
        return cls(state, str(params.get("queue") or "").strip(), str(params.get("kind") or "").strip())

    def filter(self, states: tuple[JobState, ...] | None = None, **more: Any) -> JobFilter:
        chosen: tuple[JobState, ...] | None = (self.state,) if self.state else None
        if states is not None:
            chosen = tuple(s for s in (chosen or states) if s in states)
        return JobFilter(
            states=chosen,
            queues=(self.queue,) if self.queue else None,
            kinds=(self.kind,) if self.kind else None,
            **more,
        )

    def query(self) -> str:
        pairs = {"state": self.state.value if self.state else "", "queue": self.queue, "kind": self.kind}
        return urlencode({k: v for k, v in pairs.items() if v})


@dashboard_router.get("/jobs", name="dashboard_jobs")
async def jobs_page(request: Request) -> Response:
    viewer = _viewer(request)
    query = _JobQuery.of(request.query_params)
    before = request.query_params.get("before", "")
    before_id = int(before) if before.isdigit() else None
    jobs = await _client(request).list(query.filter(before_id=before_id, limit=PAGE_SIZE))
    next_before = jobs[-1].id if len(jobs) == PAGE_SIZE else None
    queues = sorted({s.queue for s in await _client(request).stats()})
    return _render(
        request,
        "jobs.html",
        viewer,
        page="jobs",
        jobs=jobs,
        query=query,
        states=list(JobState),
        queues=queues,
        next_before=next_before,
        first_page=before_id is None,
        retryable=RETRYABLE,
        cancellable=CANCELLABLE,
    )


async def _matching(client: Client, flt: JobFilter, upto: int | None = None) -> tuple[list[int], bool]:
    """The ids matching `flt` (newest first, only ids <= `upto`), at most BULK_CAP; and whether more match."""
    ids: list[int] = []
    before = None if upto is None else upto + 1
    while True:
        page = await client.list(JobFilter(flt.states, flt.queues, flt.kinds, None, before, 500))
        ids.extend(job.id for job in page)
        if len(ids) > BULK_CAP:
            return ids[:BULK_CAP], True
        if len(page) < 500:
            return ids, False
        before = page[-1].id


@dashboard_router.get("/jobs/bulk", name="dashboard_bulk_preview")
async def bulk_preview(request: Request) -> Response:
    viewer = _viewer(request)
    action = request.query_params.get("action", "")
    if action not in ACTIONS:
        raise _Refused(400, "Unknown bulk action.")
    query = _JobQuery.of(request.query_params)
    ids, more = await _matching(_client(request), query.filter(ACTIONS[action]))
    return _render(
        request,
        "bulk.html",
        viewer,
        page="jobs",
        action=action,
        query=query,
        count=len(ids),
        more=more,
        cap=BULK_CAP,
        upto=ids[0] if ids else 0,
        states=ACTIONS[action],
    )


async def _apply(client: Client, action: str, ids: list[int]) -> tuple[int, int]:
    done = skipped = 0
    for job_id in ids:
        try:
            if action == "retry":
                await client.retry(job_id)
            else:
                await client.cancel(job_id)
            done += 1
        except (InvalidJobState, JobNotFound):
            skipped += 1
    return done, skipped


def _notice_after(action: str, done: int, skipped: int) -> str:
    if done == 0:
        return f"notice=skipped&n={skipped}" if skipped else "notice=none"
    return f"notice={'retried' if action == 'retry' else 'cancelled'}&n={done}"


@dashboard_router.post("/jobs/bulk")
async def bulk_apply(request: Request) -> Response:
    viewer, form = await _guard(request)
    action = _text(form, "action")
    if action not in ACTIONS:
        raise _Refused(400, "Unknown bulk action.")
    query = _JobQuery.of(form)
    upto = _text(form, "upto")
    if not upto.isdigit() or int(upto) == 0:
        raise _Redirect(f"{viewer.base}/jobs?{query.query()}&notice=none")
    client = _client(request)
    # Only what the preview counted: the same filter, no job newer than the newest it saw.
    ids, _ = await _matching(client, query.filter(ACTIONS[action]), int(upto))
    done, skipped = await _apply(client, action, ids)
    raise _Redirect(f"{viewer.base}/jobs?{query.query()}&{_notice_after(action, done, skipped)}")


@dashboard_router.post("/jobs/action")
async def jobs_action(request: Request) -> Response:
    """The jobs page's form: one row's button (`one=retry:ID`) or the selected rows (`ids`, `action`)."""
    viewer, form = await _guard(request)
    one = _text(form, "one")
    if one:
        action, _, raw = one.partition(":")
        ids = [int(raw)] if raw.isdigit() else []
    else:
        action = _text(form, "action")
        ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()]
    if action not in ACTIONS:
        raise _Refused(400, "Unknown action.")
    done, skipped = await _apply(_client(request), action, ids[:BULK_CAP])
    back = _text(form, "back")
    target = back if back.startswith(viewer.base + "/") and "//" not in back else f"{viewer.base}/jobs"
    sep = "&" if "?" in target else "?"
    raise _Redirect(f"{target}{sep}{_notice_after(action, done, skipped)}")


@dashboard_router.get("/jobs/{job_id}", name="dashboard_job")
async def job_page(request: Request, job_id: int) -> Response:
    viewer = _viewer(request)
    return _render(request, "job.html", viewer, page="jobs", **await _job_context(request, job_id))


@dashboard_router.get("/jobs/{job_id}/live")
async def job_fragment(request: Request, job_id: int) -> Response:
    viewer = _viewer(request)
    return _render(request, "_job_live.html", viewer, **await _job_context(request, job_id))


async def _job_context(request: Request, job_id: int) -> dict[str, Any]:
    client = _client(request)
    job = await client.get(job_id)
    position = await client.position(job_id) if job.state is JobState.QUEUED else None
    return {
        "job": job,
        "position": position,
        "finished": job.state in FINISHED_STATES,
        "retryable": RETRYABLE,
        "cancellable": CANCELLABLE,
    }


# --- queues -------------------------------------------------------------------------------------------


@dashboard_router.get("/queues", name="dashboard_queues")
async def queues_page(request: Request) -> Response:
    viewer = _viewer(request)
    client = _client(request)
    stats = {s.queue: s for s in await client.stats()}
    configs = {q.name: q for q in await client.queues()}
    names = sorted(set(stats) | set(configs))
    rows = []
    for name in names:
        counts = stats[name].counts if name in stats else {}
        depth = counts.get(JobState.QUEUED, 0) + counts.get(JobState.RUNNING, 0)
        config = configs.get(name)
        rows.append(
            {
                "name": name,
                "depth": depth,
                "max_depth": config.max_depth if config else None,
                "paused_at": config.paused_at if config else None,
                "stats": stats.get(name),
            }
        )
    return _render(request, "queues.html", viewer, page="queues", rows=rows)


@dashboard_router.post("/queues/pause")
async def queue_pause(request: Request) -> Response:
    viewer, form = await _guard(request)
    action = _text(form, "action")
    if action not in ("pause", "resume"):
        raise _Refused(400, "Unknown action: pause or resume a queue.")
    name = _text(form, "queue")
    if not name:
        raise _Refused(400, "Which queue? The form named none.")
    client = _client(request)
    await (client.pause_queue(name) if action == "pause" else client.resume_queue(name))
    raise _Redirect(f"{viewer.base}/queues?notice={'paused' if action == 'pause' else 'resumed'}")


@dashboard_router.post("/queues/max-depth")
async def queue_max_depth(request: Request) -> Response:
    viewer, form = await _guard(request)
    raw = _text(form, "max_depth").strip()
    if raw and not raw.isdigit():
        raise _Refused(400, "The maximum depth is a whole number of jobs, or empty for no limit.")
    await _client(request).configure_queue(_text(form, "queue"), int(raw) if raw else None)
    raise _Redirect(f"{viewer.base}/queues?notice=queue")


# --- failures -----------------------------------------------------------------------------------------


@dataclass
class _Reason:
    reason: str
    count: int = 0
    kinds: set[str] = field(default_factory=set)
    newest: Job | None = None


@dashboard_router.get("/failures", name="dashboard_failures")
async def failures_page(request: Request) -> Response:
    viewer = _viewer(request)
    client = _client(request)
    groups: dict[str, _Reason] = {}
    scanned = 0
    before: int | None = None
    while scanned < FAILURE_SCAN:
        page = await client.list(JobFilter(states=(JobState.FAILED,), before_id=before, limit=500))
        for job in page:
            reason = first_line(job.last_error) or "(no message)"
            group = groups.setdefault(reason, _Reason(reason))
            group.count += 1
            group.kinds.add(job.kind)
            group.newest = group.newest or job
        scanned += len(page)
        if len(page) < 500:
            break
        before = page[-1].id
    documents = _state(request).documents
    quarantined, failed_docs = [], []
    with contextlib.suppress(IngestqError):
        quarantined = await documents.list(status=DocumentStatus.QUARANTINED, limit=100)
        failed_docs = await documents.list(status=DocumentStatus.FAILED, limit=100)
    return _render(
        request,
        "failures.html",
        viewer,
        page="failures",
        groups=sorted(groups.values(), key=lambda g: -g.count),
        scanned=scanned,
        capped=scanned >= FAILURE_SCAN,
        quarantined=quarantined,
        failed_docs=failed_docs,
    )


# --- documents and search -----------------------------------------------------------------------------


@dashboard_router.get("/documents", name="dashboard_documents")
async def documents_page(request: Request) -> Response:
    viewer = _viewer(request)
    params = request.query_params
    collection = (params.get("collection") or "").strip() or None
    raw = params.get("status") or ""
    status = DocumentStatus(raw) if raw in DocumentStatus.__members__.values() else None
    after = params.get("after") or None
    documents = _state(request).documents
    docs = await documents.list(collection, status, after, PAGE_SIZE)
    next_after = docs[-1].id if len(docs) == PAGE_SIZE else None
    return _render(
        request,
        "documents.html",
        viewer,
        page="documents",
        docs=docs,
        collection=collection or "",
        status=status,
        statuses=list(DocumentStatus),
        next_after=next_after,
        more_query=urlencode(
            {k: v for k, v in {"collection": collection, "status": raw, "after": next_after}.items() if v}
        ),
    )


async def _document_context(request: Request) -> dict[str, Any]:
    collection = request.query_params.get("collection") or None
    document_id = request.query_params.get("id") or ""
    documents = _state(request).documents
    doc = await documents.get(document_id, collection)
    chunks = await documents.chunks(doc.id, doc.collection)
    jobs = await _client(request).list(JobFilter(document_id=doc.id, limit=20))
    return {
        "doc": doc,
        "chunks": chunks[:100],
        "chunk_total": len(chunks),
        "jobs": jobs,
        "timeline": stage_timeline(jobs),
        "pending": doc.status is DocumentStatus.PENDING,
        "self_query": urlencode({"collection": doc.collection, "id": doc.id}),
    }


@dashboard_router.get("/document", name="dashboard_document")
async def document_page(request: Request) -> Response:
    viewer = _viewer(request)
    return _render(request, "document.html", viewer, page="documents", **await _document_context(request))


@dashboard_router.get("/document/live")
async def document_fragment(request: Request) -> Response:
    viewer = _viewer(request)
    return _render(request, "_document_live.html", viewer, **await _document_context(request))


@dashboard_router.post("/documents/upload")
async def document_upload(request: Request) -> Response:
    viewer, form = await _guard(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise _Refused(400, "Choose a file to upload.")
    limit = service_state(request).runtime.settings.upload_max_bytes
    size = upload.size if upload.size is not None else upload.file.seek(0, 2)
    if size > limit:  # Starlette spooled it to a temporary file; the store streams it in from there
        raise _Refused(413, f"The file is larger than the {limit} byte upload limit.")
    name = safe_name(upload.filename)  # a display name only, never a path (api/uploads.py)
    collection = _text(form, "collection").strip() or None
    (ingested,) = await _state(request).documents.ingest(uploads=[(name, upload.file)], collection=collection)
    doc = ingested.document
    query = urlencode({"collection": doc.collection, "id": doc.id})
    raise _Redirect(f"{viewer.base}/document?{query}&notice=uploaded")


@dashboard_router.post("/document/reprocess")
async def document_reprocess(request: Request) -> Response:
    viewer, form = await _guard(request)
    collection, document_id = _text(form, "collection"), _text(form, "id")
    await _state(request).documents.reprocess([document_id], collection or None)
    query = urlencode({"collection": collection, "id": document_id})
    raise _Redirect(f"{viewer.base}/document?{query}&notice=reprocessed")


@dashboard_router.post("/document/delete")
async def document_delete(request: Request) -> Response:
    viewer, form = await _guard(request)
    await _state(request).documents.delete(_text(form, "id"), _text(form, "collection") or None)
    raise _Redirect(f"{viewer.base}/documents?notice=deleted")


@dashboard_router.get("/search", name="dashboard_search")
async def search_page(request: Request) -> Response:
    viewer = _viewer(request)
    q = (request.query_params.get("q") or "").strip()
    collection = (request.query_params.get("collection") or "").strip() or None
    hits: list[Any] = []
    error = None
    if q:
        try:
            hits = await _state(request).documents.search(q, k=20, collection=collection)
        except IngestqError as exc:
            error = str(exc)
    return _render(
        request,
        "search.html",
        viewer,
        page="search",
        q=q,
        collection=collection or "",
        hits=hits,
        error=error,
    )


@dashboard_router.get("/events", name="dashboard_events")
async def dashboard_events(request: Request) -> Response:
    """The tab's one event stream (live.py)."""
    try:
        _viewer(request)
    except _Redirect:
        return unauthorized()
    return await stream_for_tab(request)


# Last: any other path under the dashboard is a 404 page with the same headers (not the API's JSON).
@dashboard_router.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    return _error_page(request, 404, "No such page.")
