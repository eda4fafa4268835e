"""Keep tokens out of the service's logs, whatever a client puts where.

The service reads a token only from the `Authorization` header (the API) or a sign-in form (the
dashboard), and never logs one itself. But uvicorn's access log writes every request line with its
query string, and at `--log-level trace` it writes each request's scope, headers included. A client that
puts its token in a URL (`?token=...`), or any request at trace level, would leave it in the logs, where
whoever reads logs could replay it.

`install(tokens)` adds a filter to every handler configured at that point (uvicorn's and the root's)
that rewrites each record before it is written:
- every configured token, wherever it appears, becomes `[redacted]`;
- so does the value of a query parameter named like a credential (`token`, `access_token`, `api_key`,
  `password`, `secret`...) and whatever follows `Bearer ` or `Basic `: a wrong or rotated-out token
  is a secret too, and often a near miss of a real one.
The rest of the line stays, so access logs keep their use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

_QUERY_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:access_|api_|auth_|id_|refresh_)?token|api_?key|apikey|password|passwd"
    r"|secret|client_secret|auth|authorization|session)=([^&\s\"'\\#]+)"
)
_SCHEME_SECRET = re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)([A-Za-z0-9._~+/=-]+)")


class RedactSecrets(logging.Filter):
    """See the module docstring."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # longest first: a token that contains another is replaced whole
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        return _SCHEME_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)

    def _arg(self, value: Any) -> Any:
        if isinstance(value, int | float | type(None)):
            return value  # formatters may need the number itself (uvicorn's status code)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        cleaned = self.redact(text)
        return value if cleaned == text else cleaned

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            # a traceback may quote a header: format it now, redacted, so the handler uses this text
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _handlers() -> list[logging.Handler]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    found: list[logging.Handler] = [h for logger in loggers for h in logger.handlers]
    if logging.lastResort is not None:
        found.append(logging.lastResort)
    return list(dict.fromkeys(found))


def install(tokens: Iterable[str]) -> RedactSecrets:
    """Add the filter to every handler configured now (call it after uvicorn configured logging)."""
    redactor = RedactSecrets(tokens)
    for handler in _handlers():
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor
