"""Typed parse failures. All are permanent: the same bytes fail the same way on every attempt.

`quarantine` marks failures of the parser process itself (crash, time limit, memory limit) rather
than a clean refusal; the job layer counts those apart, because a document that kills its parser is
a different operational problem from a document that is merely unreadable.
"""

from __future__ import annotations

from typing import ClassVar

from ingestq.errors import PermanentError, RetryableError


class ParseError(PermanentError):
    """The document cannot be turned into blocks."""

    quarantine: ClassVar[bool] = False


class UnsupportedDocument(ParseError):
    """Empty, or content of a type ingestq does not parse."""


class EncryptedDocument(ParseError):
    """Needs a password ingestq does not have."""


class CorruptDocument(ParseError):
    """Claims a known type but its structure is broken beyond recovery."""


class NoTextFound(ParseError):
    """Parsed, but nothing to index (e.g. a scanned PDF without OCR, a page with no main content)."""


class DocumentTooLarge(ParseError):
    """Over a size, page or unpacked-size limit."""


class ParserCrashed(ParseError):
    """The sandboxed parser died, ran out of memory or ran past its time limit."""

    quarantine: ClassVar[bool] = True


class ParserUnavailable(RetryableError):
    """The sandbox could not start a parser process (an environment problem, not the document's)."""
