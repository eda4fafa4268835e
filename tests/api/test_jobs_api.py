"""`/v1/jobs`, `/v1/stats`, `/v1/queues`, `/v1/workers`, `/v1/process` over real HTTP against a running
`ingestq serve`, on SQLite and PostgreSQL (the `database_url` fixture), with real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from service import INGESTQ, Service, serving

ADMIN = "admin-token-0123456789"
READER = "read-token-0123456789ab"
PROBE = "ingestq.probe"


def api(service: Service, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=service.url, headers=headers, timeout=90)


def enqueue(http: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("kind", PROBE)
    answer = http.post("/v1/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job: dict[str, Any] = answer.json()
    return job


def states(http: httpx.Client, **params: Any) -> Counter[str]:
    page = http.get("/v1/jobs", params={"limit": 500, **params})
    assert page.status_code == 200, page.text
    return Counter(job["state"] for job in page.json()["jobs"])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'q.db'}"


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Real `ingestq worker` processes a test starts (stopped with SIGTERM at the end)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start_worker(url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        return subprocess.Popen([INGESTQ, "--db", url, "worker", *args], stdout=out, stderr=out, env=env)


# --- enqueue -------------------------------------------------------------------------------------------
def test_enqueue_is_201_and_a_dedupe_match_is_200_with_the_same_job(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        first = http.post("/v1/jobs", json={"kind": PROBE, "payload": {"seconds": 1}, "dedupe_key": "doc-7"})
        assert first.status_code == 201, first.text
        job = first.json()
        assert job["deduplicated"] is False
        assert first.headers["location"] == f"{service.url}/v1/jobs/{job['id']}"
        assert (job["state"], job["kind"], job["payload"], job["position"]) == (
            "queued",
            PROBE,
            {"seconds": 1},
            1,
        )

        again = http.post("/v1/jobs", json={"kind": PROBE, "payload": {"seconds": 2}, "dedupe_key": "doc-7"})
        assert again.status_code == 200, again.text
        assert again.json()["deduplicated"] is True
        assert again.json()["id"] == job["id"]
        assert again.json()["payload"] == {"seconds": 1}  # the existing job, untouched

        other = http.post(
            "/v1/jobs", json={"kind": PROBE, "dedupe_key": "doc-8", "priority": 5, "queue": "q2"}
        )
        assert other.status_code == 201
        assert other.json()["id"] != job["id"]
        assert (other.json()["priority"], other.json()["queue"]) == (5, "q2")

        delayed = enqueue(http, delay_seconds=3600, max_attempts=2)
        assert delayed["max_attempts"] == 2
        assert delayed["position"] == 2  # not due yet: behind every due job of its queue

        # dedupe covers unfinished jobs only: once cancelled, the key makes a new job
        assert http.post(f"/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
        fresh = http.post("/v1/jobs", json={"kind": PROBE, "dedupe_key": "doc-7"})
        assert fresh.status_code == 201
        assert fresh.json()["deduplicated"] is False
        assert fresh.json()["id"] != job["id"]


def test_a_full_queue_answers_429_with_retry_after(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        configured = http.put("/v1/queues/small", json={"max_depth": 2})
        assert configured.status_code == 200, configured.text
        small = {"name": "small", "max_depth": 2, "paused": False, "paused_at": None}
        assert configured.json() == small
        assert small in http.get("/v1/queues").json()
        enqueue(http, queue="small")
        enqueue(http, queue="small")
        full = http.post("/v1/jobs", json={"kind": PROBE, "queue": "small"})
        assert full.status_code == 429, full.text
        assert int(full.headers["retry-after"]) >= 1
        assert full.json()["error"]["code"] == "queue_full"
        assert states(http, queue="small") == {"queued": 2}  # nothing inserted
        enqueue(http, queue="other")  # other queues are not limited
        # removing the limit lets it in
        assert http.put("/v1/queues/small", json={"max_depth": None}).json()["max_depth"] is None
        enqueue(http, queue="small")


def test_a_paused_queue_keeps_its_jobs_from_a_worker_until_resumed(
    database_url: str, tmp_path: Path, worker_process: list[subprocess.Popen[bytes]]
) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        paused = http.post("/v1/queues/held/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True
        assert paused.json()["max_depth"] is None
        assert http.put("/v1/queues/held", json={"max_depth": 10}).json()["paused"] is True  # kept
        (listed,) = http.get("/v1/queues").json()
        assert (listed["name"], listed["max_depth"], listed["paused"]) == ("held", 10, True)
        held = [enqueue(http, queue="held")["id"] for _ in range(3)]
        free = [enqueue(http, queue="free")["id"] for _ in range(5)]
        # a real worker (heartbeat every 0.5 s): it beats before its first claim, so never takes "held"
        log = tmp_path / "worker.log"
        worker_process.append(start_worker(database_url, log, "--concurrency", "2", "--lease", "1.5"))
        wait_for(lambda: states(http, queue="free") == {"succeeded": 5}, log)
        time.sleep(1.5)  # three more heartbeats and polls: still not claimed
        assert states(http, queue="held") == {"queued": 3}
        resumed = http.post("/v1/queues/held/resume").json()
        assert (resumed["paused"], resumed["paused_at"], resumed["max_depth"]) == (False, None, 10)
        wait_for(lambda: states(http, queue="held") == {"succeeded": 3}, log)
        assert {http.get(f"/v1/jobs/{i}").json()["state"] for i in held + free} == {"succeeded"}


def wait_for(done: Callable[[], bool], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


# --- auth ----------------------------------------------------------------------------------------------
def test_reading_needs_a_token_and_changing_needs_admin(sqlite_url: str, tmp_path: Path) -> None:
    env = {"INGESTQ_API_TOKENS": f"admin:{ADMIN},read:{READER}"}
    with (
        serving(sqlite_url, tmp_path / "serve.log", env=env) as service,
        api(service, ADMIN) as admin,
        api(service, READER) as reader,
        api(service) as anonymous,
    ):
        job = enqueue(admin)
        reads = ["/v1/jobs", f"/v1/jobs/{job['id']}", "/v1/stats", "/v1/queues", "/v1/workers"]
        for path in reads:
            assert anonymous.get(path).status_code == 401, path
            assert reader.get(path).status_code == 200, path
        writes: list[tuple[str, str, Any]] = [
            ("POST", "/v1/jobs", {"kind": PROBE}),
            ("POST", f"/v1/jobs/{job['id']}/cancel", None),
            ("POST", f"/v1/jobs/{job['id']}/retry", None),
            ("POST", "/v1/jobs/bulk/cancel", {"filter": {}, "dry_run": True}),
            ("PUT", "/v1/queues/default", {"max_depth": 1}),
            ("POST", "/v1/queues/default/pause", None),
            ("POST", "/v1/queues/default/resume", None),
            ("POST", "/v1/process?budget=1", None),
        ]
        for method, path, body in writes:
            refused = anonymous.request(method, path, json=body)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.headers["www-authenticate"] == "Bearer"
            forbidden = reader.request(method, path, json=body)
            assert forbidden.status_code == 403, (path, forbidden.text)
            assert forbidden.json()["error"]["code"] == "forbidden"
        # the refused writes changed nothing
        assert states(admin) == {"queued": 1}
        assert admin.get("/v1/queues").json() == []
        assert admin.post(f"/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"


# --- client mistakes: 404 / 409 / 422, never a 5xx -----------------------------------------------------
def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_client_mistakes_are_4xx_in_the_error_shape(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        job = enqueue(http)
        mistakes: list[tuple[str, str, Any, int, str]] = [
            ("GET", "/v1/jobs/987654", None, 404, "not_found"),
            ("POST", "/v1/jobs/987654/retry", None, 404, "not_found"),
            ("POST", "/v1/jobs/987654/cancel", None, 404, "not_found"),
            ("POST", f"/v1/jobs/{job['id']}/retry", None, 409, "conflict"),  # queued: nothing to retry
            ("GET", "/v1/jobs/abc", None, 422, "invalid_request"),
            ("GET", f"/v1/jobs/{2**64}", None, 422, "invalid_request"),
            ("GET", f"/v1/jobs/{job['id']}?wait=0", None, 422, "invalid_request"),
            ("GET", f"/v1/jobs/{job['id']}?wait=61", None, 422, "invalid_request"),
            ("GET", f"/v1/jobs/{job['id']}?wait=nan", None, 422, "invalid_request"),
            ("GET", f"/v1/jobs/{job['id']}?wait=1&state=bogus", None, 422, "invalid_request"),
            ("GET", "/v1/jobs?limit=501", None, 422, "invalid_request"),
            ("GET", "/v1/jobs?limit=0", None, 422, "invalid_request"),
            ("GET", "/v1/jobs?state=bogus", None, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": "os.system", "payload": {}}, 422, "unknown_kind"),
            ("POST", "/v1/jobs", {"kind": PROBE, "payload": [1, 2]}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "payload": "x"}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"payload": {}}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "max_attempts": 0}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "priority": 2**40}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "delay_seconds": -1}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "run_at": "2030-01-01T00:00:00"}, 422, "invalid_request"),
            (
                "POST",
                "/v1/jobs",
                {"kind": PROBE, "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"},
                422,
                "invalid_request",
            ),
            ("POST", "/v1/jobs", {"kind": PROBE, "queue": ""}, 422, "invalid_request"),
            # what a job cannot hold on PostgreSQL (NUL) or a response could not show (deep nesting)
            ("POST", "/v1/jobs", {"kind": PROBE, "payload": {"a": deep(100)}}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "payload": {"a": "x\x00y"}}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "payload": {"a\x00": 1}}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "dedupe_key": "k\x00"}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "queue": "q\x00"}, 422, "invalid_request"),
            (
                "POST",
                "/v1/jobs",
                {"kind": PROBE, "run_at": "0001-01-01T00:00:00+05:00"},
                422,
                "invalid_request",
            ),
            (
                "POST",
                "/v1/jobs",
                {"kind": PROBE, "run_at": "9999-12-31T23:59:59-05:00"},
                422,
                "invalid_request",
            ),
            ("GET", "/v1/jobs?queue=%00", None, 422, "invalid_request"),
            ("GET", "/v1/jobs?kind=", None, 422, "invalid_request"),
            ("GET", "/v1/jobs?document_id=a%00", None, 422, "invalid_request"),
            ("PUT", "/v1/queues/a%00b", {"max_depth": 1}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/cancel", {"filter": {"queues": ["\x00"]}}, 422, "invalid_request"),
            ("POST", "/v1/jobs", {"kind": PROBE, "surprise": 1}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/retry", {"ids": [1], "filter": {}}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/retry", {}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/retry", {"ids": list(range(1, 1002))}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/explode", {"filter": {}}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/purge", {"ids": [1]}, 422, "invalid_request"),
            ("POST", "/v1/jobs/bulk/purge", {"filter": {"kinds": [PROBE]}}, 422, "invalid_request"),
            ("PUT", "/v1/queues/default", {"max_depth": -1}, 422, "invalid_request"),
            ("PUT", "/v1/queues/default", {}, 422, "invalid_request"),
            ("POST", "/v1/process?budget=0", None, 422, "invalid_request"),
            ("POST", "/v1/process?budget=301", None, 422, "invalid_request"),
            ("POST", "/v1/process", None, 422, "invalid_request"),
        ]
        for method, path, body, status, code in mistakes:
            answer = http.request(method, path, json=body)
            assert answer.status_code == status, (method, path, body, answer.text)
            error = answer.json()["error"]
            assert (error["status"], error["code"]) == (status, code), (path, body, error)
            assert error["message"]
        # JSON that is not JSON, and a payload JSON allows but a job cannot hold (NaN)
        broken = http.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 422, broken.text
        nan = http.post(
            "/v1/jobs",
            content=b'{"kind": "ingestq.probe", "payload": {"x": NaN}}',
            headers={"content-type": "application/json"},
        )
        assert nan.status_code == 422, nan.text
        assert nan.json()["error"]["code"] == "invalid_payload"
        too_deep = b'{"kind": "ingestq.probe", "payload": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
        refused = http.post("/v1/jobs", content=too_deep, headers={"content-type": "application/json"})
        assert 400 <= refused.status_code < 500, refused.text
        assert refused.json()["error"]["status"] == refused.status_code
        fine = enqueue(http, payload={"a": deep(60), "b": "\u00e9"}, run_at="9998-06-01T00:00:00+02:00")
        assert fine["run_at"].startswith("9998-05-31T22:00:00")
        # none of the refused enqueues inserted anything, and every job can be listed
        assert states(http) == {"queued": 2}
    assert "Traceback" not in service.logged()


def test_retry_and_cancel_one_job(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service, api(service) as http:
        doomed = enqueue(http, payload={"fail_times": 9}, max_attempts=1)
        ran = http.post("/v1/process?budget=10").json()
        assert (ran["processed"], ran["failed"]) == (1, 1)
        failed = http.get(f"/v1/jobs/{doomed['id']}").json()
        assert failed["state"] == "failed"
        assert "probe failure" in failed["last_error"]
        assert failed["errors"][0]["attempt"] == 1

        retried = http.post(f"/v1/jobs/{doomed['id']}/retry")
        assert retried.status_code == 200, retried.text
        assert (retried.json()["state"], retried.json()["position"]) == ("queued", 1)
        assert http.post(f"/v1/jobs/{doomed['id']}/retry").status_code == 409  # queued now

        cancelled = http.post(f"/v1/jobs/{doomed['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled"
        assert http.post(f"/v1/jobs/{doomed['id']}/cancel").json()["state"] == "cancelled"  # idempotent

        fine = enqueue(http)
        assert http.post("/v1/process?budget=10").json()["succeeded"] == 1
        late = http.post(f"/v1/jobs/{fine['id']}/cancel")
        assert late.status_code == 409, late.text
        assert "succeeded" in late.json()["error"]["message"]


# --- list ----------------------------------------------------------------------------------------------
def test_list_pages_by_keyset_and_filters(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        ids = [enqueue(http, queue="a" if n % 2 else "b", payload={"n": n})["id"] for n in range(7)]
        seen: list[int] = []
        before: int | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3}
            if before is not None:
                params["before_id"] = before
            page = http.get("/v1/jobs", params=params).json()
            pages += 1
            seen += [job["id"] for job in page["jobs"]]
            before = page["next"]
            if before is None:
                break
        assert seen == sorted(ids, reverse=True)  # newest first, each once
        assert pages == 3
        in_a = http.get("/v1/jobs", params={"queue": "a"}).json()["jobs"]
        assert sorted(job["payload"]["n"] for job in in_a) == [1, 3, 5]
        assert http.get("/v1/jobs", params={"kind": "other.kind"}).json() == {"jobs": [], "next": None}
        http.post(f"/v1/jobs/{ids[0]}/cancel")
        both = http.get("/v1/jobs", params=[("state", "cancelled"), ("state", "succeeded")]).json()
        assert [job["id"] for job in both["jobs"]] == [ids[0]]


# --- long-poll -----------------------------------------------------------------------------------------
def test_long_poll_answers_when_a_worker_moves_the_job(
    database_url: str, tmp_path: Path, worker_process: list[subprocess.Popen[bytes]]
) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        job = enqueue(http, payload={"seconds": 1})
        # nothing changes without a worker: the poll holds for `wait`, then returns the job unchanged
        started = time.monotonic()
        unchanged = http.get(f"/v1/jobs/{job['id']}", params={"wait": 1})
        held = time.monotonic() - started
        assert unchanged.status_code == 200
        assert 0.9 <= held < 5, held
        assert unchanged.json()["version"] == job["version"]
        assert unchanged.headers["etag"] == f'"{job["version"]}"'

        with ThreadPoolExecutor(1) as pool:
            # the caller has seen "queued": the answer comes when a worker claims it
            waiting = pool.submit(http.get, f"/v1/jobs/{job['id']}", params={"wait": 50, "state": "queued"})
            time.sleep(0.5)
            assert not waiting.done()  # it is really waiting
            started = time.monotonic()
            worker_process.append(start_worker(database_url, tmp_path / "worker.log", "--concurrency", "2"))
            moved = waiting.result(timeout=60)
            assert time.monotonic() - started < 30, "the long-poll sat out its wait instead of answering"
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] in ("running", "succeeded")
        # then from its version on, until it finished
        current = moved.json()
        deadline = time.monotonic() + 45
        while current["state"] != "succeeded" and time.monotonic() < deadline:
            current = http.get(
                f"/v1/jobs/{job['id']}", params={"wait": 30, "since": current["version"]}
            ).json()
        assert current["state"] == "succeeded"
        assert current["finished_at"] is not None


# --- bulk ----------------------------------------------------------------------------------------------
def test_bulk_dry_run_counts_then_the_action_changes_as_many(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        [enqueue(http, queue="work", payload={"fail_times": 9}, max_attempts=1)["id"] for _ in range(5)]
        assert http.post("/v1/process?budget=20").json()["failed"] == 5
        waiting = [enqueue(http, queue="later", delay_seconds=3600)["id"] for _ in range(3)]
        assert states(http) == {"failed": 5, "queued": 3}

        dry = http.post("/v1/jobs/bulk/retry", json={"filter": {}, "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json() == {
            "action": "retry",
            "dry_run": True,
            "matched": 5,
            "changed": None,
            "more": False,
        }
        assert states(http) == {"failed": 5, "queued": 3}  # a dry run changes nothing

        done = http.post("/v1/jobs/bulk/retry", json={"filter": {"queues": ["work"]}}).json()
        assert (done["matched"], done["changed"], done["more"]) == (5, 5, False)
        assert states(http) == {"queued": 8}
        assert http.post("/v1/jobs/bulk/retry", json={"filter": {}, "dry_run": True}).json()["matched"] == 0

        # by ids: only the ones the action applies to count (unknown ids and repeats do not)
        scope = {"ids": [*waiting, waiting[0], 987654], "dry_run": True}
        assert http.post("/v1/jobs/bulk/cancel", json=scope).json()["matched"] == 3
        cancelled = http.post("/v1/jobs/bulk/cancel", json={"ids": waiting}).json()
        assert (cancelled["matched"], cancelled["changed"]) == (3, 3)
        assert states(http, queue="later") == {"cancelled": 3}

        # cancel by filter takes the queued jobs of "work"
        assert (
            http.post(
                "/v1/jobs/bulk/cancel",
                json={"filter": {"queues": ["work"], "states": ["queued"]}, "dry_run": True},
            ).json()["matched"]
            == 5
        )
        assert http.post("/v1/jobs/bulk/cancel", json={"filter": {"kinds": [PROBE]}}).json()["changed"] == 5

        # purge: dry run, then delete the finished jobs of one queue
        purge = {"filter": {"queues": ["later"]}}
        assert http.post("/v1/jobs/bulk/purge", json={**purge, "dry_run": True}).json()["matched"] == 3
        assert http.post("/v1/jobs/bulk/purge", json=purge).json()["changed"] == 3
        assert states(http) == {"cancelled": 5}
        assert (
            http.post("/v1/jobs/bulk/purge", json={"filter": {"states": ["succeeded"]}}).json()["changed"]
            == 0
        )
        assert states(http) == {"cancelled": 5}


# --- stats, workers ------------------------------------------------------------------------------------
def test_stats_and_workers(
    database_url: str, tmp_path: Path, worker_process: list[subprocess.Popen[bytes]]
) -> None:
    with serving(database_url, tmp_path / "serve.log") as service, api(service) as http:
        for _ in range(3):
            enqueue(http, queue="alpha")
        enqueue(http, queue="beta", delay_seconds=600)
        body = http.get("/v1/stats").json()
        by_queue = {q["queue"]: q for q in body["queues"]}
        assert by_queue["alpha"]["counts"]["queued"] == 3
        assert by_queue["alpha"]["oldest_queued_age"] is not None
        assert by_queue["beta"]["counts"] == {
            "queued": 1,
            "running": 0,
            "succeeded": 0,
            "failed": 0,
            "cancelled": 0,
        }
        assert by_queue["beta"]["oldest_queued_age"] is None  # not due
        assert body["totals"]["queued"] == 4
        assert http.get("/v1/workers").json() == []

        worker_process.append(start_worker(database_url, tmp_path / "worker.log", "--concurrency", "3"))
        deadline = time.monotonic() + 30
        workers: list[dict[str, Any]] = []
        while not workers and time.monotonic() < deadline:
            workers = http.get("/v1/workers").json()
            time.sleep(0.2)
        assert len(workers) == 1, (tmp_path / "worker.log").read_text()
        assert workers[0]["pid"] == worker_process[0].pid
        assert workers[0]["concurrency"] == 3
        assert "unavailable" in workers[0]


# --- process ---------------------------------------------------------------------------------------------
def test_process_runs_due_jobs_and_keeps_its_budget(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service, api(service) as http:
        quick = [enqueue(http)["id"] for _ in range(3)]
        enqueue(http, delay_seconds=3600)
        first = http.post("/v1/process?budget=10").json()
        assert (first["processed"], first["succeeded"], first["remaining"], first["queued"]) == (3, 3, 0, 1)
        assert all(http.get(f"/v1/jobs/{i}").json()["state"] == "succeeded" for i in quick)

        slow = enqueue(http, payload={"seconds": 60})
        started = time.monotonic()
        answer = http.post("/v1/process?budget=2")
        took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert took < 4, f"a 2 s budget took {took:.1f} s"
        body = answer.json()
        assert (body["processed"], body["released"]) == (0, 1)  # the slow job, given back at the end
        assert (body["remaining"], body["queued"]) == (1, 2)  # it is due again; the delayed one is not
        back = http.get(f"/v1/jobs/{slow['id']}").json()
        assert (back["state"], back["attempt"]) == ("queued", 0)  # its attempt was given back


def test_overlapping_process_calls_run_every_job_exactly_once(database_url: str, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {"INGESTQ_PROBE_MARKER_DIR": str(markers), "INGESTQ_CONCURRENCY": "4"}
    with serving(database_url, tmp_path / "serve.log", env=env) as service, api(service) as http:
        total = 40
        ids = {enqueue(http, payload={"seconds": 0.1, "marker": "runs"})["id"] for _ in range(total)}
        barrier = threading.Barrier(2)

        def call() -> dict[str, Any]:
            barrier.wait()
            answer = http.post("/v1/process?budget=60")
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: call(), range(2)))
        assert results[0]["worker_id"] != results[1]["worker_id"]
        assert all(r["processed"] > 0 for r in results), results  # they really overlapped
        assert sum(r["succeeded"] for r in results) == total
        assert sum(r["released"] for r in results) == 0
        lines = (markers / "runs").read_text().split()
        starts = Counter(int(lines[i + 1]) for i in range(0, len(lines), 3) if lines[i] == "start")
        assert set(starts) == ids
        assert set(starts.values()) == {1}, "a job ran twice"
        assert states(http) == {"succeeded": total}
