"""The dashboard's session: a signed cookie, its CSRF token, and the same-origin check on every POST.

Signing in posts a token once; the server answers with a cookie that holds no token at all, only

    base64url(json {"r": role, "x": expiry (unix seconds), "c": csrf secret}) "." base64url(HMAC-SHA256)

The cookie is HttpOnly (scripts cannot read it), SameSite=Strict (no other site's page sends it),
Secure when the request came over https, and scoped to `/dashboard`. Its signing key is derived from
the configured tokens (HMAC-SHA256 keyed by all of them), so several replicas agree without sharing a
new secret, a restart keeps people signed in, and removing or rotating any token signs every session
out. Knowing a read token gives no way to forge an admin session: the key needs every token. Without
tokens (a loopback laptop: every request is admin), the key is random per process, and a session is
issued on the first page so that POSTs still carry a CSRF token.

State-changing requests must pass two checks (either alone stops a cross-site form):
- the CSRF token (synchronizer pattern): the `c` secret inside the signed cookie must equal the
  `_csrf` form field or the `X-CSRF-Token` header; pages put it in a `<meta>` and in their forms;
- the same-origin check: `Sec-Fetch-Site: same-origin` when the browser sends it, else an `Origin`
  equal to this server's own origin; a POST with neither is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request

from ingestq.api.auth import Role, Tokens, is_loopback

COOKIE = "ingestq_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    role: Role
    expires: int
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and verifies session cookies with one key (see the module docstring for where it comes from)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_tokens(cls, tokens: Tokens) -> Signer:
        if tokens.open:
            return cls(secrets.token_bytes(32))
        material = b"\0".join(sorted(role.name.encode() + b":" + token for role, token in tokens.entries))
        return cls(hmac.new(material, b"ingestq dashboard session v1", hashlib.sha256).digest())

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, role: Role, now: float | None = None) -> tuple[str, Session]:
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        session = Session(role, expires, secrets.token_urlsafe(24))
        body = _b64(json.dumps({"r": role.name, "x": expires, "c": session.csrf}).encode())
        return f"{body}.{self._mac(body)}", session

    def verify(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(Role[data["r"]], int(data["x"]), str(data["c"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session


def csrf_matches(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), (presented or "").encode())


def own_origin(request: Request) -> str:
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}"


def same_origin(request: Request) -> bool:
    """True when the browser says this request comes from one of our own pages."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    return origin is not None and hmac.compare_digest(origin.encode(), own_origin(request).encode())


def loopback_host(request: Request) -> bool:
    """The Host header names a loopback address: without tokens the dashboard answers only to those,
    so that a page on another name resolved to 127.0.0.1 (DNS rebinding) gets nothing."""
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host.startswith("["):
        name = host[: host.index("]") + 1]
    return is_loopback(name)


def cookie_attributes(request: Request) -> dict[str, object]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
        "path": COOKIE_PATH,
    }
