"""Attacks on the HTTP service, over real HTTP against one real `ingestq serve --with-worker` process:
SSRF through URL ingestion (redirects, encodings), hostile upload names, tokens in logs (trace-level
logging, access log on), security headers, and request body caps (413 before the body is read).

The server takes URLs only from public addresses, except 127.0.0.2, which INGESTQ_FETCH_ALLOW_NETWORKS
names so that a local listener can play a public server that redirects inward. Traps listen on
127.0.0.1 and [::1]: no request of these tests may reach them.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from service import Service, serving
from traps import PUBLIC_STANDIN, Listener

ADMIN = "admin-token-security-0123456789"
READER = "read-token-security-0123456789"
RETIRED = "retired-token-security-98765"  # not configured: a wrong token is a secret all the same
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
JSON_CAP = 64 * 1024
ENV = {
    "INGESTQ_API_TOKENS": f"admin:{ADMIN},read:{READER}",
    "INGESTQ_EMBEDDER": "fake",
    "INGESTQ_FETCH_ALLOW_NETWORKS": f"{PUBLIC_STANDIN}/32",
    "INGESTQ_FETCH_TIMEOUT": "10",
    "INGESTQ_API_JSON_MAX_BYTES": str(JSON_CAP),
}


@dataclass
class Setup:
    service: Service
    public: Listener
    v4: Listener
    v6: Listener


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("security")
    listeners = [Listener(PUBLIC_STANDIN).start(), Listener("127.0.0.1").start(), Listener("::1").start()]
    try:
        with serving(
            f"sqlite:///{root / 'q.db'}", root / "serve.log", "--with-worker", "--log-level", "trace", env=ENV
        ) as service:
            yield Setup(service, *listeners)
    finally:
        for listener in listeners:
            listener.stop()


def _final(service: Service, location: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(service.url + location, headers=AS_ADMIN).json()
        if body["status"] in ("indexed", "failed", "quarantined"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


# --- SSRF ------------------------------------------------------------------------------------------------


def test_urls_that_reach_inward_fail_for_good_and_fetch_nothing(setup: Setup) -> None:
    trap4, trap6 = setup.v4.port, setup.v6.port
    redirect = f"{setup.public.base}/to/"
    urls = [
        redirect + f"http://127.0.0.1:{trap4}/admin",
        redirect + f"http://[::1]:{trap6}/admin",
        redirect + "http://169.254.169.254/latest/meta-data/iam/",
        redirect + f"http://2130706433:{trap4}/",
        redirect + f"http://0x7f.1:{trap4}/",
        redirect + f"http://[::ffff:127.0.0.1]:{trap4}/",
        redirect + f"http://localhost.:{trap4}/",
        redirect + "gopher://127.0.0.1:6379/_FLUSHALL",
        redirect + f"http://0177.0.0.1:{trap4}/",
        f"http://[64:ff9b::7f00:1]:{trap4}/",  # NAT64 around 127.0.0.1, straight in
        f"http://[2002:7f00:1::]:{trap4}/",  # 6to4 around 127.0.0.1
        f"http://public.example@127.0.0.1:{trap4}/",
        f"http://127.1:{trap4}/",
    ]
    locations = []
    for url in urls:
        posted = httpx.post(
            setup.service.url + "/v1/documents", json={"url": url, "collection": "ssrf"}, headers=AS_ADMIN
        )
        assert posted.status_code == 202, posted.text
        locations.append(posted.json()["documents"][0]["location"])
    for url, location in zip(urls, locations, strict=True):
        doc = _final(setup.service, location)
        assert doc["status"] == "failed", (url, doc)
        assert doc["job"]["state"] == "failed", (url, doc)
        assert doc["job"]["attempt"] == 1, (url, doc)  # permanent: never retried
        error = doc["last_error"]
        assert "\n" not in error
        assert re.search(r"refusing to fetch|only http and https|invalid URL", error), (url, error)
        assert "Traceback" not in error
    assert setup.v4.seen == []
    assert setup.v6.seen == []
    for scheme in ("file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/x"):
        refused = httpx.post(setup.service.url + "/v1/documents", json={"url": scheme}, headers=AS_ADMIN)
        assert refused.status_code == 422, refused.text


def test_the_allowed_network_still_ingests(setup: Setup) -> None:
    """The seam the tests above rely on lets 127.0.0.2 through: the refusals are the guard's doing."""
    posted = httpx.post(
        setup.service.url + "/v1/documents",
        json={"url": f"{setup.public.base}/page.md", "collection": "ssrf-ok"},
        headers=AS_ADMIN,
    )
    assert posted.status_code == 202, posted.text
    doc = _final(setup.service, posted.json()["documents"][0]["location"])
    assert doc["status"] == "indexed", doc


