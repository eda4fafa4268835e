"""`ingestq serve` over real HTTP: health, readiness, metrics, auth closed by default, one error shape."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from service import INGESTQ, serving

ADMIN = "admin-token-0123456789"
READER = "read-token-0123456789ab"
TOKENS = f"admin:{ADMIN},read:{READER}"


def test_health_readiness_and_metrics_answer(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "serve.log") as service:
        assert httpx.get(service.url + "/healthz").json() == {"status": "ok"}
        ready = httpx.get(service.url + "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        metrics = httpx.get(service.url + "/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE ingestq_workers gauge" in metrics.text
        assert "ingestq_workers 0.0" in metrics.text


def test_unknown_paths_and_methods_get_the_json_error_shape(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "serve.log") as service:
        missing = httpx.get(service.url + "/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong = httpx.post(service.url + "/healthz")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["status"] == 405


def test_tokens_are_required_and_roles_enforced(tmp_path: Path) -> None:
    env = {"INGESTQ_API_TOKENS": TOKENS}
    with serving(f"sqlite:///{tmp_path / 'q.db'}", tmp_path / "serve.log", env=env) as service:
        assert httpx.get(service.url + "/healthz").status_code == 200  # probes need no token
        anonymous = httpx.get(service.url + "/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json()["error"]["code"] == "unauthorized"
        wrong = httpx.get(service.url + "/metrics", headers={"Authorization": "Bearer not-a-token-at-all"})
        assert wrong.status_code == 401
        reader = httpx.get(service.url + "/metrics", headers={"Authorization": f"Bearer {READER}"})
        assert reader.status_code == 200
    assert ADMIN not in service.logged()
    assert READER not in service.logged()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_public_address_without_a_token_refuses_to_start(tmp_path: Path, host: str) -> None:
    result = subprocess.run(
        [INGESTQ, "--db", f"sqlite:///{tmp_path / 'q.db'}", "serve", "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "without a token" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_malformed_token_setting_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [INGESTQ, "--db", f"sqlite:///{tmp_path / 'q.db'}", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "INGESTQ_API_TOKENS": "owner:short"},
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "ROLE:TOKEN" in result.stderr
