"""Type detection: the content decides, the extension only breaks ties between text formats."""

from __future__ import annotations

import re

import pytest
from docgen import make_docx, make_pdf

from ingestq.errors import PermanentError
from ingestq.pipeline.detect import detect
from ingestq.pipeline.errors import EncryptedDocument, UnsupportedDocument
from ingestq.pipeline.model import MediaType, SourceDocument

PDF = make_pdf([["hello"]])
DOCX = make_docx()
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (PDF, "report.pdf", MediaType.PDF),
        (PDF, "report.txt", MediaType.PDF),  # content wins over a wrong extension
        (PDF, "", MediaType.PDF),
        (b"garbage before the header\n" + PDF, "x.pdf", MediaType.PDF),
        (DOCX, "letter.docx", MediaType.DOCX),
        (DOCX, "letter.bin", MediaType.DOCX),
        (b"<!DOCTYPE html><html><body><p>hi</p></body></html>", "page", MediaType.HTML),
        (b"\xef\xbb\xbf  <html lang='en'><p>hi</p></html>", "page.txt", MediaType.HTML),
        (b"<!-- saved --><html><p>x</p></html>", "", MediaType.HTML),
        (b"<div><p>fragment</p></div>", "frag.html", MediaType.HTML),
        (b"<div><p>fragment</p></div>", "frag.txt", MediaType.TEXT),
        (b"# Title\n\nSome *text*.\n", "notes.md", MediaType.MARKDOWN),
        (b"# Title\n\nSome *text*.\n", "", MediaType.MARKDOWN),
        (b"---\ntitle: x\n---\nbody\n", "", MediaType.MARKDOWN),
        (b"# not a heading in a .txt\n", "notes.txt", MediaType.TEXT),
        (b"Just some words.\nAnd more.\n", "", MediaType.TEXT),
        (b"plain", "notes.md", MediaType.MARKDOWN),
        ("caf\u00e9 cr\u00e8me".encode("latin-1"), "menu.txt", MediaType.TEXT),
        ("Hello UTF-16".encode("utf-16"), "", MediaType.TEXT),
        ("Hello UTF-16 without a BOM".encode("utf-16-le"), "", MediaType.TEXT),
        (b"text with a NUL\x00 and invalid \xff\xfe utf-8", "", MediaType.TEXT),
    ],
)
def test_detects_media_type(data: bytes, name: str, expected: MediaType) -> None:
    assert detect(SourceDocument(data, name)) is expected


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.pdf", "empty file (0 bytes)"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "photo.pdf", "PNG image"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 64, "x.txt", "gzip archive"),
        (bytes(range(256)) * 8, "random.pdf", "binary data of unknown type"),
        (OLE2, "old.doc", "legacy binary Office document"),
        (b"PK\x03\x04garbage", "broken.zip", "damaged ZIP archive"),
    ],
)
def test_unknown_content_is_a_clear_permanent_error(data: bytes, name: str, message: str) -> None:
    with pytest.raises(UnsupportedDocument, match=re.escape(message)) as info:
        detect(SourceDocument(data, name))
    assert isinstance(info.value, PermanentError)
    assert "\n" not in str(info.value)


def test_damaged_zip_named_docx_goes_to_the_docx_parser() -> None:
    # The DOCX parser can then say precisely what is wrong with the archive.
    assert detect(SourceDocument(b"PK\x03\x04garbage", "broken.docx")) is MediaType.DOCX


def test_zip_without_word_document_is_not_a_docx() -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(UnsupportedDocument, match=r"no word/document\.xml"):
        detect(SourceDocument(buffer.getvalue(), "fake.docx"))


def test_encrypted_office_file_says_so() -> None:
    data = OLE2 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 64
    with pytest.raises(EncryptedDocument, match="encrypted"):
        detect(SourceDocument(data, "secret.docx"))
