"""Tokens, session MACs and CSRF tokens are compared with `hmac.compare_digest`, never with `==`, and a
presented token is compared with every configured one (no early exit that would time which came close)."""

from __future__ import annotations

import hmac

import pytest

from ingestq.api.auth import Role, Tokens
from ingestq.api.dashboard.session import Signer, csrf_matches

ADMIN = "admin-token-compare-0123456"
READER = "read-token-compare-01234567"


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare)
    return calls


def test_a_token_is_compared_with_every_entry_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens.parse(f"admin:{ADMIN},read:{READER},read:{'r' * 20}")
    calls = _counting(monkeypatch)
    for presented, role in ((ADMIN, Role.ADMIN), (READER, Role.READ), ("x" * 30, None)):
        calls.clear()
        assert tokens.role_of(presented) is role
        assert len(calls) == 3  # every entry, also after a match
        assert all(a == presented.encode() for a, _ in calls)


def test_session_macs_and_csrf_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Signer.for_tokens(Tokens.parse(f"admin:{ADMIN}"))
    cookie, session = signer.issue(Role.ADMIN)
    calls = _counting(monkeypatch)
    assert signer.verify(cookie) == session
    assert signer.verify(cookie[:-2] + "AA") is None
    assert len(calls) == 2
    calls.clear()
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, "forged")
    assert len(calls) == 2
