"""Wrong tokens over real HTTP: past INGESTQ_AUTH_MAX_FAILURES from one address, the dashboard's sign-in
and the API answer 429 with Retry-After, without comparing the token, until the window lets the address
try again; a request with no token is never counted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service import Service, serving

ADMIN = "admin-token-failures-0123456789"
WRONG = "wrong-token-failures-0123456789"
WINDOW = 4
ENV = {
    "INGESTQ_API_TOKENS": f"admin:{ADMIN}",
    "INGESTQ_EMBEDDER": "fake",
    "INGESTQ_AUTH_MAX_FAILURES": "3",
    "INGESTQ_AUTH_FAILURE_WINDOW": str(WINDOW),
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with serving(f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "serve.log", env=ENV) as served:
        yield served


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sign_in(service: Service, token: str) -> httpx.Response:
    return httpx.post(
        service.url + "/dashboard/login", data={"token": token}, headers={"Origin": service.url}
    )


def _wait_out(answer: httpx.Response) -> None:
    wait = int(answer.headers["retry-after"])
    assert 1 <= wait <= WINDOW
    time.sleep(wait + 0.2)  # the window is time: nothing to wait on but the clock


def test_wrong_bearer_tokens_lock_the_address_out_of_the_api(service: Service) -> None:
    stats = service.url + "/v1/stats"
    for _ in range(10):  # no token at all: not a guess
        assert httpx.get(stats).status_code == 401
    assert httpx.get(stats, headers=_bearer(ADMIN)).status_code == 200
    for _ in range(3):
        assert httpx.get(stats, headers=_bearer(WRONG)).status_code == 401
    refused = httpx.get(stats, headers=_bearer(ADMIN))  # even the right one is not compared now
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_failed_attempts"
    assert httpx.get(stats).status_code == 401  # no token: still the plain answer
    _wait_out(refused)
    assert httpx.get(stats, headers=_bearer(ADMIN)).status_code == 200


def test_wrong_sign_ins_lock_the_address_out_of_the_dashboard_and_the_api(service: Service) -> None:
    for _ in range(3):
        assert _sign_in(service, WRONG).status_code == 401
    refused = _sign_in(service, ADMIN)
    assert refused.status_code == 429, refused.text
    assert "Too many wrong tokens" in refused.text
    assert "set-cookie" not in refused.headers
    assert httpx.get(service.url + "/v1/stats", headers=_bearer(ADMIN)).status_code == 429
    _wait_out(refused)
    signed_in = _sign_in(service, ADMIN)
    assert signed_in.status_code == 303, signed_in.text
    assert "set-cookie" in signed_in.headers
