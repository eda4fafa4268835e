"""The delivery job in a real worker (in this process) on a real SQLite file, against a real receiver on
127.0.0.1: the address guard, permanent and retried answers, Retry-After, redirects, the answer cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from receiver import SECRET, receiving

from ingestq.client.webhooks import Webhooks
from ingestq.errors import ConfigError
from ingestq.model.job import JobState, NewJob
from ingestq.model.webhook import DeliveryFilter, DeliveryStatus, WebhookDelivery
from ingestq.runtime import Runtime
from ingestq.settings import Settings
from ingestq.webhooks.signing import new_secret


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'q.db'}",
        webhook_secret=SECRET,
        webhook_allow_private=True,
        webhook_backoff_base=0.2,
        webhook_timeout=5,
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with await Runtime.open(settings) as rt:
        yield rt


async def deliver_once(rt: Runtime, url: str, **settings: Any) -> WebhookDelivery:
    """A probe job with `url` as its callback, run with a worker draining the queue under `settings`:
    the delivery after its first attempt."""
    webhooks = Webhooks(rt.client, rt.settings)
    job = await webhooks.insert_with_callbacks(NewJob(kind="ingestq.probe"), [url])
    worker_rt = Runtime(rt.client, rt.settings.model_copy(update=settings))
    await worker_rt.worker().run(drain=True)
    (delivery,) = await webhooks.deliveries(DeliveryFilter(subject_job_id=job.id))
    return delivery


async def test_a_private_target_without_the_allow_list_fails_for_good(runtime: Runtime) -> None:
    with receiving([200]) as receiver:
        delivery = await deliver_once(runtime, receiver.url, webhook_allow_private=False)
        assert receiver.received == []  # never contacted
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.FAILED, 1, None)
    assert delivery.last_error == (
        "refusing to deliver to 127.0.0.1: a local name or a non-public address "
        "(set INGESTQ_WEBHOOK_ALLOW_PRIVATE=true to allow)"
    )
    assert delivery.job_id is not None
    job = await runtime.client.get(delivery.job_id)
    assert (job.state, job.attempt) == (JobState.FAILED, 1)  # no retry


async def test_a_name_resolving_to_loopback_is_refused_too(runtime: Runtime) -> None:
    with receiving([200]) as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        delivery = await deliver_once(runtime, url, webhook_allow_private=False)
        assert receiver.received == []
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("refusing to deliver to localhost: a local name")


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_a_4xx_is_permanent(runtime: Runtime, status: int) -> None:
    with receiving([status]) as receiver:
        delivery = await deliver_once(runtime, receiver.url)
        assert len(receiver.received) == 1
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.FAILED,
        1,
        status,
    )
    assert delivery.last_error == f"receiver answered HTTP {status}: xx"


@pytest.mark.parametrize("status", [408, 500, 503])
async def test_408_and_5xx_are_retried(runtime: Runtime, status: int) -> None:
    with receiving([status]) as receiver:
        delivery = await deliver_once(runtime, receiver.url)
        assert len(receiver.received) == 1
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.PENDING,
        1,
        status,
    )
    assert delivery.job_id is not None
    job = await runtime.client.get(delivery.job_id)
    assert (job.state, job.attempt) == (JobState.QUEUED, 1)
    assert job.run_at > job.created_at


async def test_429_honours_retry_after(runtime: Runtime) -> None:
    with receiving([429], headers={"Retry-After": "120"}) as receiver:
        delivery = await deliver_once(runtime, receiver.url)
        assert len(receiver.received) == 1
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.PENDING, 429)
    assert delivery.job_id is not None
    assert delivery.last_attempt_at is not None
    job = await runtime.client.get(delivery.job_id)
    assert job.state is JobState.QUEUED
    wait = (job.run_at - delivery.last_attempt_at).total_seconds()
    assert 119 <= wait <= 121  # the receiver's 120 s, not the 0.2 s backoff


async def test_a_redirect_is_not_followed(runtime: Runtime) -> None:
    with receiving([302], headers={"Location": "/elsewhere"}) as receiver:
        delivery = await deliver_once(runtime, receiver.url)
        assert len(receiver.received) == 1  # the Location was never requested
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.FAILED, 302)
    assert delivery.last_error is not None
    assert "redirects are not followed" in delivery.last_error


async def test_a_huge_answer_is_read_only_up_to_the_cap(runtime: Runtime) -> None:
    with receiving([200], body_bytes=50 * 1024**2) as receiver:
        delivery = await deliver_once(runtime, receiver.url, webhook_max_response_bytes=1024)
        assert len(receiver.received) == 1
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 200)


async def test_during_a_rotation_receivers_on_the_old_and_on_the_new_secret_both_accept(
    runtime: Runtime,
) -> None:
    """INGESTQ_WEBHOOK_SECRET="<new> <old>" on the worker: a receiver still on the old secret and one
    already on the new accept the delivery (the receiver answers 401 to a signature it cannot verify)."""
    fresh = new_secret()
    for secret in (SECRET, fresh):
        with receiving([200], secret=secret) as receiver:
            delivery = await deliver_once(runtime, receiver.url, webhook_secret=f"{fresh} {SECRET}")
            assert len(receiver.received) == 1
        assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 200)
    with receiving([200], secret=new_secret()) as stranger:
        delivery = await deliver_once(runtime, stranger.url, webhook_secret=f"{fresh} {SECRET}")
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.FAILED, 401)


async def test_a_worker_without_the_secret_fails_deliveries_at_once(runtime: Runtime) -> None:
    with receiving([200]) as receiver:
        delivery = await deliver_once(runtime, receiver.url, webhook_secret=None)
        assert receiver.received == []
    assert delivery.status is DeliveryStatus.FAILED
    assert (
        delivery.last_error == "INGESTQ_WEBHOOK_SECRET is not set on this worker: deliveries cannot be signed"
    )


def test_callbacks_need_a_secret_and_good_urls(runtime: Runtime) -> None:
    unsigned = Webhooks(runtime.client, runtime.settings.model_copy(update={"webhook_secret": None}))
    with pytest.raises(ConfigError, match="callbacks need INGESTQ_WEBHOOK_SECRET"):
        unsigned.check(["https://example.com/hook"])
    bad_secret = Webhooks(runtime.client, runtime.settings.model_copy(update={"webhook_secret": "secret"}))
    with pytest.raises(ConfigError, match="must start with 'whsec_'"):
        bad_secret.check(["https://example.com/hook"])
    webhooks = Webhooks(runtime.client, runtime.settings)
    assert webhooks.check(["https://a.example/h", "https://a.example/h"]) == ["https://a.example/h"]
    with pytest.raises(ConfigError, match="absolute http"):
        webhooks.check(["file:///etc/passwd"])
