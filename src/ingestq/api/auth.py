"""Bearer tokens with roles, closed by default.

`INGESTQ_API_TOKENS="admin:<token>,read:<token>"`: each entry is a role and a token; `read` may only
read (GET), `admin` may do everything. Several tokens per role let a deployment rotate them. Tokens are
compared in constant time and never logged or echoed. A server on a non-loopback address without any
token refuses to start (`check_exposure`); on loopback without tokens, every request is admin (a laptop).
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from dataclasses import dataclass

from ingestq.errors import ConfigError


class Role(enum.IntEnum):
    READ = 1
    ADMIN = 2


@dataclass(frozen=True)
class Tokens:
    entries: tuple[tuple[Role, bytes], ...] = ()

    @property
    def open(self) -> bool:
        """No token configured: every request is admin (allowed on loopback only)."""
        return not self.entries

    @classmethod
    def parse(cls, text: str | None) -> Tokens:
        entries: list[tuple[Role, bytes]] = []
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            role, sep, token = item.partition(":")
            try:
                parsed = Role[role.strip().upper()]
            except KeyError:
                raise ConfigError(
                    "INGESTQ_API_TOKENS: each entry is ROLE:TOKEN with ROLE admin or read"
                ) from None
            if not sep or len(token.strip()) < 16:
                raise ConfigError("INGESTQ_API_TOKENS: a token must have at least 16 characters")
            entries.append((parsed, token.strip().encode()))
        return cls(tuple(entries))

    def role_of(self, presented: str | None) -> Role | None:
        """The role of the presented token; None if it matches none. Every entry is compared, in constant
        time, so the answer's timing says nothing about which token came close."""
        if self.open:
            return Role.ADMIN
        if not presented:
            return None
        given = presented.encode()
        found: Role | None = None
        for role, token in self.entries:
            if hmac.compare_digest(given, token) and (found is None or role > found):
                found = role
        return found


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, tokens: Tokens) -> None:
    """Refuse to serve a non-loopback address without a token: closed by default."""
    if tokens.open and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a token: set INGESTQ_API_TOKENS=admin:<token> "
            "(or bind to 127.0.0.1)"
        )
