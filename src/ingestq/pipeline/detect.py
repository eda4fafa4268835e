"""Media type from the content; the file name's extension only breaks ties between text formats.

Binary formats are recognised by their magic bytes. A ZIP is a DOCX only if it holds
word/document.xml, or if it cannot be listed at all and is named .docx (then the DOCX parser reports
the damage, which is a better message than "unknown type"). Among text formats, HTML is recognised
by its markup; Markdown and plain text look alike, so the extension decides, and content signals
(front matter, ATX headings, fences) decide when there is no extension.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath

from ingestq.pipeline.errors import EncryptedDocument, UnsupportedDocument
from ingestq.pipeline.model import MediaType, SourceDocument

_SNIFF = 8192

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

# Binary types we do not parse, named so the failure says what the file is.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\x1f\x8b", "gzip archive"),
    (b"BZh", "bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x7fELF", "ELF executable"),
    (b"MZ", "Windows executable"),
    (b"{\\rtf", "RTF document"),
    (b"SQLite format 3\x00", "SQLite database"),
)

_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title)\b",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAG = re.compile(rb"<(?:html|body|div|p|h[1-6]|table|ul|article|section|span|a)\b", re.IGNORECASE)
_MD_SIGNAL = re.compile(
    rb"^(?:#{1,6} \S|```|~~~|---\r?\n|\+\+\+\r?\n|\s*[-*] \[[ x]\] |\|.*\|\r?\n\|\s*:?-{3})",
    re.MULTILINE,
)

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_MARKDOWN_EXT = {".md", ".markdown", ".mdown", ".mkd", ".mdx"}
_HTML_EXT = {".html", ".htm", ".xhtml"}
_TEXT_EXT = {".txt", ".text", ".rst", ".log", ".csv", ".tsv"}
# Control bytes that never occur in text (NUL is tolerated: it is stripped by the text parser).
_BINARY_BYTES = bytes(b for b in range(32) if b not in (0, 9, 10, 12, 13, 27)) + b"\x7f"


def detect(doc: SourceDocument) -> MediaType:
    """Return the media type of `doc`, or raise a permanent error saying what it is instead."""
    data = doc.data
    if not data:
        raise UnsupportedDocument("empty file (0 bytes)")
    ext = PurePosixPath(doc.name.replace("\\", "/")).suffix.lower()
    head = data[:_SNIFF]

    # PDF readers accept junk before the header within the first KiB; so do we.
    if b"%PDF-" in data[:1024]:
        return MediaType.PDF
    if head.startswith(_ZIP_MAGICS):
        return _detect_zip(data, ext)
    if head.startswith(_OLE2_MAGIC):
        raise _ole2_error(data)
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            raise UnsupportedDocument(f"unsupported content: {what}")
    if not _looks_like_text(head):
        raise UnsupportedDocument("unsupported content: binary data of unknown type")
    return _detect_text(head, ext)


def _detect_zip(data: bytes, ext: str) -> MediaType:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        if ext in {".docx", ".docm", ".dotx"}:
            return MediaType.DOCX  # the parser reports the damage precisely
        raise UnsupportedDocument("unsupported content: damaged ZIP archive") from None
    if "word/document.xml" in names:
        return MediaType.DOCX
    if "xl/workbook.xml" in names:
        raise UnsupportedDocument("unsupported content: Excel workbook (XLSX)")
    if "ppt/presentation.xml" in names:
        raise UnsupportedDocument("unsupported content: PowerPoint presentation (PPTX)")
    if ext in {".docx", ".docm", ".dotx"}:
        raise UnsupportedDocument("not a DOCX: the ZIP archive has no word/document.xml")
    raise UnsupportedDocument("unsupported content: ZIP archive")


def _ole2_error(data: bytes) -> Exception:
    # Password-protected OOXML files are wrapped in an OLE2 container with an "EncryptedPackage" stream.
    if "EncryptedPackage".encode("utf-16-le") in data:
        return EncryptedDocument("encrypted Office document (password required)")
    return UnsupportedDocument("unsupported content: legacy binary Office document (OLE2, e.g. .doc)")


def _looks_like_text(head: bytes) -> bool:
    if head.startswith(_BOMS):
        return True
    if _looks_like_utf16(head):
        return True
    sample = head.replace(b"\x00", b"")
    if not sample:
        return False  # nothing but NULs
    bad = sum(sample.count(bytes([b])) for b in _BINARY_BYTES)
    return bad <= len(sample) * 0.02


def _looks_like_utf16(head: bytes) -> bool:
    """BOM-less UTF-16 of mostly ASCII text: a NUL in every other byte."""
    pairs = head[: len(head) - len(head) % 2]
    if len(pairs) < 8:
        return False
    even_nuls = pairs[0::2].count(0)
    odd_nuls = pairs[1::2].count(0)
    half = len(pairs) // 2
    return max(even_nuls, odd_nuls) >= half * 0.9 and min(even_nuls, odd_nuls) <= half * 0.05


def _detect_text(head: bytes, ext: str) -> MediaType:
    if _looks_like_utf16(head) or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Sniff the decoded text, not raw bytes (rare: HTML or Markdown saved as UTF-16).
        head = _utf16_to_utf8(head)
    head = head.removeprefix(b"\xef\xbb\xbf")
    if _HTML_START.match(head):
        return MediaType.HTML
    if ext in _HTML_EXT and _HTML_TAG.search(head):
        return MediaType.HTML
    if ext in _MARKDOWN_EXT:
        return MediaType.MARKDOWN
    if ext in _TEXT_EXT:
        return MediaType.TEXT
    if _MD_SIGNAL.search(head):
        return MediaType.MARKDOWN
    return MediaType.TEXT


def _utf16_to_utf8(head: bytes) -> bytes:
    if head.startswith(b"\xfe\xff"):
        encoding = "utf-16-be"
    elif head.startswith(b"\xff\xfe"):
        encoding = "utf-16-le"
    else:
        encoding = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    even = head[: len(head) - len(head) % 2]
    return even.decode(encoding, errors="replace").lstrip("\ufeff").encode("utf-8")
