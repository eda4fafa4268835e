"""The dashboard's defences over real HTTP (`ingestq serve`): sign-in, the session cookie, CSRF and
same-origin checks, read-only mode, security headers, static files, and templates without inline code."""

from __future__ import annotations

import contextlib
import importlib.resources
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import seed
from served import ADMIN, ENV, READER, Served, served_fixture  # noqa: F401 (a fixture)
from service import serving

from ingestq.api.auth import Role, Tokens
from ingestq.api.dashboard.session import COOKIE, Signer
from ingestq.model.job import JobState

PACKAGE = importlib.resources.files("ingestq.api.dashboard")


@contextlib.contextmanager
def signed_in(served: Served, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers={"Origin": served.url}) as client:
        answer = client.post("/dashboard/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/dashboard/jobs")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found, page.text
    return found.group(1)


def test_pages_need_a_sign_in(served: Served) -> None:
    for path in ("/dashboard/", "/dashboard/jobs", "/dashboard/documents", "/dashboard/fragments/overview"):
        answer = httpx.get(served.url + path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/dashboard/login"
    fragment = httpx.get(served.url + "/dashboard/fragments/overview", headers={"HX-Request": "true"})
    assert fragment.status_code == 401
    assert fragment.headers["hx-redirect"] == "/dashboard/login"


def test_the_session_cookie_is_signed_httponly_strict_and_holds_no_token(served: Served) -> None:
    answer = httpx.post(
        served.url + "/dashboard/login", data={"token": ADMIN}, headers={"Origin": served.url}
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http on loopback; over https the cookie is Secure
    value = answer.cookies[COOKIE]
    assert ADMIN not in value
    body = value.split(".")[0]
    assert ADMIN.encode() not in __import__("base64").urlsafe_b64decode(body + "==")
    # Tampering with the role breaks the signature: back to the sign-in page.
    forged = value.replace(value[:4], "AAAA")
    assert httpx.get(served.url + "/dashboard/", cookies={COOKIE: forged}).status_code == 303
    assert httpx.get(served.url + "/dashboard/", cookies={COOKIE: value}).status_code == 200


def test_a_wrong_token_or_a_cross_site_sign_in_is_refused(served: Served) -> None:
    wrong = httpx.post(
        served.url + "/dashboard/login", data={"token": "x" * 30}, headers={"Origin": served.url}
    )
    assert wrong.status_code == 401
    assert COOKIE not in wrong.cookies
    foreign = httpx.post(
        served.url + "/dashboard/login", data={"token": ADMIN}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert COOKIE not in foreign.cookies
    bare = httpx.post(
        served.url + "/dashboard/login", data={"token": ADMIN}
    )  # neither Origin nor Sec-Fetch-Site
    assert bare.status_code == 403


def test_posts_need_the_csrf_token_and_the_same_origin(served: Served) -> None:
    (job,) = seed.fail(served.database_url, kind="csrf.job")
    with signed_in(served, ADMIN) as client:
        token = csrf_of(client)
        form = {"one": f"retry:{job}", "_csrf": token}
        no_token = client.post("/dashboard/jobs/action", data={"one": f"retry:{job}"})
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        stale = client.post("/dashboard/jobs/action", data={**form, "_csrf": "not-the-token"})
        assert stale.status_code == 403
        other_origin = client.post(
            "/dashboard/jobs/action", data=form, headers={"Origin": "https://evil.example"}
        )
        assert other_origin.status_code == 403
        cross_site = client.post("/dashboard/jobs/action", data=form, headers={"Sec-Fetch-Site": "same-site"})
        assert cross_site.status_code == 403
        assert seed.states(served.database_url, [job]) == [JobState.FAILED]
        ok = client.post("/dashboard/jobs/action", data=form, headers={"Sec-Fetch-Site": "same-origin"})
        assert ok.status_code == 303, ok.text
        assert seed.states(served.database_url, [job]) == [JobState.QUEUED]
        # The header form (htmx) works as well as the field.
        token_header = client.post(
            "/dashboard/jobs/action", data={"one": f"cancel:{job}"}, headers={"X-CSRF-Token": token}
        )
        assert token_header.status_code == 303
        assert seed.states(served.database_url, [job]) == [JobState.CANCELLED]


def test_a_read_token_sees_no_action_and_its_posts_are_refused(served: Served) -> None:
    (job,) = seed.fail(served.database_url, kind="readonly.job")
    with signed_in(served, READER) as client:
        page = client.get("/dashboard/jobs")
        assert page.status_code == 200
        assert f'data-job-id="{job}"' in page.text
        assert "retry:" not in page.text
        assert "Retry all matching" not in page.text
        assert "read-only" in page.text
        detail = client.get(f"/dashboard/jobs/{job}")
        assert "retry:" not in detail.text
        forged = client.post("/dashboard/jobs/action", data={"one": f"retry:{job}", "_csrf": csrf_of(client)})
        assert forged.status_code == 403
        assert "read-only" in forged.text
    assert seed.states(served.database_url, [job]) == [JobState.FAILED]


def test_every_page_sends_the_security_headers(served: Served) -> None:
    with signed_in(served, ADMIN) as client:
        for path in (
            "/dashboard/",
            "/dashboard/jobs",
            "/dashboard/failures",
            "/dashboard/login",
            "/dashboard/x",
        ):
            headers = client.get(path).headers
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, path
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "unsafe-eval" not in csp
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"


def test_static_files_come_from_the_package_and_nothing_else(served: Served) -> None:
    for name in ("htmx.min.js", "dashboard.js", "dashboard.css"):
        answer = httpx.get(f"{served.url}/dashboard/static/{name}")
        assert answer.status_code == 200
        assert answer.content == (PACKAGE / "static" / name).read_bytes()
    for name in ("../templates/base.html", "..%2Froutes.py", "routes.py", "x.js"):
        assert httpx.get(f"{served.url}/dashboard/static/{name}").status_code == 404, name


def test_the_assets_ship_with_the_package() -> None:
    """Read through the installed package path, as a wheel install would; and nothing in the package
    folder is git-ignored (hatchling leaves ignored files out of the wheel)."""
    assert "htmx" in (PACKAGE / "static" / "htmx.min.js").read_text()
    assert "Zero-Clause BSD" in (PACKAGE / "static" / "htmx.LICENSE").read_text()
    for name in ("base.html", "overview.html", "jobs.html", "job.html", "documents.html", "login.html"):
        assert (PACKAGE / "templates" / name).is_file(), name
    folder = Path(str(PACKAGE))
    files = [str(p) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    ignored = subprocess.run(["git", "check-ignore", *files], capture_output=True, text=True, cwd=folder)
    assert ignored.stdout == "", ignored.stdout


def test_templates_hold_no_inline_script_or_style_and_never_mark_data_safe() -> None:
    for template in (PACKAGE / "templates").iterdir():
        text = template.read_text()
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "<style" not in text, template.name
        assert " style=" not in text, template.name
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert "hx-on" not in text, template.name


def test_sessions_are_signed_with_a_key_from_every_token() -> None:
    tokens = Tokens.parse(f"admin:{ADMIN},read:{READER}")
    cookie, session = Signer.for_tokens(tokens).issue(Role.READ)
    assert Signer.for_tokens(tokens).verify(cookie) == session  # another replica, or after a restart
    assert Signer.for_tokens(Tokens.parse(f"read:{READER}")).verify(cookie) is None  # a token removed
    assert Signer.for_tokens(tokens).verify(cookie, now=session.expires + 1) is None  # expired
    body, mac = cookie.split(".")
    assert Signer.for_tokens(tokens).verify(f"{body}x.{mac}") is None
    assert Signer.for_tokens(Tokens()).verify(Signer.for_tokens(Tokens()).issue(Role.ADMIN)[0]) is None


def test_read_only_setting_hides_and_refuses_actions_for_admins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    (job,) = seed.fail(url, kind="ro.job")
    env = {**ENV, "INGESTQ_DASHBOARD_READ_ONLY": "true"}
    with serving(url, tmp_path / "serve.log", env=env) as service:
        served = Served(service, url)
        with signed_in(served, ADMIN) as client:
            page = client.get("/dashboard/jobs")
            assert "retry:" not in page.text
            forged = client.post(
                "/dashboard/jobs/action", data={"one": f"retry:{job}", "_csrf": csrf_of(client)}
            )
            assert forged.status_code == 403
    assert seed.states(url, [job]) == [JobState.FAILED]


def test_without_tokens_no_sign_in_but_csrf_and_loopback_host_still_hold(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    (job,) = seed.fail(url, kind="open.job")
    with serving(url, tmp_path / "serve.log", env={"INGESTQ_EMBEDDER": "fake"}) as service:
        with httpx.Client(base_url=service.url, headers={"Origin": service.url}) as client:
            page = client.get("/dashboard/jobs")
            assert page.status_code == 200
            assert COOKIE in client.cookies  # a session for the CSRF token, issued on the first page
            assert "Sign out" not in page.text
            assert client.post("/dashboard/jobs/action", data={"one": f"retry:{job}"}).status_code == 403
            ok = client.post("/dashboard/jobs/action", data={"one": f"retry:{job}", "_csrf": csrf_of(client)})
            assert ok.status_code == 303
        rebound = httpx.get(service.url + "/dashboard/", headers={"Host": "attacker.example:80"})
        assert rebound.status_code == 403
        assert httpx.get(service.url + "/dashboard/login").status_code == 303  # nothing to sign in to
    assert seed.states(url, [job]) == [JobState.QUEUED]


@pytest.mark.parametrize("path", ["/dashboard/jobs/999999", "/dashboard/document?id=nope"])
def test_missing_things_are_a_404_page(served: Served, path: str) -> None:
    with signed_in(served, ADMIN) as client:
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")


def test_queue_max_depth_is_set_from_the_queues_page(served: Served) -> None:
    seed.enqueue(served.database_url, kind="depth.kind", queue="depthq")
    with signed_in(served, ADMIN) as client:
        token = csrf_of(client)
        saved = client.post(
            "/dashboard/queues/max-depth", data={"queue": "depthq", "max_depth": "7", "_csrf": token}
        )
        assert saved.status_code == 303
        page = client.get("/dashboard/queues")
        assert 'value="7"' in page.text
        bad = client.post(
            "/dashboard/queues/max-depth", data={"queue": "depthq", "max_depth": "-1", "_csrf": token}
        )
        assert bad.status_code == 400
        cleared = client.post(
            "/dashboard/queues/max-depth", data={"queue": "depthq", "max_depth": "", "_csrf": token}
        )
        assert cleared.status_code == 303
        assert 'value="7"' not in client.get("/dashboard/queues").text
    with signed_in(served, READER) as client:
        page = client.get("/dashboard/queues")
        assert "depthq" in page.text
        assert "max-depth" not in page.text
        refused = client.post(
            "/dashboard/queues/max-depth",
            data={"queue": "depthq", "max_depth": "1", "_csrf": csrf_of(client)},
        )
        assert refused.status_code == 403


def test_a_queue_is_paused_and_resumed_from_the_queues_page(served: Served) -> None:
    seed.enqueue(served.database_url, kind="pause.kind", queue="pauseq")
    with signed_in(served, ADMIN) as client:
        page = client.get("/dashboard/queues")
        assert 'value="pause"' in page.text
        token = csrf_of(client)
        stale = client.post("/dashboard/queues/pause", data={"queue": "pauseq", "action": "pause"})
        assert stale.status_code == 403  # no CSRF token
        paused = client.post(
            "/dashboard/queues/pause", data={"queue": "pauseq", "action": "pause", "_csrf": token}
        )
        assert paused.status_code == 303
        page = client.get(paused.headers["location"])
        assert "Queue paused" in page.text
        row = page.text[page.text.index('data-queue="pauseq"') :]
        row = row[: row.index("</tr>")]
        assert "chip-paused" in row
        assert 'value="resume"' in row
        bad = client.post(
            "/dashboard/queues/pause", data={"queue": "pauseq", "action": "explode", "_csrf": token}
        )
        assert bad.status_code == 400
    with signed_in(served, READER) as client:
        page = client.get("/dashboard/queues")
        assert "chip-paused" in page.text  # a reader sees the state
        assert "/queues/pause" not in page.text  # but no buttons
        refused = client.post(
            "/dashboard/queues/pause",
            data={"queue": "pauseq", "action": "resume", "_csrf": csrf_of(client)},
        )
        assert refused.status_code == 403
    with signed_in(served, ADMIN) as client:
        resumed = client.post(
            "/dashboard/queues/pause",
            data={"queue": "pauseq", "action": "resume", "_csrf": csrf_of(client)},
        )
        assert resumed.status_code == 303
        page = client.get(resumed.headers["location"])
        assert "Queue resumed" in page.text
        row = page.text[page.text.index('data-queue="pauseq"') :]
        assert "chip-active" in row[: row.index("</tr>")]
