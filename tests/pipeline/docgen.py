"""Small real documents (and hostile ones) generated for the pipeline tests.

PDFs are written by hand (a few objects and an exact xref table), so a test controls every page;
DOCX files come from python-docx itself.
"""

from __future__ import annotations

import io
import zipfile

import docx

from ingestq.cli.demo import serialize_pdf

_pdf = serialize_pdf


def _escape(text: str) -> bytes:
    return text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content(paragraphs: list[str]) -> bytes:
    """One text line per paragraph, a blank line's gap between them (PDFium reports the gap)."""
    ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
    for para in paragraphs:
        ops.append(b"(" + _escape(para) + b") Tj T* T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(pages: list[list[str]]) -> bytes:
    """A text PDF: one list of paragraphs per page, Helvetica, US Letter."""
    n = len(pages)
    # 1 catalog, 2 pages, 3 font, then (page, content) pairs
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, paragraphs in enumerate(pages):
        stream = _content(paragraphs)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            b" /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _pdf(objects)


# (font resource, size) per style of make_styled_pdf: F1 Helvetica, F2 Helvetica-Bold
STYLES = {"title": (b"F2", 22), "h1": (b"F2", 16), "h2": (b"F2", 13), "bold": (b"F2", 11), "p": (b"F1", 11)}


def make_styled_pdf(pages: list[list[tuple[str, str]]]) -> bytes:
    """A text PDF whose paragraphs carry a style of STYLES: larger and bold fonts for headings, set
    like a word processor does (one line each, no blank line between a heading and its text)."""
    n = len(pages)
    kids = b" ".join(b"%d 0 R" % (5 + 2 * i) for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>",
    ]
    for i, paragraphs in enumerate(pages):
        ops, y = [], 740
        for style, text in paragraphs:
            font, size = STYLES[style]
            y -= int(size * 1.3)
            ops.append(b"BT /%s %d Tf 72 %d Td (%s) Tj ET" % (font, size, y, _escape(text)))
        stream = b"\n".join(ops)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>" % (6 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _pdf(objects)


def _pages_sharing_one_stream(count: int, stream: bytes) -> bytes:
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
    objects.extend(page + b" /Contents 4 0 R >>" for _ in range(count))
    return _pdf(objects)


def make_many_pages_pdf(count: int) -> bytes:
    """`count` real pages sharing one content stream: small on disk, huge to process."""
    return _pages_sharing_one_stream(count, _content(["A page among very many."]))


def make_slow_pdf(pages: int, spaces_per_page: int = 20_000) -> bytes:
    """`pages` pages sharing one content stream of `spaces_per_page` text objects that each show a
    space: every page costs the parser real work (PDFium builds every object) but yields no text, so a
    parse of it is slow without its memory growing. Parse it with OCR off."""
    stream = b"BT /F1 12 Tf 72 720 Td\n" + b"( ) Tj\n" * spaces_per_page + b"ET"
    return _pages_sharing_one_stream(pages, stream)


def make_image_only_pdf(text: str) -> bytes:
    """A one-page PDF whose only content is a picture of `text` (rendered from a text PDF by PDFium)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    source = pdfium.PdfDocument(make_pdf([[text]]))
    bitmap = source[0].render(scale=200 / 72)
    target = pdfium.PdfDocument.new()
    width, height = 612.0, 792.0
    page = target.new_page(width, height)
    image = pdfium.PdfImage.new(target)
    image.set_bitmap(bitmap)
    image.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(image)
    page.gen_content()
    assert pdfium_c is not None
    buffer = io.BytesIO()
    target.save(buffer)
    return buffer.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Field Guide"
    document.add_heading("Field Guide", level=1)
    document.add_paragraph("An introduction to the birds of the marsh.")
    document.add_heading("Herons", level=2)
    document.add_paragraph("Grey herons wait motionless at the water's edge.")
    document.add_paragraph("Long legs", style="List Bullet")
    document.add_paragraph("Dagger bill", style="List Bullet")
    document.add_paragraph("Juveniles are duller", style="List Bullet 2")
    document.add_heading("Sightings", level=3)
    table = document.add_table(rows=3, cols=2)
    for row, (bird, count) in enumerate([("Bird", "Count"), ("Heron", "4"), ("Bittern", "1")]):
        table.cell(row, 0).text = bird
        table.cell(row, 1).text = count
    document.add_paragraph("Counted at dawn.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_zip_bomb_docx(unpacked_mib: int) -> bytes:
    """A DOCX whose word/document.xml inflates to `unpacked_mib` MiB from about 1/1000 of that."""
    base = zipfile.ZipFile(io.BytesIO(make_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for info in base.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info, base.read(info))
        with bomb.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(
                b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w='
                b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
            )
            chunk = b"A" * (1 << 20)
            for _ in range(unpacked_mib):
                member.write(chunk)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def make_nested_html(depth: int) -> bytes:
    return b"<html><head><title>deep</title></head><body>" + b"<div>" * depth + b"bottom" + b"</div>" * depth


def truncate(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]
