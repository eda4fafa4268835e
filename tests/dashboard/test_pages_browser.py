"""The Overview throughput, Workers and Purge-old pages in a real browser (Debian's chromium via
Playwright), against a real `ingestq serve` (uvicorn) and a real `ingestq worker` process.

Set INGESTQ_TEST_SCREENSHOTS=<dir> to save every dashboard page at 1366×768 and on a 390×844 phone
(docs/dashboard/ holds the committed ones)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pages_seed
import pytest
import seed
import test_browser
from served import ENV, READER, Served
from service import INGESTQ, serving
from test_browser import HOSTILE, sign_in, sync_api

from ingestq.model.job import JobState, OutcomeKind, WorkerBeat

Page = Any
browser = test_browser.browser  # the shared fixtures (pytest finds them by these module names)
page = test_browser.page
SLOTS = 3
DAY = 86400.0


class WithWorker(Served):
    def __init__(self, served: Served, worker: subprocess.Popen[bytes]) -> None:
        super().__init__(served.service, served.database_url)
        self.worker = worker


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WithWorker]:
    """A dashboard behind tokens, and one `ingestq worker` process with SLOTS slots on the same SQLite."""
    root = tmp_path_factory.mktemp("pages")
    url = f"sqlite:///{root / 'q.db'}"
    with serving(url, root / "serve.log", env=ENV) as service:
        with open(root / "worker.log", "ab") as log:
            worker = subprocess.Popen(
                [INGESTQ, "--db", url, "worker", "-c", str(SLOTS), "--lease", "6", "--grace", "0"],
                stdout=log,
                stderr=log,
                env={**os.environ, **ENV, "PYTHONUNBUFFERED": "1"},
            )
        try:
            yield WithWorker(Served(service, url), worker)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)


def _wait_finished(served: Served, ids: list[int]) -> None:
    finished = (JobState.SUCCEEDED, JobState.FAILED)
    deadline = time.monotonic() + 30
    while not all(s in finished for s in pages_seed.states(served.database_url, ids)):
        assert time.monotonic() < deadline, "the worker did not finish the jobs"
        time.sleep(0.1)


def _summary(page: Page) -> tuple[int, int]:
    ok = page.locator("#throughput").get_attribute("data-succeeded")
    bad = page.locator("#throughput").get_attribute("data-failed")
    return int(ok or 0), int(bad or 0)


def test_workers_page_shows_the_real_worker_process_with_its_slots(page: Page, served: WithWorker) -> None:
    held = pages_seed.enqueue(served.database_url, "ingestq.probe", [{"seconds": 60}] * 2, queue="slots")
    try:
        sign_in(page, served)
        page.goto(served.url + "/dashboard/workers")
        row = page.locator(f'#live-workers tr[data-pid="{served.worker.pid}"]')
        # the live fragment refreshes until both probes run on the worker's slots
        sync_api.expect(row.locator("td[data-slots]")).to_have_attribute(
            "data-slots", f"2/{SLOTS}", timeout=20_000
        )
        assert f"2 / {SLOTS}" in row.inner_text()
        assert "all queues" in row.inner_text()
        assert page.locator("#dead-workers").count() == 0
        page.goto(served.url + "/dashboard/")
        assert page.inner_text('[data-total="workers"]') == "1"
    finally:
        pages_seed.cancel(served.database_url, held)


def test_dead_workers_are_listed_apart_and_worker_text_is_escaped(page: Page, served: WithWorker) -> None:
    hostile = WorkerBeat(
        "ghost-1", HOSTILE, 99_999, ("q<b>1</b>",), 4, (), 5.0, '<img src=x onerror="alert(9)">'
    )
    pages_seed.worker_beat(
        served.database_url, hostile, age=30
    )  # silent for 6 leases: dead, not yet forgotten
    sign_in(page, served)
    page.goto(served.url + "/dashboard/workers")
    dead = page.locator('#dead-workers tr[data-worker-id="ghost-1"]')
    assert HOSTILE in dead.inner_text()
    assert '<img src=x onerror="alert(9)">' in dead.inner_text()
    assert "q<b>1</b>" in dead.inner_text()
    assert page.locator('#live-workers tr[data-worker-id="ghost-1"]').count() == 0
    assert page.locator("img[src=x]").count() == 0
    page.goto(served.url + "/dashboard/")
    assert page.inner_text('[data-total="workers"]') == "1"  # the overview counts live workers only
    assert page.dialogs == []


def test_overview_throughput_shows_the_jobs_just_run(page: Page, served: WithWorker) -> None:
    sign_in(page, served)
    before_ok, before_bad = _summary(page)
    page.evaluate("window.__sameDocument = true")
    ok = pages_seed.enqueue(served.database_url, "ingestq.probe", [{}] * 5, queue="through")
    bad = pages_seed.enqueue(served.database_url, "ingestq.probe", [{"fail_times": 9}] * 2, queue="through")
    _wait_finished(served, ok + bad)
    throughput = page.locator("#throughput")
    # refreshed in place by the live fragment, not by a reload
    sync_api.expect(throughput).to_have_attribute("data-succeeded", str(before_ok + 5), timeout=15_000)
    sync_api.expect(throughput).to_have_attribute("data-failed", str(before_bad + 2), timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    bars = page.locator("#throughput svg g")
    ok_total = sum(int(bars.nth(i).get_attribute("data-succeeded") or 0) for i in range(bars.count()))
    bad_total = sum(int(bars.nth(i).get_attribute("data-failed") or 0) for i in range(bars.count()))
    assert (ok_total, bad_total) == (before_ok + 5, before_bad + 2)
    assert page.locator("#throughput rect.bar-bad").count() >= 1
    rate = 100 * (before_bad + 2) / (before_ok + before_bad + 7)
    assert page.inner_text("#failure-rate") == f"{rate:.1f} %"


def test_purge_old_shows_the_count_then_deletes_exactly_that_many(page: Page, served: WithWorker) -> None:
    url = served.database_url
    old_ok = pages_seed.finished(url, "purge.kind", 4, "purgeq", age=3 * DAY)
    old_bad = pages_seed.finished(url, "purge.kind", 2, "purgeq", OutcomeKind.FAILED, age=3 * DAY)
    recent = pages_seed.finished(url, "purge.kind", 3, "purgeq", age=3600)
    elsewhere = pages_seed.finished(url, "purge.kind", 2, "otherq", age=3 * DAY)
    sign_in(page, served)
    page.goto(served.url + "/dashboard/jobs")
    page.click("#purge-old")
    page.wait_for_url("**/dashboard/jobs/purge")
    page.uncheck('input[name="state"][value="failed"]')
    page.uncheck('input[name="state"][value="cancelled"]')
    page.fill("#purge-age", "2")
    page.select_option("#purge-unit", "days")
    page.fill('input[name="queue"]', "purgeq")
    page.click("#purge-count")
    assert page.locator("#purge-preview [data-count]").inner_text() == "4"
    assert pages_seed.existing(url, old_ok) == old_ok  # a dry run: nothing deleted yet
    page.click("#purge-confirm")
    page.wait_for_url("**/dashboard/jobs?notice=purged*")
    assert "Purged 4 finished job(s)." in page.inner_text(".notice")
    assert pages_seed.existing(url, old_ok) == []
    assert pages_seed.existing(url, old_bad + recent + elsewhere) == old_bad + recent + elsewhere


def test_purge_is_refused_in_read_only(page: Page, served: WithWorker) -> None:
    url = served.database_url
    old = pages_seed.finished(url, "purge.ro", 2, "roq", age=3 * DAY)
    sign_in(page, served, READER)
    assert page.locator("#purge-old").count() == 0
    page.goto(served.url + "/dashboard/jobs/purge?state=succeeded&age=1&unit=days&queue=roq")
    assert page.locator("#purge-preview [data-count]").inner_text() == "2"  # reading the count is fine
    assert page.locator("#purge-confirm").count() == 0
    status = page.evaluate(
        """async () => {
            const body = new URLSearchParams({state: 'succeeded', queue: 'roq',
                cutoff: new Date().toISOString(),
                _csrf: document.querySelector('meta[name=csrf-token]').content});
            const answer = await fetch('/dashboard/jobs/purge', {method: 'POST', body});
            return answer.status;
        }"""
    )
    assert status == 403
    assert pages_seed.existing(url, old) == old


def test_a_document_shows_its_stage_timeline(page: Page, served: WithWorker, tmp_path: Path) -> None:
    sign_in(page, served)
    page.goto(served.url + "/dashboard/documents")
    sample = tmp_path / "stages.md"
    sample.write_text("# Stages <i>of</i> ingestion\n\nFetch, parse, chunk, embed, commit.\n")
    page.set_input_files("#upload-file", str(sample))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/dashboard/document?*")
    sync_api.expect(page.locator("#document-live .chip").first).to_have_text("indexed", timeout=60_000)
    page.reload()
    timeline = page.locator("#stage-timeline")
    for stage in ("fetch", "parse", "chunk", "embed"):
        assert timeline.locator(f'td[data-stage="{stage}"]').count() == 1, stage
    assert timeline.locator("svg rect.stage-embed").count() == 1


PAGES = {
    "overview": "/dashboard/",
    "workers": "/dashboard/workers",
    "jobs": "/dashboard/jobs",
    "purge": "/dashboard/jobs/purge?state=succeeded&state=failed&age=2&unit=days",
    "bulk-confirm": "/dashboard/jobs/bulk?action=retry&state=failed",
    "failures": "/dashboard/failures",
    "queues": "/dashboard/queues",
    "documents": "/dashboard/documents",
    "search": "/dashboard/search?q=stages",
}


def test_no_page_or_table_scrolls_sideways_on_a_phone(browser: Any, served: WithWorker) -> None:
    """On a 390 px phone every page fits its width, and so does every table inside its scroll box (the
    Workers table used to hide its last columns off the right edge)."""
    url = served.database_url
    held = pages_seed.enqueue(url, "ingestq.probe", [{"seconds": 60}], queue="phone")
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = context.new_page()
        sign_in(page, served)
        wide: dict[str, list[str]] = {}
        for name, path in PAGES.items():
            page.goto(served.url + path)
            if name == "workers":  # the served worker's row, once it has sent a heartbeat
                page.wait_for_selector("#live-workers tr[data-worker-id]", timeout=30_000)
            found = page.evaluate(
                """() => {
                  const out = [];
                  const root = document.documentElement;
                  if (root.scrollWidth > root.clientWidth + 1) out.push(`page ${root.scrollWidth}px`);
                  for (const table of document.querySelectorAll('table')) {
                    const box = table.closest('.card') || table.parentElement;
                    const width = Math.ceil(table.getBoundingClientRect().width);
                    if (width > box.clientWidth + 1) {
                      out.push(`#${table.id} ${width}px in ${box.clientWidth}px`);
                    }
                  }
                  return out;
                }"""
            )
            if found:
                wide[name] = found
        assert wide == {}
    finally:
        context.close()
        pages_seed.cancel(url, held)


def test_screenshots_of_every_page(browser: Any, served: WithWorker) -> None:
    shots = os.environ.get("INGESTQ_TEST_SCREENSHOTS")
    if not shots:
        pytest.skip("set INGESTQ_TEST_SCREENSHOTS=<dir> to save screenshots")
    out = Path(shots)
    out.mkdir(parents=True, exist_ok=True)
    url = served.database_url
    pages_seed.finished(url, "report.render", 3, "reports", OutcomeKind.FAILED, age=4 * DAY)
    pages_seed.enqueue(url, "ingestq.probe", [{"fail_times": 9}] * 2 + [{}] * 6, queue="mail")
    held = pages_seed.enqueue(url, "ingestq.probe", [{"seconds": 60}], queue="slots")
    seed.document(url, "hostile-doc", HOSTILE, "quarterly report <img src=x onerror=alert(2)> numbers")
    try:
        for name, viewport, scale in (("desktop", (1366, 768), 1), ("phone", (390, 844), 2)):
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]},
                device_scale_factor=scale,
                is_mobile=name == "phone",
            )
            shot = context.new_page()
            sign_in(shot, served)
            paths = dict(PAGES)
            job = shot.locator("#jobs-table tbody tr[data-job-id]")
            shot.goto(served.url + "/dashboard/jobs?state=failed")
            paths["job"] = f"/dashboard/jobs/{job.first.get_attribute('data-job-id')}"
            shot.goto(served.url + "/dashboard/documents")
            link = shot.locator("#documents-table a", has_text="Stages")
            if link.count():
                paths["document"] = str(link.first.get_attribute("href"))
            for page_name, path in paths.items():
                shot.goto(served.url + path)
                shot.screenshot(path=str(out / f"{page_name}-{name}.png"), full_page=True)
            shot.context.clear_cookies()
            shot.goto(served.url + "/dashboard/login")
            shot.screenshot(path=str(out / f"login-{name}.png"))
            context.close()
    finally:
        pages_seed.cancel(url, held)
