"""Documents and search over real HTTP: a real `ingestq serve` and real `ingestq worker` processes, on
SQLite and PostgreSQL, with the fake embedder (INGESTQ_EMBEDDER=fake) so that nothing loads a model."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from service import Service, serving

from ingestq.model.job import Job, JobFilter, JobState

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("pipeline", "acceptance")]
from docgen import make_docx, make_pdf  # noqa: E402
from workers import run_store, start_worker, stop  # noqa: E402

ADMIN = "admin-token-0123456789"
READER = "read-token-0123456789ab"
TOKENS = f"admin:{ADMIN},read:{READER}"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_READER = {"Authorization": f"Bearer {READER}"}
FINAL = ("indexed", "failed", "quarantined")

PDF = make_pdf(
    [
        ["Heron migration", "Grey herons leave the northern marshes in October."],
        ["Bittern calls", "The booming call of the bittern carries five kilometres at dawn."],
    ]
)
MARKDOWN = b"# Kingfishers\n\n## Nesting\n\nKingfishers dig tunnels into sandy river banks.\n"


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every process of a test (serve, workers, the store helpers) embeds with the fake embedder."""
    monkeypatch.setenv("INGESTQ_EMBEDDER", "fake")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'q.db'}"


@contextlib.contextmanager
def worker(url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker(url, "--concurrency", "2", log=log)
    try:
        yield proc
    finally:
        stop(proc)


def wait_final(
    service: Service, location: str, headers: dict[str, str], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = httpx.get(service.url + location, headers=headers)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        if body["status"] in FINAL:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"still {body['status']} after {timeout} s: {body}\n{service.logged()}")
        time.sleep(0.2)


def listed(service: Service, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    got = httpx.get(service.url + "/v1/documents", params=params, headers=headers)
    assert got.status_code == 200, got.text
    documents: list[dict[str, Any]] = got.json()["documents"]
    return documents


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- the whole way: upload, 202, worker, indexed, search ------------------------------------------------


def test_an_upload_is_accepted_at_once_and_a_worker_indexes_it(
    index_database_url: str, tmp_path: Path
) -> None:
    url = index_database_url
    env = {"INGESTQ_API_TOKENS": TOKENS}
    with serving(url, tmp_path / "serve.log", env=env) as service:
        files = [
            ("file", ("herons.pdf", PDF, "application/pdf")),
            ("file", ("guide.docx", make_docx(), "application/octet-stream")),
            ("file", ("kingfishers.md", MARKDOWN, "text/markdown")),
        ]
        started = time.monotonic()
        posted = httpx.post(
            service.url + "/v1/documents",
            files=files,
            data={"collection": "birds", "metadata": json.dumps({"lang": "en"})},
            headers=AS_ADMIN,
        )
        assert time.monotonic() - started < 10
        assert posted.status_code == 202, posted.text
        body = posted.json()
        assert "location" not in {k.lower() for k in posted.headers}  # several documents: no one Location
        accepted = body["documents"]
        assert [a["status"] for a in accepted] == ["pending"] * 3
        assert len({a["job_id"] for a in accepted}) == 3
        assert all(a["collection"] == "birds" and a["duplicate"] is False for a in accepted)
        assert accepted[0]["document_id"].startswith("herons.pdf@")
        assert accepted[0]["location"].startswith("/v1/documents/birds/herons.pdf%40")

        # nothing runs without a worker: still pending, its job queued
        pending = httpx.get(service.url + accepted[0]["location"], headers=AS_READER).json()
        assert pending["status"] == "pending"
        assert pending["version"] == 0
        assert pending["job"]["state"] == "queued"
        assert pending["job"]["id"] == accepted[0]["job_id"]

        with worker(url, tmp_path / "worker.log"):
            done = [wait_final(service, a["location"], AS_READER) for a in accepted]
        assert [d["status"] for d in done] == ["indexed"] * 3, done
        pdf = httpx.get(service.url + accepted[0]["location"], params={"chunks": "true"}, headers=AS_READER)
        detail = pdf.json()
        assert detail["version"] == 1
        assert detail["media_type"] == "application/pdf"
        assert detail["metadata"] == {"lang": "en"}
        assert detail["content_hash"] == hashlib.sha256(PDF).hexdigest()
        assert detail["job"]["state"] == "succeeded"
        assert detail["last_error"] is None
        assert detail["chunk_count"] == len(detail["chunks"]) >= 1
        assert detail["tokens"]["indexed"] == sum(c["token_count"] for c in detail["chunks"]) > 0
        assert detail["tokens"]["embedded"] == detail["tokens"]["indexed"]  # nothing cached before
        assert {"fetch", "detect", "parse", "chunk", "embed"} <= set(detail["timings"]["stages"])
        assert detail["timings"]["run_seconds"] is not None
        assert "bittern" in " ".join(c["text"] for c in detail["chunks"]).lower()
        assert {c["page"] for c in detail["chunks"]} <= {1, 2}

        hits = httpx.post(
            service.url + "/v1/search",
            json={"query": "booming call of the bittern", "collection": "birds", "k": 3, "mode": "text"},
            headers=AS_READER,
        )
        assert hits.status_code == 200, hits.text
        top = hits.json()["hits"][0]
        assert top["document_id"] == accepted[0]["document_id"]
        assert "bittern" in top["text"].lower()
        assert top["page"] in {1, 2}  # the PDF's page the chunk starts on
        assert top["title"]
        assert top["score"] > 0
        assert top["metadata"] == {"lang": "en"}
        by_get = httpx.get(
            service.url + "/v1/search",
            params={"q": "tunnels in river banks", "collection": "birds", "k": 1, "mode": "text"},
            headers=AS_READER,
        ).json()["hits"]
        assert by_get[0]["document_id"] == accepted[2]["document_id"]
        assert by_get[0]["heading_path"] == ["Kingfishers", "Nesting"]
        filtered = httpx.post(
            service.url + "/v1/search",
            json={"query": "bittern", "collection": "birds", "metadata": {"lang": "fr"}},
            headers=AS_READER,
        ).json()["hits"]
        assert filtered == []
        hybrid = httpx.post(
            service.url + "/v1/search", json={"query": "herons", "collection": "birds"}, headers=AS_READER
        )
        assert hybrid.status_code == 200, hybrid.text
        assert hybrid.json()["hits"]


def test_text_and_a_single_upload_answer_with_a_location(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        posted = httpx.post(
            service.url + "/v1/documents",
            json={"text": MARKDOWN.decode(), "title": "Kingfishers", "metadata": {"k": 1}},
        )
        assert posted.status_code == 202, posted.text
        body = posted.json()
        assert body["status"] == "pending"
        assert body["collection"] == "default"
        assert isinstance(body["job_id"], int)
        assert posted.headers["location"] == body["documents"][0]["location"]
        assert posted.headers["location"].startswith("/v1/documents/default/Kingfishers.md%40")
        got = httpx.get(service.url + posted.headers["location"])
        assert got.status_code == 200
        assert got.json()["id"] == body["document_id"]
        assert got.json()["metadata"] == {"k": 1}


# --- the size cap, while streaming ----------------------------------------------------------------------


def _raw_request(service: Service, head: str, body: bytes, timeout: float = 20) -> bytes:
    """Send the request head and part of a chunked body that never ends; return what the server says."""
    where = urlsplit(service.url)
    assert where.hostname is not None
    assert where.port is not None
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"%x\r\n" % len(body) + body + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)  # a server that waits for the end of the body times out here
            if not piece:
                break
            answer += piece
        return answer


def test_an_upload_over_the_cap_is_refused_while_it_streams_and_nothing_is_stored(
    index_database_url: str, tmp_path: Path
) -> None:
    url = index_database_url
    cap = 64 * 1024
    env = {"INGESTQ_UPLOAD_MAX_BYTES": str(cap)}
    with serving(url, tmp_path / "serve.log", env=env) as service:
        # 1. a body that never ends: the 413 comes as soon as the file passes the cap
        boundary = "b0undary"
        head = (
            "POST /v1/documents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        )
        part = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.md"\r\n\r\n'.encode()
            + b"x" * (cap + 4096)
        )
        answer = _raw_request(service, head, part)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

        # 2. the first file fits, the second does not: neither is stored
        small = b"# Small\n\nThis one fits under the cap.\n"
        posted = httpx.post(
            service.url + "/v1/documents",
            files=[("file", ("small.md", small)), ("file", ("big.md", b"y" * (cap + 1)))],
        )
        assert posted.status_code == 413, posted.text
        assert error_code(posted) == "too_large"
        assert "big.md" in posted.json()["error"]["message"]

        # 3. a declared length over the cap: refused before the body is read
        declared = httpx.post(
            service.url + "/v1/documents",
            content=b"z" * (cap + 2 * 1024**2),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert declared.status_code == 413

        # 4. JSON text over the cap
        text = httpx.post(service.url + "/v1/documents", json={"text": "w" * (cap + 1)})
        assert text.status_code == 413

        assert listed(service, {}) == []
        assert run_store(url, "blob_get", hashlib.sha256(small).hexdigest()) is None
        assert not any(dict(run_store(url, "document_counts", None)).values())  # type: ignore[call-overload]
        # a file exactly at the cap is accepted
        exact = httpx.post(service.url + "/v1/documents", files=[("file", ("exact.md", b"e" * cap))])
        assert exact.status_code == 202, exact.text


# --- a server killed right after its 202 ----------------------------------------------------------------


def test_a_server_killed_after_its_202_loses_nothing(index_database_url: str, tmp_path: Path) -> None:
    url = index_database_url
    with serving(url, tmp_path / "serve.log") as service:
        posted = httpx.post(service.url + "/v1/documents", files=[("file", ("herons.pdf", PDF))])
        assert posted.status_code == 202
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(10)
    location = posted.headers["location"]
    with worker(url, tmp_path / "worker.log"), serving(url, tmp_path / "serve2.log") as again:
        done = wait_final(again, location, {})
    assert done["status"] == "indexed", done
    assert done["job"]["id"] == posted.json()["job_id"]


# --- refusals -------------------------------------------------------------------------------------------


def test_tokens_and_roles(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log", env={"INGESTQ_API_TOKENS": TOKENS}) as service:
        doc = service.url + "/v1/documents"
        anonymous = httpx.post(doc, files=[("file", ("a.md", MARKDOWN))])
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert httpx.get(doc).status_code == 401
        assert httpx.get(service.url + "/v1/search", params={"q": "x"}).status_code == 401
        reader_post = httpx.post(doc, files=[("file", ("a.md", MARKDOWN))], headers=AS_READER)
        assert reader_post.status_code == 403
        assert error_code(reader_post) == "forbidden"
        assert listed(service, AS_READER) == []  # the refused upload stored nothing
        posted = httpx.post(doc, files=[("file", ("a.md", MARKDOWN))], headers=AS_ADMIN)
        assert posted.status_code == 202
        location = service.url + posted.headers["location"]
        assert httpx.get(location, headers=AS_READER).status_code == 200
        assert httpx.delete(location, headers=AS_READER).status_code == 403
        assert httpx.post(location + "/reprocess", headers=AS_READER).status_code == 403
        assert httpx.get(location, headers=AS_READER).status_code == 200  # still there


def test_unknown_documents_and_collections_are_404(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        base = service.url + "/v1/documents/kb/"
        for response in (
            httpx.get(base + "nothing"),
            httpx.delete(base + "nothing"),
            httpx.post(base + "nothing/reprocess"),
            httpx.post(service.url + "/v1/search", json={"query": "x", "collection": "nope"}),
        ):
            assert response.status_code == 404, response.text
            assert error_code(response) == "not_found"


MALFORMED: list[tuple[dict[str, Any], int]] = [
    ({"json": {"url": "https://example.org/a", "text": "both"}}, 422),
    ({"json": {}}, 422),
    ({"json": {"text": "x", "surprise": 1}}, 422),
    ({"json": {"url": "file:///etc/passwd"}}, 422),
    ({"json": {"text": "x", "collection": "../etc"}}, 422),
    ({"json": {"text": "x", "metadata": [1, 2]}}, 422),
    ({"json": {"text": "   "}}, 422),
    ({"json": ["text"]}, 422),
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
    ({"files": [("file", ("a.md", b"x"))], "data": {"metadata": "[1]"}}, 422),
    ({"files": [("file", ("a.md", b"x"))], "data": {"metadata": "{nope"}}, 422),
    ({"files": [("file", ("a.md", b"x"))], "data": {"colour": "red"}}, 422),
    ({"files": [("file", ("a.md", b"x"))], "data": {"collection": "a/b"}}, 422),
    (  # no file part
        {
            "content": b'--x\r\nContent-Disposition: form-data; name="collection"\r\n\r\nkb\r\n--x--\r\n',
            "headers": {"Content-Type": "multipart/form-data; boundary=x"},
        },
        422,
    ),
    ({"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, 422),
    ({"content": b"data", "headers": {"Content-Type": "multipart/form-data"}}, 422),
    ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415),
]


def test_malformed_bodies_are_refused_and_store_nothing(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        for kwargs, status in MALFORMED:
            response = httpx.post(service.url + "/v1/documents", **kwargs)
            assert response.status_code == status, (kwargs, response.text)
            assert set(response.json()["error"]) >= {"status", "code", "message"}
        assert listed(service, {}) == []
        assert not any(dict(run_store(sqlite_url, "document_counts", None)).values())  # type: ignore[call-overload]


def test_malformed_search_and_list_parameters_are_422(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        for response in (
            httpx.post(service.url + "/v1/search", json={"query": ""}),
            httpx.post(service.url + "/v1/search", json={"query": "x", "k": 0}),
            httpx.post(service.url + "/v1/search", json={"query": "x", "mode": "psychic"}),
            httpx.get(service.url + "/v1/search", params={"q": "x", "metadata": "{nope"}),
            httpx.get(service.url + "/v1/search", params={"q": "x", "k": "many"}),
            httpx.get(service.url + "/v1/documents", params={"status": "sleeping"}),
            httpx.get(service.url + "/v1/documents", params={"limit": 0}),
        ):
            assert response.status_code == 422, response.text
            assert error_code(response) == "invalid_request"


# --- names, paths and URLs: the worker's filesystem and network ---------------------------------------


def test_a_hostile_file_name_is_only_a_name(sqlite_url: str, tmp_path: Path) -> None:
    content = b"# Harmless\n\nThe uploaded bytes, not the server's files.\n"
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        posted = httpx.post(
            service.url + "/v1/documents",
            files=[
                ("file", ("../../etc/passwd", content)),
                ("file", ("..\\..\\windows\\win.ini", content + b"2")),
                ("file", ("..", content + b"3")),
            ],
        )
        assert posted.status_code == 202, posted.text
        ids = [a["document_id"] for a in posted.json()["documents"]]
        assert [i.split("@")[0] for i in ids] == ["passwd", "win.ini", "upload"]
        with worker(sqlite_url, tmp_path / "worker.log"):
            docs = [wait_final(service, a["location"], {}) for a in posted.json()["documents"]]
        assert [d["status"] for d in docs] == ["indexed"] * 3, docs
        assert docs[0]["source"] == "upload:passwd"
        chunks = httpx.get(service.url + posted.json()["documents"][0]["location"] + "?chunks=true").json()
        text = " ".join(c["text"] for c in chunks["chunks"])
        assert "uploaded bytes" in text
        assert "root:" not in text


def test_paths_are_refused_unless_roots_are_configured(sqlite_url: str, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "inside.md").write_bytes(MARKDOWN)
    (tmp_path / "outside.md").write_bytes(MARKDOWN)
    with serving(sqlite_url, tmp_path / "serve.log") as service:  # INGESTQ_INGEST_PATH_ROOTS unset
        refused = httpx.post(service.url + "/v1/documents", json={"path": str(kb / "inside.md")})
        assert refused.status_code == 403, refused.text
        assert error_code(refused) == "paths_disabled"
        assert listed(service, {}) == []
    env = {"INGESTQ_INGEST_PATH_ROOTS": str(kb)}
    with serving(sqlite_url, tmp_path / "serve2.log", env=env) as service:
        outside = httpx.post(service.url + "/v1/documents", json={"path": str(tmp_path / "outside.md")})
        assert outside.status_code == 422, outside.text
        sneaky = httpx.post(service.url + "/v1/documents", json={"path": f"{kb}/../outside.md"})
        assert sneaky.status_code == 422, sneaky.text
        assert listed(service, {}) == []
        inside = httpx.post(service.url + "/v1/documents", json={"path": str(kb)})
        assert inside.status_code == 202, inside.text
        assert inside.json()["document_id"] == str((kb / "inside.md").resolve())


def test_a_url_keeps_the_ssrf_guard(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        target = service.url + "/healthz"  # loopback: a worker must refuse to fetch it
        posted = httpx.post(service.url + "/v1/documents", json={"url": target, "collection": "web"})
        assert posted.status_code == 202, posted.text
        assert posted.json()["document_id"] == target
        with worker(sqlite_url, tmp_path / "worker.log"):
            done = wait_final(service, posted.headers["location"], {})
        assert done["status"] == "failed"
        assert "non-public address" in done["last_error"]


# --- delete and reprocess -------------------------------------------------------------------------------


def test_delete_cancels_the_live_job_and_reprocess_queues_again(sqlite_url: str, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        posted = httpx.post(service.url + "/v1/documents", files=[("file", ("a.md", MARKDOWN))])
        location = service.url + posted.headers["location"]
        job_id = posted.json()["job_id"]
        deleted = httpx.delete(location)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["cancelled_jobs"] == [job_id]
        assert httpx.get(location).status_code == 404
        job = run_store(sqlite_url, "job_get", job_id)
        assert isinstance(job, Job)
        assert job.state is JobState.CANCELLED

        posted = httpx.post(service.url + "/v1/documents", files=[("file", ("b.md", MARKDOWN + b"b"))])
        location = service.url + posted.headers["location"]
        with worker(sqlite_url, tmp_path / "worker.log"):
            first = wait_final(service, posted.headers["location"], {})
            assert first["status"] == "indexed"
            again = httpx.post(location + "/reprocess")
            assert again.status_code == 202, again.text
            assert again.json()["job_id"] != posted.json()["job_id"]
            assert again.headers["location"] == posted.headers["location"]
            deadline = time.monotonic() + 60
            while httpx.get(location).json()["job"]["id"] != again.json()["job_id"] or (
                httpx.get(location).json()["job"]["state"] != "succeeded"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        gone = httpx.delete(location)  # indexed: chunks go too
        assert gone.status_code == 200
        assert gone.json()["cancelled_jobs"] == []
        hits = httpx.post(service.url + "/v1/search", json={"query": "Kingfishers", "mode": "text"})
        assert hits.json()["hits"] == []


# --- the same content twice; the same request twice -----------------------------------------------------


def test_the_same_content_in_a_collection_is_one_document(index_database_url: str, tmp_path: Path) -> None:
    url = index_database_url
    with serving(url, tmp_path / "serve.log") as service:
        docs = service.url + "/v1/documents"
        first = httpx.post(docs, files=[("file", ("kingfishers.md", MARKDOWN))], data={"collection": "kb"})
        assert first.status_code == 202, first.text
        # another name, the same bytes: the existing document and its job, nothing queued
        again = httpx.post(docs, files=[("file", ("copy.md", MARKDOWN))], data={"collection": "kb"})
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        assert again.json()["document_id"] == first.json()["document_id"]
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.headers["location"] == first.headers["location"]
        # the same bytes as JSON text, and twice in one request
        text = httpx.post(docs, json={"text": MARKDOWN.decode(), "title": "other", "collection": "kb"})
        assert text.status_code == 200, text.text
        assert text.json()["document_id"] == first.json()["document_id"]
        twice = httpx.post(
            docs,
            files=[
                ("file", ("x.md", b"# New\n\nfresh bytes\n")),
                ("file", ("y.md", b"# New\n\nfresh bytes\n")),
            ],
            data={"collection": "kb"},
        )
        assert twice.status_code == 202, twice.text
        pair = twice.json()["documents"]
        assert pair[0]["document_id"] == pair[1]["document_id"]
        assert [p["duplicate"] for p in pair] == [False, True]
        assert len(listed(service, {}, collection="kb")) == 2
        # dedupe holds within a collection only
        other = httpx.post(docs, files=[("file", ("kingfishers.md", MARKDOWN))], data={"collection": "kb2"})
        assert other.status_code == 202, other.text
        assert other.json()["duplicate"] is False
        assert other.json()["document_id"] == first.json()["document_id"]  # the same id, in two collections
        # one document a page across every collection: none is skipped, though two share an id
        pages: list[tuple[str, str]] = []
        params: dict[str, Any] = {"limit": 1}
        while True:
            page = httpx.get(docs, params=params).json()
            pages += [(d["collection"], d["id"]) for d in page["documents"]]
            if page["next_after"] is None:
                break
            params = {
                "limit": 1,
                "after": page["next_after"],
                "after_collection": page["next_after_collection"],
            }
        assert sorted(pages) == sorted((d["collection"], d["id"]) for d in listed(service, {}))
        assert len(pages) == 3
        # once indexed, a duplicate answers with the indexed document and its finished job
        with worker(url, tmp_path / "worker.log"):
            wait_final(service, first.headers["location"], {})
        late = httpx.post(docs, files=[("file", ("late.md", MARKDOWN))], data={"collection": "kb"})
        assert late.status_code == 200, late.text
        assert late.json()["status"] == "indexed"
        assert late.json()["job_id"] == first.json()["job_id"]


def test_an_idempotency_key_replays_the_first_answer(index_database_url: str, tmp_path: Path) -> None:
    url = index_database_url
    docs_path = "/v1/documents"
    key = {"Idempotency-Key": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"}
    with serving(url, tmp_path / "serve.log", env={"INGESTQ_UPLOAD_MAX_BYTES": "4096"}) as service:
        docs = service.url + docs_path
        # a refused request is not kept: the key can be used once it is fixed
        big = httpx.post(docs, files=[("file", ("big.md", b"b" * 5000))], headers=key)
        assert big.status_code == 413
        first = httpx.post(docs, files=[("file", ("a.md", MARKDOWN))], headers=key)
        assert first.status_code == 202, first.text
        assert "idempotent-replayed" not in first.headers
        # the same files again (httpx picks a new multipart boundary): the first answer, byte for byte
        again = httpx.post(docs, files=[("file", ("a.md", MARKDOWN))], headers=key)
        assert again.status_code == 202
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        # another request under the same key is refused
        other = httpx.post(docs, files=[("file", ("b.md", MARKDOWN + b"more"))], headers=key)
        assert other.status_code == 422
        assert error_code(other) == "idempotency_key_reused"
        assert len(listed(service, {})) == 1
        bad = httpx.post(docs, files=[("file", ("b.md", b"x"))], headers={"Idempotency-Key": "no spaces"})
        assert bad.status_code == 422
        # without a key, the same content is a duplicate (200), not a replay of the 202
        plain = httpx.post(docs, files=[("file", ("a.md", MARKDOWN))])
        assert plain.status_code == 200
    # kept in the database: a restarted server (or another replica) replays it too
    with serving(url, tmp_path / "serve2.log") as service:
        replay = httpx.post(service.url + docs_path, files=[("file", ("a.md", MARKDOWN))], headers=key)
        assert replay.status_code == 202
        assert replay.content == first.content
        jobs = run_store(url, "job_list", JobFilter())
        assert isinstance(jobs, list)
        assert len(jobs) == 1


def test_deleting_a_document_while_its_job_runs_does_not_bring_it_back(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The job is asked to stop, but may reach its commit before its worker hears of it (heartbeats come
    every lease/3): the delete waits for it to end, so no commit writes the document back afterwards."""
    pages = [[f"Page {n} of a long report about herons and their feeding grounds."] * 30 for n in range(400)]
    with serving(sqlite_url, tmp_path / "serve.log") as service:
        posted = httpx.post(service.url + "/v1/documents", files=[("file", ("long.pdf", make_pdf(pages)))])
        location = service.url + posted.headers["location"]
        with worker(sqlite_url, tmp_path / "worker.log"):
            deadline = time.monotonic() + 60
            while httpx.get(location).json()["job"]["stage"] not in ("parse", "chunk", "embed"):
                assert time.monotonic() < deadline  # past reading the document, not yet committed
                time.sleep(0.02)
            deleted = httpx.delete(location, timeout=60)
            assert deleted.status_code == 200, deleted.text
            assert deleted.json()["cancelled_jobs"] == [posted.json()["job_id"]]
            assert deleted.json()["still_running"] == []
            while True:  # (the delete waited for it; without that wait, the job commits after it)
                job = run_store(sqlite_url, "job_get", posted.json()["job_id"])
                assert isinstance(job, Job)
                if job.state is not JobState.RUNNING:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert job.state in (JobState.CANCELLED, JobState.SUCCEEDED)
        assert httpx.get(location).status_code == 404
        assert listed(service, {}) == []
