"""The dashboard live through Server-Sent Events, and its polling fallback, in a real browser.

One EventSource per tab (static/dashboard.js) refreshes the live fragments when a job event arrives;
body[data-live-mode] says whether the tab follows the stream ("sse"), polls ("poll") or rests
("paused", while hidden).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import seed
from served import ENV, Served
from service import serving
from test_browser import Page, browser, page, sign_in, sync_api  # noqa: F401 (fixtures: registered under these names)


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("streaming")
    url = f"sqlite:///{root / 'q.db'}"
    with serving(url, root / "serve.log", env=ENV) as service:
        yield Served(service, url)


@pytest.fixture(scope="module")
def without_streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A service whose events endpoint refuses every stream (a cap of 0: 503 + Retry-After)."""
    root = tmp_path_factory.mktemp("nostreams")
    url = f"sqlite:///{root / 'q.db'}"
    with serving(url, root / "serve.log", env={**ENV, "INGESTQ_SSE_MAX_STREAMS": "0"}) as service:
        yield Served(service, url)


@pytest.fixture
def tab(request: pytest.FixtureRequest) -> Page:
    """test_browser's `page` (a parameter of that name would shadow the import)."""
    return request.getfixturevalue("page")


def mode(tab: Page) -> str:
    return str(tab.get_attribute("body", "data-live-mode"))


def test_the_overview_updates_through_the_event_stream_without_polling(tab: Page, streaming: Served) -> None:
    streams: list[str] = []
    tab.on("request", lambda r: streams.append(r.url) if r.url.endswith("/dashboard/events") else None)
    sign_in(tab, streaming)
    sync_api.expect(tab.locator("body")).to_have_attribute("data-live-mode", "sse")
    assert len(streams) == 1  # one stream for the tab
    fragments: list[str] = []
    tab.on("request", lambda r: fragments.append(r.url) if "/fragments/" in r.url else None)
    # nothing changes: with the stream on, the tab does not poll (the fallback would, every 3 s)
    tab.wait_for_timeout(3_500)
    assert fragments == []
    before = int(tab.inner_text('[data-total="queued"]'))
    tab.evaluate("window.__sameDocument = true")
    seed.enqueue(streaming.database_url, kind="sse.job", n=2, queue="sse")
    sync_api.expect(tab.locator('[data-total="queued"]')).to_have_text(str(before + 2), timeout=10_000)
    assert tab.evaluate("window.__sameDocument") is True  # refreshed in place, not reloaded
    assert fragments, "the refresh came from a fragment request the event fired"
    assert mode(tab) == "sse"
    assert len(streams) == 1


def test_the_stream_closes_while_hidden_and_reopens_when_shown(tab: Page, streaming: Served) -> None:
    sign_in(tab, streaming)
    sync_api.expect(tab.locator("body")).to_have_attribute("data-live-mode", "sse")
    tab.evaluate(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    assert mode(tab) == "paused"
    requests: list[str] = []
    tab.on("request", lambda r: requests.append(r.url))
    seed.enqueue(streaming.database_url, kind="sse.hidden", n=1, queue="sse")
    tab.wait_for_timeout(2_000)
    assert requests == []  # no stream, no refresh while hidden
    tab.evaluate(
        "Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    sync_api.expect(tab.locator("body")).to_have_attribute("data-live-mode", "sse")
    assert any(url.endswith("/dashboard/events") for url in requests)
    assert any("/fragments/" in url for url in requests)  # caught up at once


def test_polling_takes_over_when_the_events_endpoint_is_unavailable(
    tab: Page, without_streams: Served
) -> None:
    sign_in(tab, without_streams)
    sync_api.expect(tab.locator("body")).to_have_attribute("data-live-mode", "poll")
    before = int(tab.inner_text('[data-total="queued"]'))
    tab.evaluate("window.__sameDocument = true")
    seed.enqueue(without_streams.database_url, kind="poll.job", n=3, queue="poll")
    sync_api.expect(tab.locator('[data-total="queued"]')).to_have_text(str(before + 3), timeout=15_000)
    assert tab.evaluate("window.__sameDocument") is True
    assert mode(tab) == "poll"
