"""Signed webhooks end to end, on SQLite and PostgreSQL: a real `ingestq serve`, a real `ingestq worker`
process and a real receiver (tests/api/receiver.py) that verifies every signature and answers 500 twice,
then 200. The delivery ends delivered at attempt 3, with one webhook-id on every attempt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from receiver import SECRET, receiving
from service import INGESTQ, serving

WEBHOOK_ENV = {
    "INGESTQ_WEBHOOK_SECRET": SECRET,
    "INGESTQ_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
    "INGESTQ_WEBHOOK_BACKOFF_BASE": "0.2",
    "INGESTQ_WEBHOOK_TIMEOUT": "5",
    "INGESTQ_EMBEDDER": "fake",  # the worker starts without loading a model
}


@pytest.fixture
def worker(database_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **WEBHOOK_ENV}
    with open(tmp_path / "worker.log", "ab") as out:
        proc = subprocess.Popen(
            [INGESTQ, "--db", database_url, "worker", "--poll-interval", "0.1"],
            stdout=out,
            stderr=out,
            env=env,
        )
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def settled(http: httpx.Client, delivery_id: int, timeout: float = 60) -> dict[str, Any]:
    """The delivery once it is delivered or failed (read over the API until then)."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = http.get(f"/v1/webhooks/deliveries/{delivery_id}").json()
        if found["status"] != "pending" or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def only_delivery(http: httpx.Client, job_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        page = http.get("/v1/webhooks/deliveries", params={"subject_job_id": job_id}).json()
        if page["deliveries"] or time.monotonic() > deadline:
            (delivery,) = page["deliveries"]
            return dict(delivery)
        time.sleep(0.05)


def test_a_signed_delivery_is_retried_until_the_receiver_takes_it(
    index_database_url: str, tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    database_url = index_database_url  # webhooks build on the documents tables: skipped without pgvector
    with (
        receiving([500, 500, 200]) as receiver,
        serving(database_url, tmp_path / "serve.log", env=WEBHOOK_ENV) as service,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        answer = http.post(
            "/v1/jobs",
            json={"kind": "ingestq.probe", "payload": {"fail_times": 0}, "callbacks": [receiver.url]},
        )
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        delivery = only_delivery(http, job_id)
        done = settled(http, delivery["id"])
        assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 3, 200), (
            done,
            (tmp_path / "worker.log").read_text(),
        )
        assert [a["status_code"] for a in done["attempt_log"]] == [500, 500, 200]
        assert done["attempt_log"][0]["error"].startswith("receiver answered HTTP 500")

        got = receiver.wait_for(3)
        assert [r.answered for r in got] == [500, 500, 200]
        assert all(r.signature_valid for r in got)
        assert {r.message_id for r in got} == {done["message_id"]}
        assert {r.body for r in got} == {done["body"].encode()}
        body = json.loads(got[0].body)
        assert body["type"] == "job.succeeded"
        assert (body["data"]["job_id"], body["data"]["state"]) == (job_id, "succeeded")

        # a person sends it again once its job has finished (the attempt is recorded just before the job's
        # outcome commits; until then a redelivery is refused with 409): a new job, the same id and body
        job_url = f"/v1/jobs/{done['job_id']}"
        deadline = time.monotonic() + 60
        while http.get(job_url).json()["state"] != "succeeded" and time.monotonic() < deadline:
            http.get(job_url, params={"wait": 5, "state": "running"})
        again = http.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver")
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"
        redone = settled(http, delivery["id"])
        assert (redone["status"], redone["attempts"]) == ("delivered", 4)
        fourth = receiver.wait_for(4)[3]
        assert (fourth.message_id, fourth.signature_valid) == (done["message_id"], True)

        listed = http.get("/v1/webhooks/deliveries", params={"status": "delivered"}).json()
        assert [d["id"] for d in listed["deliveries"]] == [delivery["id"]]
        assert http.get("/v1/webhooks/deliveries/999999").status_code == 404
        assert http.post("/v1/webhooks/deliveries/999999/redeliver").status_code == 404


def test_bad_callbacks_are_refused_where_they_are_registered(database_url: str, tmp_path: Path) -> None:
    with (
        serving(database_url, tmp_path / "serve.log", env=WEBHOOK_ENV) as service,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        for url in ("ftp://example.com/x", "http://user:pw@example.com/", "not a url", "/relative"):
            answer = http.post("/v1/jobs", json={"kind": "ingestq.probe", "callbacks": [url]})
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["error"]["code"] == "invalid_callback"
        forged = http.post("/v1/jobs", json={"kind": "ingestq.webhook", "payload": {"delivery_id": 1}})
        assert forged.status_code == 422  # deliveries are enqueued by the store only
        assert forged.json()["error"]["code"] == "unknown_kind"
        too_many = [f"https://example.com/{n}" for n in range(11)]
        assert http.post("/v1/jobs", json={"kind": "ingestq.probe", "callbacks": too_many}).status_code == 422
        assert http.get("/v1/jobs").json()["jobs"] == []


def test_an_indexed_document_is_announced_to_its_collection_and_its_request(
    database_url: str, tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    if not database_url.startswith("sqlite"):
        # the document triggers run on PostgreSQL in tests/contract/test_webhooks.py; a second run through
        # a parser process here would add ~12 s to `make test` for no other code
        pytest.skip("end to end on SQLite only")
    with (
        receiving([200]) as receiver,
        serving(database_url, tmp_path / "serve.log", env=WEBHOOK_ENV) as service,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        endpoint = receiver.url + "?from=collection"
        put = http.put("/v1/webhooks/endpoints/notes", json={"urls": [endpoint]})
        assert put.status_code == 200, put.text
        assert [e["url"] for e in put.json()["endpoints"]] == [endpoint]
        request_url = receiver.url + "?from=request"
        answer = http.post(
            "/v1/documents",
            json={"text": "# Hello\n\nA small note.", "collection": "notes", "callbacks": [request_url]},
        )
        assert answer.status_code == 202, answer.text
        (accepted,) = answer.json()["documents"]
        got = receiver.wait_for(2)
        bodies = [json.loads(r.body) for r in got]
        assert all(r.signature_valid for r in got)
        assert {b["type"] for b in bodies} == {"document.indexed"}
        assert {(b["data"]["collection"], b["data"]["document_id"]) for b in bodies} == {
            ("notes", accepted["document_id"])
        }
        listed = http.get("/v1/webhooks/deliveries", params={"collection": "notes"}).json()["deliveries"]
        assert sorted(d["url"] for d in listed) == sorted([endpoint, request_url])
        assert len({d["message_id"] for d in listed}) == 2
