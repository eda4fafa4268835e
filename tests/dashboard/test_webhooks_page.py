"""The dashboard's Webhooks page in a real browser and over plain HTTP: deliveries with their attempts,
hostile URLs, bodies and errors rendered as text, a redelivery behind the CSRF and same-origin checks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import ADMIN, READER, Served, served_fixture  # noqa: F401 (a fixture)

from ingestq.client.client import Client
from ingestq.model.job import ClaimRequest, JobFilter, JobState, NewJob, Outcome, OutcomeKind
from ingestq.model.webhook import DeliveryFilter, DeliveryOptions, DeliveryStatus
from ingestq.settings import Settings
from ingestq.store.base import Backend

HOSTILE_URL = "https://hooks.example/<script>alert(1)</script>"
HOSTILE_ERROR = 'receiver answered HTTP 410: <img src=x onerror="alert(2)">'
CHROMIUM = Path(os.environ.get("INGESTQ_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ARGS += ["--disable-component-update", "--disable-sync"]


async def _failed_delivery(url: str) -> int:
    """A job with a hostile callback that ended, and its delivery failed once with a hostile error."""
    async with Client.connect(Settings(database_url=url, embedder="fake")) as client:
        queue = f"hooks-{uuid.uuid4().hex[:8]}"  # this delivery's own queue: the seed claims its job alone
        store: Any = client.store
        st: Backend = store
        now = client.clock.now()
        job = await st.job_insert_with_callbacks(
            NewJob(kind="hooked", queue="hooked"), [HOSTILE_URL], DeliveryOptions(queue=queue), now
        )
        (held,) = await st.job_claim(ClaimRequest("seed", 1, 60.0, ("hooked",)), now)
        await st.job_finish_many([Outcome(held.id, "seed", held.attempt, OutcomeKind.SUCCEEDED)], now)
        (delivery,) = await st.webhook_delivery_list(DeliveryFilter(subject_job_id=job.id))
        assert delivery.job_id is not None
        (sending,) = await st.job_claim(ClaimRequest("seed", 1, 60.0, (queue,)), now)
        assert sending.id == delivery.job_id
        await st.webhook_attempt_record(
            delivery.id, sending.id, DeliveryStatus.FAILED, 410, HOSTILE_ERROR, 5, now
        )
        await st.job_finish_many(
            [Outcome(sending.id, "seed", 1, OutcomeKind.FAILED, error=HOSTILE_ERROR)], now
        )
        return delivery.id


async def _delivery_jobs(url: str, delivery_id: int) -> list[JobState]:
    async with Client.connect(Settings(database_url=url, embedder="fake")) as client:
        jobs = await client.list(JobFilter(kinds=("ingestq.webhook",), limit=500))
        return sorted(j.state for j in jobs if j.payload == {"delivery_id": delivery_id})


def run(coro: Any) -> Any:
    """On a loop of its own in another thread (Playwright's sync API holds this thread's)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def delivery(served: Served) -> int:
    delivery_id: int = run(_failed_delivery(served.database_url))
    return delivery_id


@contextlib.contextmanager
def signed_in(served: Served, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers={"Origin": served.url}) as client:
        assert client.post("/dashboard/login", data={"token": token}).status_code == 303
        yield client


def test_redelivery_needs_the_csrf_token_the_same_origin_and_an_admin(served: Served, delivery: int) -> None:
    with signed_in(served, ADMIN) as client:
        page = client.get("/dashboard/webhooks")
        assert page.status_code == 200
        assert '<a href="/dashboard/webhooks" aria-current="page">Webhooks</a>' in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert(1)" not in page.text
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert found
        form = {"delivery_id": str(delivery), "_csrf": found.group(1)}
        assert (
            client.post("/dashboard/webhooks/redeliver", data={"delivery_id": str(delivery)}).status_code
            == 403
        )
        evil = client.post(
            "/dashboard/webhooks/redeliver", data=form, headers={"Origin": "https://evil.example"}
        )
        assert evil.status_code == 403
        assert run(_delivery_jobs(served.database_url, delivery)) == [JobState.FAILED]
        ok = client.post("/dashboard/webhooks/redeliver", data=form)
        assert ok.status_code == 303, ok.text
        assert ok.headers["location"] == f"/dashboard/webhooks/{delivery}?notice=redelivered"
        both = run(_delivery_jobs(served.database_url, delivery))
        assert sorted(both) == sorted([JobState.QUEUED, JobState.FAILED])
        again = client.post("/dashboard/webhooks/redeliver", data=form)  # still pending: refused
        assert again.status_code == 409
        missing = client.post("/dashboard/webhooks/redeliver", data={**form, "delivery_id": "999999"})
        assert missing.status_code == 404
        assert client.get("/dashboard/webhooks/999999").status_code == 404
    with signed_in(served, READER) as reader:
        page = reader.get("/dashboard/webhooks")
        assert page.status_code == 200
        assert "Redeliver" not in page.text


@pytest.fixture
def page(served: Served) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        opened = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        opened.set_default_timeout(15_000)
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        opened.on("dialog", on_dialog)
        opened.dialogs = dialogs
        yield opened
        browser.close()


def test_the_webhooks_page_in_a_browser(page: Any, served: Served, delivery: int) -> None:
    page.goto(served.url + "/dashboard/login")
    page.fill("#token", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_url(served.url + "/dashboard/")
    page.click("nav >> text=Webhooks")
    page.wait_for_url(served.url + "/dashboard/webhooks")
    row = page.locator(f'tr[data-delivery-id="{delivery}"]')
    assert HOSTILE_URL in row.inner_text()
    assert "failed" in row.inner_text()
    row.locator("a", has_text=str(delivery)).click()
    page.wait_for_url(f"{served.url}/dashboard/webhooks/{delivery}")
    assert HOSTILE_ERROR in page.inner_text("#attempts-table")
    assert '"type":"job.succeeded"' in page.inner_text("#delivery-body").replace(" ", "")
    shots = os.environ.get("INGESTQ_TEST_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / "webhook-desktop.png"), full_page=True)
    page.click("#redeliver")
    page.wait_for_url(f"{served.url}/dashboard/webhooks/{delivery}?notice=redelivered")
    assert "Delivery queued again" in page.inner_text(".notice")
    assert "pending" in page.inner_text("#delivery-facts")
    if shots:
        page.goto(served.url + "/dashboard/webhooks")
        page.screenshot(path=str(Path(shots) / "webhooks-desktop.png"), full_page=True)
    page.wait_for_timeout(200)
    assert page.dialogs == []
    assert page.locator("img[src=x]").count() == 0
