"""`Idempotency-Key` on requests that create things (draft-ietf-httpapi-idempotency-key-header).

A client that is not sure its request arrived (a timeout, a dropped connection) sends it again with the
same key and gets the first answer back, byte for byte, with `Idempotent-Replayed: true`, and nothing is
done twice. The key is kept with a fingerprint of the request (what it asks for, not its bytes: a
multipart boundary differs between two sends of the same files) and the response, in the database
(`ingestq_idempotency`), for IDEMPOTENCY_TTL; every API replica sees it. Reusing a key for a different
request is a 422; only successful answers are kept, so a request refused (413, 422, 503...) can be sent
again with its key.

Two requests with the same key at the same moment may both do the work; the first answer stored wins and
the second request answers with it. That is harmless here: ingesting the same content twice lands on the
same document and, while its job is unfinished, the same job.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse

from ingestq.api.errors import ApiError
from ingestq.model.document import IdempotentReply
from ingestq.store.base import IndexStore

IDEMPOTENCY_TTL = timedelta(hours=24)
HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, what UUIDs and ULIDs are made of


def key_of(raw: str | None, scope: str) -> str | None:
    """The stored key for a request's `Idempotency-Key` value (scoped by route), or None without one."""
    if raw is None:
        return None
    value = raw.strip().strip('"')  # the draft sends it as a quoted string
    if not _KEY.fullmatch(value):
        raise ApiError(422, "invalid_request", f"{HEADER}: 1 to 200 visible ASCII characters")
    return f"{scope} {value}"


def fingerprint(what: Any) -> str:
    return hashlib.sha256(json.dumps(what, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _response(reply: IdempotentReply) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if reply.location:
        headers["Location"] = reply.location
    response = JSONResponse(None, status_code=reply.status, headers=headers)
    response.body = reply.body.encode()
    response.headers["content-length"] = str(len(response.body))
    return response


def _check(reply: IdempotentReply, wanted: str) -> JSONResponse:
    if reply.fingerprint != wanted:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"this {HEADER} was used for a different request (keys are kept {IDEMPOTENCY_TTL})",
        )
    return _response(reply)


async def replay(store: IndexStore, key: str, wanted: str, now: datetime) -> JSONResponse | None:
    """The stored answer for `key`, if there is one (422 if it answered another request)."""
    found = await store.idempotency_get(key, now)
    return None if found is None else _check(found, wanted)


async def remember(
    store: IndexStore, key: str, wanted: str, response: JSONResponse, now: datetime
) -> JSONResponse:
    """Keep a successful `response` under `key`; if a concurrent request stored one first, answer that."""
    if not 200 <= response.status_code < 300:
        return response
    reply = IdempotentReply(
        key=key,
        fingerprint=wanted,
        status=response.status_code,
        body=bytes(response.body).decode(),
        location=response.headers.get("location"),
        created_at=now,
        expires_at=now + IDEMPOTENCY_TTL,
    )
    kept = await store.idempotency_put(reply, now)
    if kept.fingerprint == wanted and kept.body == reply.body:
        return response
    return _check(kept, wanted)
