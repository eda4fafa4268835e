"""Jobs → "Purge old": delete finished jobs older than N hours or days, by state and queue, after a dry
run that shows how many.

The preview fixes an absolute cutoff (now − age) and counts with the store's `job_purge_count`, which
is `job_purge`'s own WHERE; the confirm form carries that cutoff, so the purge deletes exactly the jobs
counted: a job finishing later has a newer `finished_at`, so none can join the set in between (a job
retried or removed meanwhile leaves it, and the notice then says fewer were purged). POST passes the
dashboard's guard (same origin, session, admin role, not read-only, CSRF)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingestq.api.dashboard.routes import (
    DashboardRoute,
    _client,
    _guard,
    _Redirect,
    _Refused,
    _render,
    _text,
    _viewer,
)
from ingestq.model.job import JobState

purge_router = APIRouter(prefix="/dashboard", route_class=DashboardRoute, include_in_schema=False)

PURGEABLE = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
UNITS = {"hours": 3600, "days": 86400}
MAX_AGE_HOURS = 10 * 366 * 24  # ten years: anything larger is a typo


@dataclass(frozen=True)
class PurgeScope:
    states: tuple[JobState, ...]
    queue: str
    age: int
    unit: str

    @classmethod
    def of(cls, params: Any, defaults: bool) -> PurgeScope:
        """From the query string or the form; `defaults` (a first visit): every finished state, 7 days."""
        chosen = [str(v) for v in params.getlist("state")]
        states = tuple(s for s in PURGEABLE if s.value in chosen)
        raw_age = str(params.get("age") or "").strip()
        unit = str(params.get("unit") or "days")
        if unit not in UNITS:
            raise _Refused(400, "The age unit is hours or days.")
        if defaults and not raw_age and not chosen:
            return cls(PURGEABLE, "", 7, "days")
        if not raw_age.isdigit() or int(raw_age) * UNITS[unit] > MAX_AGE_HOURS * 3600:
            raise _Refused(400, "The age is a whole number of hours or days (at most ten years).")
        return cls(states, str(params.get("queue") or "").strip(), int(raw_age), unit)

    @property
    def seconds(self) -> int:
        return self.age * UNITS[self.unit]

    def query(self) -> str:
        pairs: list[tuple[str, str]] = [("state", s.value) for s in self.states]
        pairs += [("queue", self.queue), ("age", str(self.age)), ("unit", self.unit)]
        return urlencode([(k, v) for k, v in pairs if v])


@purge_router.get("/jobs/purge", name="dashboard_purge")
async def purge_preview(request: Request) -> Response:
    viewer = _viewer(request)
    previewing = "age" in request.query_params
    scope = PurgeScope.of(request.query_params, defaults=not previewing)
    client = _client(request)
    cutoff = client.clock.now() - timedelta(seconds=scope.seconds)
    count = None
    if previewing and scope.states:
        count = await client.store.job_purge_count(scope.states, scope.queue or None, cutoff)
    queues = sorted({s.queue for s in await client.stats()})
    return _render(
        request,
        "purge.html",
        viewer,
        page="jobs",
        scope=scope,
        previewing=previewing,
        count=count,
        cutoff=cutoff,
        purgeable=PURGEABLE,
        units=list(UNITS),
        queues=queues,
    )


@purge_router.post("/jobs/purge")
async def purge_apply(request: Request) -> Response:
    viewer, form = await _guard(request)
    states = tuple(s for s in PURGEABLE if s.value in [str(v) for v in form.getlist("state")])
    if not states:
        raise _Refused(400, "Choose at least one finished state to purge.")
    try:
        cutoff = datetime.fromisoformat(_text(form, "cutoff"))
    except ValueError:
        raise _Refused(400, "The purge form's cutoff is missing or malformed; preview again.") from None
    client = _client(request)
    if cutoff.tzinfo is None or cutoff > client.clock.now():
        raise _Refused(400, "The cutoff must be a moment in the past with a time zone; preview again.")
    expected = _text(form, "expected")
    deleted = await client.store.job_purge(
        states, _text(form, "queue").strip() or None, cutoff.astimezone(UTC)
    )
    fewer = expected.isdigit() and deleted < int(expected)
    raise _Redirect(f"{viewer.base}/jobs?notice={'purgedfewer' if fewer else 'purged'}&n={deleted}")
