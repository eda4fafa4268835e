"""The wrong-token counter (api/auth_failures.py), on a clock the test moves."""

from __future__ import annotations

import pytest

from ingestq.api import auth_failures
from ingestq.api.auth_failures import AuthFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_once_it_reaches_the_limit_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    limit = AuthFailures(3, 60.0, clock)
    for _ in range(2):
        limit.failed("10.0.0.1")
        clock.now += 10
    assert limit.retry_after("10.0.0.1") is None  # two of three
    limit.failed("10.0.0.1")  # at 1020: failures at 1000, 1010, 1020
    assert limit.retry_after("10.0.0.1") == 40  # the one at 1000 leaves the window at 1060
    assert limit.retry_after("10.0.0.2") is None  # another address is not concerned
    clock.now = 1060.0
    assert limit.retry_after("10.0.0.1") is None  # sliding: one more guess, then refused again
    limit.failed("10.0.0.1")
    assert limit.retry_after("10.0.0.1") == 10


def test_zero_means_no_limit_and_an_unknown_address_is_never_counted() -> None:
    off = AuthFailures(0, 60.0, Clock())
    for _ in range(100):
        off.failed("10.0.0.1")
    assert off.retry_after("10.0.0.1") is None
    on = AuthFailures(1, 60.0, Clock())
    on.failed(None)
    assert on.retry_after(None) is None


def test_the_table_forgets_the_least_recently_seen_address_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auth_failures, "MAX_ADDRESSES", 3)
    limit = AuthFailures(1, 60.0, Clock())
    for address in ("a", "b", "c"):
        limit.failed(address)
    limit.failed("a")  # seen again: now the most recent
    limit.failed("d")  # past the bound: "b" is forgotten, not "a"
    assert limit.retry_after("a") is not None
    assert limit.retry_after("b") is None
    assert limit.retry_after("c") is not None
    assert limit.retry_after("d") is not None
    assert len(limit._failures) == 3
