"""Standard Webhooks signatures (https://www.standardwebhooks.com/): what a delivery's headers say.

    webhook-id:        the delivery's message id (the same on every attempt and redelivery)
    webhook-timestamp: the attempt's time, integer unix seconds
    webhook-signature: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

The key is the base64 part of a `whsec_...` secret. To rotate it without a window where receivers
refuse deliveries, the setting may hold several secrets (new first, separated by spaces or commas):
every delivery then carries one `v1,` signature per secret, space-separated, as the specification
allows, and a receiver accepts it if any one matches its secret. `verify` is the receiver's side, for
tests and for the documentation's example receiver.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from ingestq.errors import ConfigError

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
MAX_SECRETS = 4  # a rotation needs two; more only lengthens every delivery's headers


def parse_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret, or ConfigError (one line, without the secret)."""
    if not secret.startswith(PREFIX):
        raise ConfigError("INGESTQ_WEBHOOK_SECRET must start with 'whsec_' (then base64 of 24 to 64 bytes)")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("INGESTQ_WEBHOOK_SECRET: the part after 'whsec_' is not valid base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            f"INGESTQ_WEBHOOK_SECRET: the key is {len(key)} bytes, not {MIN_KEY_BYTES} to {MAX_KEY_BYTES}"
        )
    return key


def parse_secrets(text: str) -> list[bytes]:
    """The keys of the setting's secrets (space- or comma-separated, new first), or ConfigError."""
    secrets = text.replace(",", " ").split()
    if not secrets:
        raise ConfigError("INGESTQ_WEBHOOK_SECRET is empty: give a whsec_ secret")
    if len(secrets) > MAX_SECRETS:
        raise ConfigError(f"INGESTQ_WEBHOOK_SECRET holds {len(secrets)} secrets: at most {MAX_SECRETS}")
    return [parse_secret(secret) for secret in secrets]


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(key, message_id, timestamp, body) for key in keys),
        "content-type": "application/json",
        "user-agent": "ingestq-webhooks",
    }


def verify(key: bytes, message_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
    """True if one of the space-separated `v1,<sig>` entries of a webhook-signature header matches."""
    try:
        expected = signature(key, message_id, int(timestamp), body).split(",", 1)[1]
    except ValueError:
        return False
    for entry in signatures.split():
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected.encode()):
            return True
    return False


def new_secret() -> str:
    """A fresh secret to put in INGESTQ_WEBHOOK_SECRET (32 random bytes)."""
    import secrets

    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
