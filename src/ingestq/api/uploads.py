"""Request bodies read while they stream, under a size cap: multipart uploads and JSON.

FastAPI's `UploadFile` is not used: Starlette spools every file part to disk before the route runs and
caps only the non-file parts, so a client could fill the disk before any check. Here python-multipart's
streaming parser is fed from `request.stream()` chunk by chunk; each file part is counted and hashed
(sha256) as its bytes arrive, and the moment a part passes `part_cap`, or the whole body `body_cap`, the
read stops with 413. Nothing is stored until the whole body has been read and checked, so a refused
upload leaves nothing behind (no blob, no document, no job).

Each file part is written to a `SpooledTemporaryFile`: in memory up to `SPOOL_BYTES`, then on disk, so a
server receiving many large uploads at once holds at most `SPOOL_BYTES` of each; the store then streams
the file into the database (`blob_put_file`). The temporary files go when the request ends (`Form.close`),
and with them a refused upload's bytes.

A file name from a client is metadata only: `safe_name` keeps the last component (directories, `..`
and drive letters dropped) and removes control characters, so it can never name a path.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request

from ingestq.api.errors import ApiError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FIELD_CAP = 64 * 1024
"""Bytes a non-file part (collection, metadata) may hold."""
FORM_OVERHEAD = 1024**2
"""What a request may carry beyond its files' bytes: boundaries, part headers, fields."""
MAX_PARTS = 100
MAX_NAME = 200


SPOOL_BYTES = 1024**2
"""Bytes of one uploaded file kept in memory; past that it is spooled to a temporary file."""


def _spool() -> BinaryIO:
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="ingestq-upload-"))


@dataclass
class FilePart:
    name: str  # safe_name of the client's file name
    file: BinaryIO = field(default_factory=_spool)
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)

    @property
    def digest(self) -> str:
        return str(self.sha256.hexdigest())

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha256.update(data)
        self.size += len(data)


@dataclass
class Form:
    files: list[FilePart]
    fields: dict[str, str]

    def close(self) -> None:
        for part in self.files:
            part.file.close()


def too_large(what: str, cap: int) -> ApiError:
    return ApiError(413, "too_large", f"{what} is over the {cap} byte limit (INGESTQ_UPLOAD_MAX_BYTES)")


def check_declared_length(request: Request, body_cap: int) -> None:
    """A Content-Length above the cap is refused before a byte is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_cap:
        raise too_large("the request body", body_cap)


_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
"""Unicode categories dropped from names: control characters (NUL, newlines), format characters (the
right-to-left override U+202E that shows `evil<U+202E>gpj.exe` as `evilexe.jpg`, zero-width spaces),
private-use and lone surrogates, line and paragraph separators."""


def safe_name(raw: str) -> str:
    """The last component of a client's file name, never a path: `../../etc/passwd` -> `passwd`,
    `C:\\x\\report.pdf` -> `report.pdf`; empty, `.` and `..` -> `upload`. NFKC first, so that look-alike
    slashes (fullwidth `／`) are split on like `/`; invisible and control characters go."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE).replace("\\", "/")
    last = text.rsplit("/", 1)[-1].strip()
    if not last.strip("."):
        return "upload"
    return last[-MAX_NAME:]


async def _counted(request: Request, body_cap: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > body_cap:
            raise too_large("the request body", body_cap)
        yield chunk


async def read_json(request: Request, body_cap: int) -> Any:
    """The JSON body (any value); 413 past `body_cap`, 422 if malformed."""
    check_declared_length(request, body_cap)
    body = bytearray()
    async for chunk in _counted(request, body_cap):
        body.extend(chunk)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_request", f"the body is not JSON: {exc}") from None


class _Parser:
    def __init__(self, part_cap: int, charset: str) -> None:
        self.part_cap = part_cap
        self.charset = charset
        self.files: list[FilePart] = []
        self.fields: dict[str, str] = {}
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field_name: str | None = None
        self._field = bytearray()
        self._file: FilePart | None = None
        self.opened: list[FilePart] = []  # every file part begun, kept or not: closed on a refusal

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self.charset, errors="replace")

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ApiError(413, "too_large", f"more than {MAX_PARTS} parts in one request")
        self._disposition = b""
        self._field_name = None
        self._field = bytearray()
        self._file = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ApiError(422, "invalid_request", "a multipart part has no name (Content-Disposition)")
        self._field_name = self._decode(options[b"name"])
        if b"filename" in options:
            self._file = FilePart(safe_name(self._decode(options[b"filename"])))
            self.opened.append(self._file)

    def close(self) -> None:
        for part in self.opened:
            part.file.close()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._file is not None:
            if self._file.size + len(piece) > self.part_cap:
                raise too_large(f"file {self._file.name!r}", self.part_cap)
            self._file.write(piece)
            return
        if len(self._field) + len(piece) > FIELD_CAP:
            raise too_large(f"field {self._field_name!r}", FIELD_CAP)
        self._field.extend(piece)

    def on_part_end(self) -> None:
        if self._file is not None:
            self.files.append(self._file)
        elif self._field_name is not None:
            if self._field_name in self.fields:
                raise ApiError(422, "invalid_request", f"field {self._field_name!r} is given twice")
            self.fields[self._field_name] = self._decode(bytes(self._field))


async def read_multipart(request: Request, part_cap: int, body_cap: int) -> Form:
    """Every part of a multipart/form-data body, read as it streams: 413 as soon as a file passes
    `part_cap` or the body `body_cap`, 422 for a body that is not well-formed multipart."""
    check_declared_length(request, body_cap)
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(422, "invalid_request", "multipart/form-data without a boundary")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"
    state = _Parser(part_cap, charset)
    try:
        try:
            parser = MultipartParser(boundary, state.callbacks())
            async for chunk in _counted(request, body_cap):
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise ApiError(422, "invalid_request", f"malformed multipart body: {exc}") from None
        if parser.state != MultipartState.END:
            raise ApiError(
                422, "invalid_request", "malformed multipart body: it ends before its last boundary"
            )
        if state.parts == 0:
            raise ApiError(422, "invalid_request", "the multipart body has no part")
    except BaseException:
        state.close()  # a refused body's spooled bytes go at once
        raise
    return Form(state.files, state.fields)
