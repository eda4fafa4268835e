"""Standard Webhooks signatures: the specification's own example, verification, secrets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from ingestq.errors import ConfigError
from ingestq.webhooks.send import retry_after_seconds
from ingestq.webhooks.signing import (
    headers,
    new_secret,
    parse_secret,
    parse_secrets,
    signature,
    verify,
)

# The example of the Standard Webhooks reference libraries (standard-webhooks/standard-webhooks).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_example() -> None:
    key = parse_secret(SPEC_SECRET)
    assert signature(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    sent = headers([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert (sent["webhook-id"], sent["webhook-timestamp"], sent["webhook-signature"]) == (
        SPEC_ID,
        str(SPEC_TIMESTAMP),
        SPEC_SIGNATURE,
    )


def test_verify_accepts_one_matching_entry_and_nothing_else() -> None:
    key = parse_secret(SPEC_SECRET)
    ts = str(SPEC_TIMESTAMP)
    assert verify(key, SPEC_ID, ts, SPEC_BODY, f"v1,bm9wZQ== {SPEC_SIGNATURE}")
    assert not verify(key, SPEC_ID, ts, SPEC_BODY + b" ", SPEC_SIGNATURE)
    assert not verify(key, "msg_other", ts, SPEC_BODY, SPEC_SIGNATURE)
    assert not verify(key, SPEC_ID, str(SPEC_TIMESTAMP + 1), SPEC_BODY, SPEC_SIGNATURE)
    assert not verify(key, SPEC_ID, "soon", SPEC_BODY, SPEC_SIGNATURE)
    assert not verify(key, SPEC_ID, ts, SPEC_BODY, SPEC_SIGNATURE.replace("v1,", "v2,"))


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "the key is 5 bytes"),
    ],
)
def test_bad_secrets_are_refused_in_one_line_without_the_secret(secret: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_secret(secret)
    assert secret.removeprefix("whsec_") not in str(info.value)
    assert "\n" not in str(info.value)


def test_a_new_secret_parses() -> None:
    assert len(parse_secret(new_secret())) == 32


def test_retry_after_as_seconds_or_a_date() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30.0
    assert retry_after_seconds("Tue, 01 Jan 2030 00:01:00 GMT", now) == 60.0
    assert retry_after_seconds("Mon, 31 Dec 2029 00:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_rotation_signs_with_both_secrets_and_either_receiver_verifies() -> None:
    """INGESTQ_WEBHOOK_SECRET="<new> <old>": a receiver still on the old secret and one already on the
    new one both accept the same delivery; a third secret matches neither signature."""
    new, old = new_secret(), SPEC_SECRET
    keys = parse_secrets(f"{new}, {old}")
    assert keys == [parse_secret(new), parse_secret(old)]
    sent = headers(keys, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    entries = sent["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert entries[1] == SPEC_SIGNATURE
    for secret in (new, old):
        assert verify(
            parse_secret(secret), SPEC_ID, str(SPEC_TIMESTAMP), SPEC_BODY, sent["webhook-signature"]
        )
    stranger = parse_secret(new_secret())
    assert not verify(stranger, SPEC_ID, str(SPEC_TIMESTAMP), SPEC_BODY, sent["webhook-signature"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        (" , ", "is empty"),
        (" ".join([SPEC_SECRET] * 5), "holds 5 secrets: at most 4"),
        (f"{SPEC_SECRET} whsec_not-base64!", "not valid base64"),
    ],
)
def test_a_bad_list_of_secrets_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_secrets(text)
    assert "MfKQ9r8G" not in str(info.value)
