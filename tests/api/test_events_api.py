"""Server-Sent Events (`/v1/events`, `/v1/jobs/{id}/events`) over real HTTP against a running `ingestq
serve`, on SQLite and PostgreSQL, with real worker processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from service import serving
from sse_client import Sse, Stream
from test_jobs_api import ADMIN, READER, api, enqueue, start_worker

TOKENS = {"INGESTQ_API_TOKENS": f"admin:{ADMIN},read:{READER}"}
READ = {"Authorization": f"Bearer {READER}"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'q.db'}"


def job_events(stream: Stream, job_id: int, until: str, timeout: float = 60) -> list[Sse]:
    """The `job` events of one job, up to the first in state `until`."""
    seen: list[Sse] = []
    deadline = time.monotonic() + timeout
    while True:
        event = stream.next(timeout=max(0.1, deadline - time.monotonic()))
        assert event is not None, f"the stream ended after {[e.json['state'] for e in seen]}"
        if event.name == "job" and event.json["job_id"] == job_id:
            seen.append(event)
            if event.json["state"] == until:
                return seen


def drain(url: str, log: Path) -> None:
    worker = start_worker(url, log, "--once")
    assert worker.wait(60) == 0, log.read_text()


def test_subscribers_see_a_job_through_a_real_worker_and_a_returning_one_gets_what_it_missed(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path / "serve.log", env=TOKENS) as service, api(service, ADMIN) as http:
        everything = Stream(service.url + "/v1/events", headers=READ).open()
        assert everything.status == 200
        assert everything.content_type is not None
        assert everything.content_type.startswith("text/event-stream")
        away = Stream(service.url + "/v1/events", headers=READ).open()
        only = Stream(service.url + "/v1/events", headers=READ, params={"queue": "elsewhere"}).open()
        job = enqueue(http, payload={"seconds": 0.5})
        one = Stream(f"{service.url}/v1/jobs/{job['id']}/events", headers=READ).open()
        other = enqueue(http, queue="elsewhere")
        (queued,) = job_events(away, job["id"], until="queued")
        away.close()  # away while the job runs
        drain(database_url, tmp_path / "worker.log")

        seen = job_events(everything, job["id"], until="succeeded")
        assert [e.json["state"] for e in seen] == ["queued", "running", "succeeded"]
        ids = [e.id for e in seen]
        assert ids[0] == queued.id
        assert all(ids)
        assert len(set(ids)) == 3
        assert seen[-1].json["finished_at"] is not None
        # the one-job stream: only that job, starting with its state when the stream opened (queued;
        # the feed's own `queued` event may follow it when its look came after the subscription)
        states: list[str] = []
        while not states or states[-1] != "succeeded":
            event = one.next()
            assert event is not None
            assert event.json["job_id"] == job["id"]
            states.append(event.json["state"])
        assert states in (["queued", "running", "succeeded"], ["queued", "queued", "running", "succeeded"])
        # opened after the job finished: it says so at once (before, it only sent keep-alives)
        late = Stream(f"{service.url}/v1/jobs/{job['id']}/events", headers=READ).open()
        first = late.next(timeout=10)
        assert first is not None
        assert (first.name, first.json["state"]) == ("job", "succeeded")
        assert first.json["finished_at"] is not None
        late.close()
        # the queue filter kept the default queue out
        first = only.next()
        assert first is not None
        assert (first.json["job_id"], first.json["queue"]) == (other["id"], "elsewhere")

        # back after the job finished: resuming (header) replays what happened after `queued`
        back = Stream(service.url + "/v1/events", headers={**READ, "Last-Event-ID": str(queued.id)}).open()
        assert [e.json["state"] for e in job_events(back, job["id"], until="succeeded")] == [
            "running",
            "succeeded",
        ]
        # the query parameter does the same (EventSource reconnects from a URL)
        again = Stream(
            service.url + "/v1/events", headers=READ, params={"last_event_id": str(queued.id)}
        ).open()
        assert [e.json["state"] for e in job_events(again, job["id"], until="succeeded")] == [
            "running",
            "succeeded",
        ]
        # an id this process never issued cannot be resumed: `reset` says re-read
        foreign = Stream(service.url + "/v1/events", headers={**READ, "Last-Event-ID": "0badcafe-12"}).open()
        event = foreign.next()
        assert event is not None
        assert event.name == "reset"
        for stream in (everything, one, only, back, again, foreign):
            stream.close()


def test_auth_the_stream_cap_and_a_clean_end_at_shutdown(sqlite_url: str, tmp_path: Path) -> None:
    env = {**TOKENS, "INGESTQ_SSE_MAX_STREAMS": "2"}
    with serving(sqlite_url, tmp_path / "serve.log", env=env) as service:
        for path in ("/v1/events", "/v1/jobs/1/events"):
            anonymous = httpx.get(service.url + path, timeout=10)
            assert anonymous.status_code == 401
            assert anonymous.json()["error"]["code"] == "unauthorized"
            wrong = httpx.get(service.url + path, headers={"Authorization": "Bearer nope"}, timeout=10)
            assert wrong.status_code == 401
        missing = httpx.get(service.url + "/v1/jobs/99/events", headers=READ, timeout=10)
        assert missing.status_code == 404
        for bad in ({"queue": "q" * 300}, {"kind": ""}, {"last_event_id": "x" * 65}):
            invalid = httpx.get(service.url + "/v1/events", headers=READ, params=bad, timeout=10)
            assert invalid.status_code == 422, (bad, invalid.text)
        too_many = httpx.get(
            service.url + "/v1/events",
            headers=READ,
            params={"queue": [f"q{i}" for i in range(21)]},
            timeout=10,
        )
        assert too_many.status_code == 422
        assert httpx.get(service.url + "/v1/jobs/0/events", headers=READ, timeout=10).status_code == 422

        held = [Stream(service.url + "/v1/events", headers=READ).open() for _ in range(2)]
        assert [s.status for s in held] == [200, 200]  # a read token suffices
        refused = httpx.get(service.url + "/v1/events", headers=READ, timeout=10)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "too_many_streams"
        held.pop().close()
        # the server notices the closed stream and admits a new one
        deadline = time.monotonic() + 30
        while True:
            retry = Stream(service.url + "/v1/events", headers=READ).open()
            if retry.status == 200:
                held.append(retry)
                break
            assert time.monotonic() < deadline, "a closed stream was never given back"
            time.sleep(0.1)

        # SIGTERM with two streams open: both end with `bye`, and the server stops
        service.process.send_signal(signal.SIGTERM)
        # uvicorn's graceful timeout is 30 s: an exit well before it means the streams ended by themselves
        service.process.wait(20)
        for stream in held:
            names: list[str] = []
            while (event := stream.next(timeout=10)) is not None:
                names.append(event.name)
            assert names[-1:] == ["bye"]
    # uvicorn re-raises the signal it handled once it has shut down cleanly
    assert service.process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in service.logged()
