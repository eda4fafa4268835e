"""The job API's shapes without a server: one JSON shape of a job (the CLI's `--json` agrees with it),
OpenAPI documents every response, and the bulk caps say `more` (in-process, with the caps made small)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingestq.api.app import create_app
from ingestq.api.routes import jobs as jobs_routes
from ingestq.api.schemas import JobDetail, JobOut
from ingestq.cli.render import to_json
from ingestq.model.job import ErrorRecord, Job, JobState, Progress
from ingestq.settings import Settings


def _job(**changes: Any) -> Job:
    now = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    job = Job(
        id=7,
        queue="q",
        kind="ingestq.probe",
        payload={"seconds": 1, "nested": {"a": [1, 2]}},
        priority=3,
        state=JobState.RUNNING,
        run_at=now,
        attempt=2,
        max_attempts=5,
        dedupe_key="k",
        lease_owner="w1",
        lease_expires_at=now + timedelta(seconds=15),
        cancel_requested=False,
        progress=Progress("embed", 3, 10),
        result={"ok": True},
        last_error="boom",
        errors=(ErrorRecord(1, now, "boom"),),
        document_id="doc",
        created_at=now - timedelta(seconds=5),
        started_at=now,
        finished_at=None,
    )
    return dataclasses.replace(job, **changes)


def _dates_parsed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _dates_parsed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_parsed(v) for v in value]
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def test_the_api_shows_every_field_of_a_job_as_the_cli_json_does() -> None:
    job = _job()
    shown = JobOut.of(job).model_dump(mode="json")
    assert set(shown) == {f.name for f in dataclasses.fields(Job)} | {"version"}
    shown.pop("version")
    assert _dates_parsed(shown) == _dates_parsed(to_json(job))


def test_the_version_changes_with_progress_state_and_cancel_requests_only() -> None:
    base = JobOut.of(_job()).version
    assert JobOut.of(_job(result={"other": 1}, lease_owner="w2")).version == base
    for changed in (
        _job(progress=Progress("embed", 4, 10)),
        _job(state=JobState.SUCCEEDED),
        _job(attempt=3),
        _job(cancel_requested=True),
    ):
        assert JobOut.of(changed).version != base
    assert JobDetail.of(_job(), position=None).version == base


def test_openapi_documents_each_response_of_the_job_routes() -> None:
    spec = create_app().openapi()
    mine = ("/v1/jobs", "/v1/stats", "/v1/workers", "/v1/queues", "/v1/process")
    operations = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        if path.startswith(mine) and not path.endswith("/events")  # a stream: tests/api/test_events_api.py
        for method, op in methods.items()
    ]
    assert len(operations) == 13
    for path, method, op in operations:
        responses = op["responses"]
        ok = [status for status in responses if status.startswith("2")]
        assert ok, (path, method)
        for status in ok:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema, (path, method, status)  # a model, not an untyped object
        for status in ("401", "403", "422"):
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (path, method, status)
    assert "429" in spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert "409" in spec["paths"]["/v1/jobs/{job_id}/retry"]["post"]["responses"]
    assert "unknown_kind" in spec["paths"]["/v1/jobs"]["post"]["description"]


def test_bulk_work_stops_at_its_cap_and_says_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_routes, "BULK_MAX_CHANGES", 3)
    monkeypatch.setattr(jobs_routes, "BULK_MAX_COUNT", 4)
    monkeypatch.setattr(jobs_routes, "PAGE", 2)  # several pages per request
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}"))
    with TestClient(app) as http:
        for _ in range(5):
            assert http.post("/v1/jobs", json={"kind": "ingestq.probe"}).status_code == 201
        dry = http.post("/v1/jobs/bulk/cancel", json={"filter": {}, "dry_run": True}).json()
        assert (dry["matched"], dry["more"]) == (4, True)  # counted up to its cap
        first = http.post("/v1/jobs/bulk/cancel", json={"filter": {}}).json()
        assert (first["matched"], first["changed"], first["more"]) == (3, 3, True)
        second = http.post("/v1/jobs/bulk/cancel", json={"filter": {}}).json()
        assert (second["matched"], second["changed"], second["more"]) == (2, 2, False)
        states = [j["state"] for j in http.get("/v1/jobs").json()["jobs"]]
        assert states == ["cancelled"] * 5


def test_a_host_application_mounts_the_router_with_its_own_kinds(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from ingestq.api import ingestq_lifespan, router
    from ingestq.tasks.registry import Registry

    ran: list[str] = []
    tasks = Registry()

    @tasks.task(name="app.greet")
    async def greet(name: str) -> str:
        ran.append(name)
        return f"hello {name}"

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}")
    app = FastAPI(lifespan=ingestq_lifespan(settings, tasks))
    app.include_router(router, prefix="/ingestq")
    with TestClient(app) as http:
        made = http.post("/ingestq/v1/jobs", json={"kind": "app.greet", "payload": {"name": "ada"}})
        assert made.status_code == 201, made.text
        assert made.headers["location"] == f"http://testserver/ingestq/v1/jobs/{made.json()['id']}"
        unknown = http.post("/ingestq/v1/jobs", json={"kind": "app.other", "payload": {}})
        assert unknown.status_code == 422
        assert unknown.json()["error"]["code"] == "unknown_kind"
        result = http.post("/ingestq/v1/process", params={"budget": 10}).json()
        assert (result["processed"], result["succeeded"]) == (1, 1)
        assert ran == ["ada"]
        job = http.get(made.headers["location"]).json()
        assert (job["state"], job["result"]) == ("succeeded", "hello ada")
