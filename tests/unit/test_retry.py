from __future__ import annotations

import random
from datetime import timedelta
from typing import TypedDict

import pytest

from factories import T0, make_job
from ingestq.errors import JobCancelled, PermanentError, RetryableError, UnknownJobKind
from ingestq.tasks.retry import BadPayload, ExponentialBackoff, error_message, is_permanent


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "error", "expected"),
    [
        (1, 5, ValueError("x"), 1.0),
        (2, 5, ValueError("x"), 2.0),
        (3, 5, ValueError("x"), 4.0),
        (4, 5, ValueError("x"), 8.0),
        (5, 5, ValueError("x"), None),  # attempts exhausted
        (9, 5, ValueError("x"), None),  # more than allowed (a person lowered max_attempts)
        (1, 1, ValueError("x"), None),
        (1, 5, RetryableError("slow down", retry_after=30), 30.0),
        (1, 5, RetryableError("no hint"), 1.0),
        (5, 5, RetryableError("slow down", retry_after=30), None),  # retry_after grants no extra attempt
        (1, 5, RetryableError("negative", retry_after=-3), 0.0),
        (1, 5, PermanentError("bad input"), None),
        (1, 5, BadPayload("unexpected keyword argument 'x'"), None),
        (1, 5, UnknownJobKind("nope"), None),
        (1, 5, JobCancelled("stop"), None),
        (20, 50, ValueError("x"), 60.0),  # capped at max
        (10_000, 20_000, ValueError("x"), 60.0),  # no overflow for absurd attempt numbers
    ],
)
def test_schedule_without_jitter(
    attempt: int, max_attempts: int, error: BaseException, expected: float | None
) -> None:
    policy = ExponentialBackoff(base=1.0, max=60.0, jitter=0.0)
    job = make_job(attempt=attempt, max_attempts=max_attempts)
    got = policy.next_attempt(job, error, T0)
    assert got == (None if expected is None else T0 + timedelta(seconds=expected))


def test_jitter_stays_within_bounds_and_cap() -> None:
    policy = ExponentialBackoff(base=10.0, max=100.0, jitter=0.25, rng=random.Random(7))
    delays = {policy.delay(2) for _ in range(200)}
    assert min(delays) >= 15.0
    assert max(delays) <= 25.0
    assert len(delays) > 100  # jitter really spreads
    assert all(policy.delay(30) <= 100.0 for _ in range(100))


def test_jitter_is_deterministic_with_a_seeded_rng() -> None:
    a = ExponentialBackoff(rng=random.Random(1))
    b = ExponentialBackoff(rng=random.Random(1))
    assert [a.delay(n) for n in range(1, 8)] == [b.delay(n) for n in range(1, 8)]


class BackoffParams(TypedDict, total=False):
    base: float
    max: float
    jitter: float


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"base": -1.0}, "base and max"), ({"jitter": 1.0}, "jitter"), ({"jitter": -0.1}, "jitter")],
)
def test_rejects_bad_parameters(kwargs: BackoffParams, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExponentialBackoff(**kwargs)


def test_permanent_classification() -> None:
    assert is_permanent(PermanentError("x"))
    assert is_permanent(BadPayload("x"))
    assert not is_permanent(RetryableError("x"))
    assert not is_permanent(TypeError("x"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("boom"), "ValueError: boom"),
        (RuntimeError("line one\nline two"), "RuntimeError: line one line two"),
        (KeyError("k"), "KeyError: 'k'"),
        (RuntimeError(), "RuntimeError"),
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_error_message_is_one_line(error: BaseException, expected: str) -> None:
    assert error_message(error) == expected


def test_error_message_is_bounded() -> None:
    text = error_message(ValueError("x" * 10_000))
    assert len(text) <= 2000
    assert "\n" not in text
