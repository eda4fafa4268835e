"""The dashboard in a real browser (Debian's chromium driven by Playwright; never `playwright install`).

Skipped, with the reason, when /usr/bin/chromium or the playwright package is missing; `.ci/run`
installs chromium so that CI runs them. Set INGESTQ_TEST_SCREENSHOTS=<dir> to also save a PNG of each
page (docs/dashboard/ holds the committed ones).
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import seed
from served import ADMIN, ENV, READER, Served, served_fixture  # noqa: F401 (a fixture)
from service import serving

from ingestq.model.job import JobState

CHROMIUM = Path(os.environ.get("INGESTQ_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)

Page = Any  # playwright.sync_api.Page (kept loose: the module may be absent at type-check time)
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", on_dialog)
    opened.dialogs = dialogs
    yield opened
    context.close()


def sign_in(page: Page, served: Served, token: str = ADMIN) -> None:
    page.goto(served.url + "/dashboard/")
    assert page.url.endswith("/dashboard/login")  # every page needs a sign-in first
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(served.url + "/dashboard/")


def test_sign_in_is_required_and_a_wrong_token_is_refused(page: Page, served: Served) -> None:
    page.goto(served.url + "/dashboard/jobs")
    assert page.url.endswith("/dashboard/login")
    page.fill("#token", "not-a-valid-token-at-all")
    page.click("button[type=submit]")
    assert "That token is not valid." in page.inner_text("main")
    page.fill("#token", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_url(served.url + "/dashboard/")
    assert page.inner_text("h1") == "Overview"
    cookies = page.context.cookies()
    assert [c["httpOnly"] for c in cookies] == [True]
    assert ADMIN not in cookies[0]["value"]
    page.click("text=Sign out")
    page.wait_for_url("**/dashboard/login?notice=signedout")
    page.goto(served.url + "/dashboard/")
    assert page.url.endswith("/dashboard/login")


def test_overview_counts_change_without_a_reload(page: Page, served: Served) -> None:
    sign_in(page, served)
    before = int(page.inner_text('[data-total="queued"]'))
    page.evaluate("window.__sameDocument = true")
    seed.enqueue(served.database_url, kind="live.job", n=3, queue="live")
    # Polled from Python: a wait_for_function string would need eval, which the page's CSP forbids.
    sync_api.expect(page.locator('[data-total="queued"]')).to_have_text(str(before + 3), timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True  # refreshed in place, not reloaded
    assert page.inner_text('tr[data-queue="live"] td[data-state="queued"]') == "3"


def test_polling_pauses_while_the_tab_is_hidden(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(500)  # a refresh already under way may finish
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/fragments/" in r.url else None)
    page.wait_for_timeout(4_500)
    assert requests == []
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(500)
    assert requests, "visible again: refreshed at once"


def test_retry_a_failed_job_from_the_jobs_page(page: Page, served: Served) -> None:
    (job,) = seed.fail(served.database_url, kind="retry.one", error="smtp timeout")
    sign_in(page, served)
    page.goto(served.url + "/dashboard/jobs?state=failed&kind=retry.one")
    row = page.locator(f'tr[data-job-id="{job}"]')
    assert "failed" in row.inner_text()
    row.locator("button", has_text="Retry").click()
    page.wait_for_load_state()
    assert "Retried 1 job(s)." in page.inner_text(".notice")
    assert seed.states(served.database_url, [job]) == [JobState.QUEUED]


def test_pause_and_resume_a_queue_from_the_queues_page(page: Page, served: Served) -> None:
    seed.enqueue(served.database_url, kind="pause.browser", queue="browserq")
    sign_in(page, served)
    page.goto(served.url + "/dashboard/queues")
    row = page.locator('tr[data-queue="browserq"]')
    assert "active" in row.inner_text()
    row.locator("button", has_text="Pause").click()
    page.wait_for_load_state()
    assert "Queue paused" in page.inner_text(".notice")
    assert "paused" in row.inner_text()
    row.locator("button", has_text="Resume").click()
    page.wait_for_load_state()
    assert "Queue resumed" in page.inner_text(".notice")
    assert "active" in row.inner_text()
    assert row.locator("button", has_text="Pause").count() == 1


def test_bulk_retry_by_filter_shows_the_count_first(page: Page, served: Served) -> None:
    ids = seed.fail(served.database_url, kind="bulk.kind", n=4, error="quota exceeded")
    (other,) = seed.fail(served.database_url, kind="bulk.other")
    sign_in(page, served)
    page.goto(served.url + "/dashboard/jobs?state=failed&kind=bulk.kind")
    page.click("#bulk-retry-all")
    assert "4 job(s) match" in page.inner_text("#bulk-count")
    assert seed.states(served.database_url, ids) == [JobState.FAILED] * 4  # nothing done yet
    page.click("#bulk-confirm")
    page.wait_for_load_state()
    assert "Retried 4 job(s)." in page.inner_text(".notice")
    assert seed.states(served.database_url, ids) == [JobState.QUEUED] * 4
    assert seed.states(served.database_url, [other]) == [JobState.FAILED]


def test_selected_rows_show_their_count_on_the_buttons(page: Page, served: Served) -> None:
    ids = seed.fail(served.database_url, kind="select.kind", n=3)
    sign_in(page, served)
    page.goto(served.url + "/dashboard/jobs?kind=select.kind")
    button = page.locator('button[name="action"][value="retry"]')
    assert button.is_disabled()
    for job in ids[:2]:
        page.check(f'tr[data-job-id="{job}"] input[name="ids"]')
    assert button.inner_text() == "Retry 2 selected"
    button.click()
    page.wait_for_load_state()
    assert "Retried 2 job(s)." in page.inner_text(".notice")
    assert sorted(seed.states(served.database_url, ids)) == sorted(
        [JobState.QUEUED, JobState.QUEUED, JobState.FAILED]
    )


def test_hostile_document_titles_and_text_render_as_text(page: Page, served: Served) -> None:
    seed.document(
        served.database_url,
        "hostile-doc",
        HOSTILE,
        'quarterly report <img src=x onerror="alert(2)"> numbers',
        {"note": "<b onmouseover=alert(3)>x</b>"},
    )
    sign_in(page, served)
    page.goto(served.url + "/dashboard/documents")
    assert page.get_by_text(HOSTILE).first.is_visible()
    page.get_by_text(HOSTILE).first.click()
    page.wait_for_url("**/dashboard/document?*")
    assert page.inner_text("#doc-title") == HOSTILE
    assert '<img src=x onerror="alert(2)">' in page.inner_text(".chunk-text")
    page.goto(served.url + "/dashboard/search?q=quarterly+report")
    assert page.locator(".hit-title").first.inner_text() == HOSTILE
    assert "page 3" in page.inner_text(".hit")
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator("img[src=x]").count() == 0


def test_a_read_token_sees_no_actions_and_a_forged_post_is_refused(page: Page, served: Served) -> None:
    (job,) = seed.fail(served.database_url, kind="reader.kind")
    sign_in(page, served, READER)
    page.goto(served.url + "/dashboard/jobs?kind=reader.kind")
    assert page.locator(f'tr[data-job-id="{job}"]').is_visible()
    assert page.locator("button", has_text="Retry").count() == 0
    assert page.locator("#bulk-retry-all").count() == 0
    assert page.locator(".chip-readonly").is_visible()
    status = page.evaluate(
        """async (job) => {
            const body = new URLSearchParams({one: `retry:${job}`,
                _csrf: document.querySelector('meta[name=csrf-token]').content});
            const answer = await fetch('/dashboard/jobs/action', {method: 'POST', body});
            return answer.status;
        }""",
        job,
    )
    assert status == 403
    assert seed.states(served.database_url, [job]) == [JobState.FAILED]


class _Evil(http.server.BaseHTTPRequestHandler):
    """Another origin's page that posts a form to the dashboard (with a stolen CSRF token even)."""

    target = ""
    token = ""

    def do_GET(self) -> None:
        body = (
            f'<form id="f" method="post" action="{self.target}/dashboard/jobs/action">'
            f'<input name="one" value="{self.path.strip("/")}">'
            f'<input name="_csrf" value="{self.token}"></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_cross_origin_form_is_refused_even_with_the_csrf_token(page: Page, served: Served) -> None:
    (job,) = seed.fail(served.database_url, kind="evil.kind")
    sign_in(page, served)
    _Evil.target = served.url
    _Evil.token = page.get_attribute('meta[name="csrf-token"]', "content") or ""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with page.expect_navigation(url="**/dashboard/jobs/action"):
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/retry:{job}")
        assert "did not come from the dashboard" in page.inner_text("main")
    finally:
        server.shutdown()
        server.server_close()
    assert seed.states(served.database_url, [job]) == [JobState.FAILED]


def test_job_detail_shows_payload_errors_and_screenshots(page: Page, served: Served, browser: Any) -> None:
    (job,) = seed.fail(served.database_url, kind="detail.kind", error="ValueError: bad <input>\n  at line 3")
    sign_in(page, served)
    page.goto(f"{served.url}/dashboard/jobs/{job}")
    assert '"n": 0' in page.inner_text("#job-payload")
    assert "ValueError: bad <input>" in page.inner_text("#job-live")
    page.goto(served.url + "/dashboard/failures")
    assert "ValueError: bad <input>" in page.inner_text("#failure-groups")
    shots = os.environ.get("INGESTQ_TEST_SCREENSHOTS")
    if not shots:
        return
    out = Path(shots)
    out.mkdir(parents=True, exist_ok=True)
    seed.enqueue(served.database_url, kind="ingestq.probe", n=5, queue="default")
    pages = {
        "overview": "/dashboard/",
        "jobs": "/dashboard/jobs",
        "job": f"/dashboard/jobs/{job}",
        "bulk-confirm": "/dashboard/jobs/bulk?action=retry&state=failed",
        "failures": "/dashboard/failures",
        "queues": "/dashboard/queues",
        "documents": "/dashboard/documents",
        "document": "/dashboard/document?collection=default&id=hostile-doc",
        "search": "/dashboard/search?q=quarterly+report",
    }
    for name, path in pages.items():
        page.goto(served.url + path)
        page.screenshot(path=str(out / f"{name}-desktop.png"), full_page=True)
    page.context.clear_cookies()
    page.goto(served.url + "/dashboard/login")
    page.screenshot(path=str(out / "login-desktop.png"))
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    small = phone.new_page()
    sign_in(small, served)
    small.screenshot(path=str(out / "overview-phone.png"), full_page=True)
    small.goto(served.url + "/dashboard/jobs")
    small.screenshot(path=str(out / "jobs-phone.png"), full_page=True)
    phone.close()


def test_upload_shows_the_document_go_from_pending_to_indexed(page: Page, tmp_path: Path) -> None:
    """A served dashboard with its own worker: the upload lands on the document's page, which refreshes
    itself until the worker has indexed it."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with serving(url, tmp_path / "serve.log", "--with-worker", env=ENV) as service:
        served = Served(service, url)
        sign_in(page, served)
        page.goto(served.url + "/dashboard/documents")
        sample = tmp_path / "herons.md"
        sample.write_text("# Herons <em>wait</em>\n\nGrey herons wait motionless at the water's edge.\n")
        page.set_input_files("#upload-file", str(sample))
        page.click("#upload-form button[type=submit]")
        page.wait_for_url("**/dashboard/document?*")
        assert "pending" in page.inner_text("#document-live .chip") or "indexed" in page.inner_text(
            "#document-live .chip"
        )
        page.evaluate("window.__sameDocument = true")
        sync_api.expect(page.locator("#document-live .chip").first).to_have_text("indexed", timeout=60_000)
        assert page.evaluate("window.__sameDocument") is True
        assert "Grey herons wait motionless" in page.inner_text(".chunk-text")
        assert page.dialogs == []