# --- upload names ----------------------------------------------------------------------------------------


def test_hostile_upload_names_are_display_names_and_escaped_in_the_dashboard(setup: Setup) -> None:
    names = {
        "../../../../etc/passwd": "passwd",
        "/etc/cron.d/evil": "evil",
        "..\\..\\Windows\\System32\\drivers\\etc\\hosts": "hosts",
        "evil\u202egpj.md": "evilgpj.md",
        "..\uff0f..\uff0fetc\uff0fshadow": "shadow",
        "a" * 3000 + ".md": ("a" * 3000 + ".md")[-200:],  # kept: the last 200 characters
        "<img src=x onerror=alert(1)>.md": "<img src=x onerror=alert(1)>.md",
    }
    files = [("file", (name, f"# Upload {i}\n\nbody {i}\n".encode())) for i, name in enumerate(names)]
    posted = httpx.post(
        setup.service.url + "/v1/documents", files=files, data={"collection": "names"}, headers=AS_ADMIN
    )
    assert posted.status_code == 202, posted.text
    accepted = posted.json()["documents"]
    for (given, kept), item in zip(names.items(), accepted, strict=True):
        detail = httpx.get(setup.service.url + item["location"], headers=AS_ADMIN).json()
        assert detail["source"] == f"upload:{kept}", given
    with httpx.Client(base_url=setup.service.url, headers={"Origin": setup.service.url}) as client:
        assert client.post("/dashboard/login", data={"token": READER}).status_code == 303
        page = client.get("/dashboard/documents", params={"collection": "names"})
        assert page.status_code == 200
        assert "<img src=x" not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "\u202e" not in page.text
    # a NUL byte, sent raw (httpx would percent-encode it)
    boundary = "sec-boundary-7f3a"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="nul\x00by\\te.md"\r\n\r\n'
        f"# NUL\n\nraw nul\n\r\n--{boundary}--\r\n"
    ).encode()
    raw = httpx.post(
        setup.service.url + "/v1/documents",
        content=body,
        headers={**AS_ADMIN, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert raw.status_code == 202, raw.text
    detail = httpx.get(setup.service.url + raw.json()["documents"][0]["location"], headers=AS_ADMIN).json()
    assert detail["source"] in ("upload:te.md", "upload:nulbyte.md"), detail["source"]
    assert "\x00" not in detail["source"]
    # a name longer than a multipart header may be (4 KiB) is a clean one-line refusal
    huge = httpx.post(
        setup.service.url + "/v1/documents", files=[("file", ("b" * 10_000, b"x"))], headers=AS_ADMIN
    )
    assert huge.status_code == 422
    assert "header size" in huge.json()["error"]["message"]


# --- tokens never logged ---------------------------------------------------------------------------------


def test_tokens_never_reach_the_logs(setup: Setup) -> None:
    url = setup.service.url
    assert httpx.get(url + "/v1/jobs", headers=AS_ADMIN).status_code == 200
    assert httpx.get(url + "/v1/jobs", headers={"Authorization": f"Bearer {RETIRED}"}).status_code == 401
    # The API reads tokens from the Authorization header only: in a URL they authorize nothing...
    assert httpx.get(url + "/v1/jobs", params={"token": ADMIN}).status_code == 401
    assert httpx.get(url + "/v1/jobs", params={"access_token": READER, "state": "failed"}).status_code == 401
    assert httpx.get(url + "/v1/jobs", params={"api_key": RETIRED}).status_code == 401
    assert httpx.get(url + f"/v1/jobs/{ADMIN}", headers=AS_ADMIN).status_code == 422
    assert httpx.get(url + "/v1/jobs", headers={"Cookie": f"token={ADMIN}"}).status_code == 401
    # ...and a sign-in posts the token once, in a form body
    with httpx.Client(base_url=url, headers={"Origin": url}) as client:
        assert client.post("/dashboard/login", data={"token": RETIRED}).status_code == 401
        assert client.post("/dashboard/login", data={"token": ADMIN}).status_code == 303
        assert client.get("/dashboard/jobs").status_code == 200
    time.sleep(0.3)  # the access log line is written after the answer
    logged = setup.service.logged()
    for secret in (ADMIN, READER, RETIRED):
        assert secret not in logged
    # the lines are there, the secrets replaced: the access log (query strings) and trace (headers) ran
    assert "GET /v1/jobs?token=[redacted] HTTP/1.1" in logged
    assert "access_token=[redacted]&state=failed" in logged
    assert "api_key=[redacted]" in logged
    assert "GET /v1/jobs/[redacted] HTTP/1.1" in logged
    assert "'query_string': b'token=[redacted]'" in logged  # trace: each request's scope


# --- security headers ------------------------------------------------------------------------------------


def _api_headers(headers: httpx.Headers, what: str) -> None:
    assert headers["x-content-type-options"] == "nosniff", what
    assert headers["referrer-policy"] == "no-referrer", what
    assert headers["cache-control"] == "no-store", what
    assert headers["x-frame-options"] == "DENY", what
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp, what
    assert "frame-ancestors 'none'" in csp, what


def test_every_api_answer_sends_the_security_headers(setup: Setup) -> None:
    url = setup.service.url
    answers = {
        "list": httpx.get(url + "/v1/jobs", headers=AS_ADMIN),
        "401": httpx.get(url + "/v1/jobs"),
        "404": httpx.get(url + "/v1/nothing-here", headers=AS_ADMIN),
        "422": httpx.post(url + "/v1/jobs", json={"kind": 1}, headers=AS_ADMIN),
        "413": httpx.post(url + "/v1/jobs", content=b"{" + b" " * JSON_CAP + b"}", headers=AS_ADMIN),
        "healthz": httpx.get(url + "/healthz"),
        "metrics": httpx.get(url + "/metrics"),
        "openapi": httpx.get(url + "/openapi.json"),
    }
    for what, answer in answers.items():
        _api_headers(answer.headers, what)
    docs = httpx.get(url + "/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_dashboard_pages_keep_their_policy_and_are_never_cached(setup: Setup) -> None:
    url = setup.service.url
    with httpx.Client(base_url=url, headers={"Origin": url}) as client:
        login = client.get("/dashboard/login")
        assert client.post("/dashboard/login", data={"token": ADMIN}).status_code == 303
        for answer in (login, client.get("/dashboard/"), client.get("/dashboard/jobs")):
            headers = answer.headers
            assert "script-src 'self'" in headers["content-security-policy"]
            assert "unsafe-inline" not in headers["content-security-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["referrer-policy"] == "same-origin"
            assert headers["cache-control"] == "no-store"
            assert headers["x-content-type-options"] == "nosniff"
        static = client.get("/dashboard/static/dashboard.js")
        assert static.headers["cache-control"].startswith("public")  # no data in it: cacheable


# --- request body caps -----------------------------------------------------------------------------------


def _raw(service: Service, head: str, body_parts: list[bytes]) -> tuple[str, int]:
    """Send a request's head and then body parts on a raw socket, stopping as soon as an answer comes;
    returns the answer's status line and how many body bytes went out before it."""
    host, port = service.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        sent = 0
        sock.setblocking(False)
        for part in body_parts:
            try:
                answer = sock.recv(65536)
            except BlockingIOError:
                answer = b""
            if answer:
                return answer.split(b"\r\n", 1)[0].decode(), sent
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                break
            sent += len(part)
            time.sleep(0.002)
        sock.settimeout(10)  # without the cap, the server waits for the rest: a failure, not a hang
        answer = sock.recv(65536)
        return answer.split(b"\r\n", 1)[0].decode(), sent


def test_a_huge_declared_json_body_is_refused_before_it_is_read(setup: Setup) -> None:
    head = (
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {1024**3}\r\n\r\n"
    )
    status, sent = _raw(setup.service, head, [b"{" + b" " * 1023])  # 1 KiB of the promised 1 GiB
    assert status == "HTTP/1.1 413 Request Entity Too Large", status
    assert sent <= 1024


def test_a_chunked_json_body_is_cut_off_at_the_cap(setup: Setup) -> None:
    head = (
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b" " * 8192
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    status, sent = _raw(setup.service, head, [chunk] * 1000)  # 8 MiB offered, never the last chunk
    assert status == "HTTP/1.1 413 Request Entity Too Large", status
    assert sent < 4 * JSON_CAP


def test_the_json_cap_is_the_setting_and_uploads_keep_their_own(setup: Setup) -> None:
    url = setup.service.url
    padding = "x" * (JSON_CAP - 1024)
    under = httpx.post(
        url + "/v1/jobs", json={"kind": "ingestq.probe", "payload": {"p": padding}}, headers=AS_ADMIN
    )
    assert under.status_code == 201, under.text
    over = httpx.post(
        url + "/v1/jobs", json={"kind": "ingestq.probe", "payload": {"p": padding * 2}}, headers=AS_ADMIN
    )
    assert over.status_code == 413, over.text
    assert over.json()["error"]["code"] == "too_large"
    assert "INGESTQ_API_JSON_MAX_BYTES" in over.json()["error"]["message"]
    # a document's text is not a JSON body of the small kind: INGESTQ_UPLOAD_MAX_BYTES applies there
    text = httpx.post(
        url + "/v1/documents",
        json={"text": "# Long\n\n" + "word " * JSON_CAP, "collection": "long"},
        headers=AS_ADMIN,
    )
    assert text.status_code == 202, text.text
