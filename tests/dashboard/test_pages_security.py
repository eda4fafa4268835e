"""The Workers and Purge-old pages' defences over real HTTP (`ingestq serve`): sign-in, security headers,
CSRF and same-origin on the purge, read-only mode, and one clear error page for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pages_seed
from served import ADMIN, ENV, Served, served_fixture  # noqa: F401 (a fixture)
from service import serving
from test_security import csrf_of, signed_in

PAGES = ("/dashboard/workers", "/dashboard/fragments/workers", "/dashboard/jobs/purge")


def test_new_pages_need_a_sign_in_and_send_the_security_headers(served: Served) -> None:
    for path in PAGES:
        answer = httpx.get(served.url + path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/dashboard/login"
    with signed_in(served, ADMIN) as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["cache-control"] == "no-store"


def test_purge_needs_the_csrf_token_and_the_same_origin(served: Served) -> None:
    old = pages_seed.finished(served.database_url, "sec.purge", 2, "secq", age=3 * 86400)
    cutoff = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    form = {"state": "succeeded", "queue": "secq", "cutoff": cutoff}
    with signed_in(served, ADMIN) as client:
        assert client.post("/dashboard/jobs/purge", data=form).status_code == 403
        evil = {"Origin": "https://evil.example"}
        token = csrf_of(client)
        assert (
            client.post("/dashboard/jobs/purge", data={**form, "_csrf": token}, headers=evil).status_code
            == 403
        )
        assert pages_seed.existing(served.database_url, old) == old
        ok = client.post("/dashboard/jobs/purge", data={**form, "_csrf": token, "expected": "3"})
        assert ok.status_code == 303
        # one fewer than the (claimed) count: the notice says so rather than pretending
        assert ok.headers["location"] == "/dashboard/jobs?notice=purgedfewer&n=2"
    assert pages_seed.existing(served.database_url, old) == []


def test_bad_purge_input_is_one_clear_error_and_deletes_nothing(served: Served) -> None:
    old = pages_seed.finished(served.database_url, "bad.purge", 1, "badq", age=3 * 86400)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with signed_in(served, ADMIN) as client:
        token = csrf_of(client)
        for query, needle in (
            ("state=succeeded&age=abc&unit=days", "whole number of hours or days"),
            ("state=succeeded&age=1&unit=weeks", "hours or days"),
            ("state=succeeded&age=999999999&unit=days", "at most ten years"),
        ):
            answer = client.get("/dashboard/jobs/purge?" + query)
            assert answer.status_code == 400, query
            assert needle in answer.text
        for form, needle in (
            ({"state": "succeeded", "cutoff": "yesterday"}, "malformed"),
            ({"state": "succeeded", "cutoff": "2030-01-01T00:00:00"}, "time zone"),
            ({"state": "succeeded", "cutoff": future}, "in the past"),
            ({"state": "queued", "cutoff": "2020-01-01T00:00:00+00:00"}, "at least one finished state"),
        ):
            answer = client.post("/dashboard/jobs/purge", data={**form, "_csrf": token})
            assert answer.status_code == 400, form
            assert needle in answer.text
            assert "Traceback" not in answer.text
    assert pages_seed.existing(served.database_url, old) == old


def test_read_only_setting_hides_and_refuses_the_purge_for_admins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    old = pages_seed.finished(url, "ro.purge", 2, "roq", age=3 * 86400)
    env = {**ENV, "INGESTQ_DASHBOARD_READ_ONLY": "true"}
    with (
        serving(url, tmp_path / "serve.log", env=env) as service,
        signed_in(Served(service, url), ADMIN) as client,
    ):
        page = client.get("/dashboard/jobs/purge?state=succeeded&age=1&unit=days")
        assert 'data-count="2"' in page.text
        assert "purge-confirm" not in page.text
        cutoff = datetime.now(UTC).isoformat()
        form = {"state": "succeeded", "cutoff": cutoff, "_csrf": csrf_of(client)}
        assert client.post("/dashboard/jobs/purge", data=form).status_code == 403
    assert pages_seed.existing(url, old) == old
