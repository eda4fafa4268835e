"""`INGESTQ_UPLOADS_IN_FLIGHT`: past the cap a new upload gets 503 `busy` with Retry-After before its body
is read, and a slot comes back however the request holding it ends (answered, or the client gone
mid-body). A real `ingestq serve` over real sockets."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import httpx
from service import serving

BOUNDARY = "b0undary"


def _head(port: int, length: int) -> bytes:
    return (
        f"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _body(text: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{text}.md"\r\n'
        f"Content-Type: text/markdown\r\n\r\n# {text}\n\nsome words\r\n--{BOUNDARY}--\r\n"
    ).encode()


def _post(http: httpx.Client, text: str) -> httpx.Response:
    return http.post(
        "/v1/documents",
        content=_body(text),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def _held(port: int, text: str) -> tuple[socket.socket, bytes]:
    """An upload whose headers and first bytes are sent, the rest held back."""
    body = _body(text)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(_head(port, len(body)) + body[:20])
    return sock, body[20:]


def _hold(port: int, http: httpx.Client, text: str) -> tuple[socket.socket, bytes, httpx.Response]:
    """An upload that holds the one slot (headers and first bytes sent, the rest held back), and the
    first refusal of another upload because of it. The held upload may itself be refused: its headers
    can arrive while one of the probes holds the slot (CI saw it). It is then sent again."""
    deadline = time.monotonic() + 30
    attempt = 0
    sock, rest = _held(port, f"{text}-{attempt}")
    try:
        while True:
            assert time.monotonic() < deadline, "no upload was refused in 30 s"
            r = _post(http, f"probe-{time.monotonic_ns()}")
            if r.status_code == 503:
                return sock, rest, r
            assert r.status_code == 202, r.text  # admitted before the held one was: try again
            if select.select([sock], [], [], 0.05)[0]:  # the held upload was answered: refused meanwhile
                answer = sock.recv(65536).decode()
                assert answer.startswith("HTTP/1.1 503"), answer
                sock.close()
                attempt += 1
                sock, rest = _held(port, f"{text}-{attempt}")
    except BaseException:
        sock.close()  # not left to the garbage collector: its ResourceWarning failed the next test in CI
        raise


def test_past_the_cap_an_upload_is_refused_until_a_slot_is_free(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with serving(url, tmp_path / "serve.log", env={"INGESTQ_UPLOADS_IN_FLIGHT": "1"}) as service:
        port = int(service.url.rsplit(":", 1)[1])
        with httpx.Client(base_url=service.url, timeout=30) as http:
            sock, rest, refused = _hold(port, http, "held")
            try:
                assert refused.headers["retry-after"] == "1"
                assert refused.json()["error"]["code"] == "busy"
                sock.sendall(rest)  # the held upload completes and frees its slot
                answer = sock.recv(65536).decode()
                assert answer.startswith("HTTP/1.1 202"), answer
            finally:
                sock.close()
            assert _post(http, "after").status_code == 202

            gone, _, _ = _hold(port, http, "abandoned")
            gone.close()  # the client leaves mid-body: the slot must come back
            deadline = time.monotonic() + 30
            while (r := _post(http, f"again-{time.monotonic_ns()}")).status_code == 503:
                assert time.monotonic() < deadline, "the abandoned upload kept its slot"
                time.sleep(0.05)
            assert r.status_code == 202, r.text
