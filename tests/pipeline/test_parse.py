"""Each parser on small documents generated here: block kinds, heading levels, pages, tables."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from docgen import make_docx, make_image_only_pdf, make_pdf
from lxml import etree

from ingestq.pipeline.errors import CorruptDocument, EncryptedDocument, NoTextFound, ParseError
from ingestq.pipeline.model import Block, BlockKind, MediaType, ParseOptions, SourceDocument
from ingestq.pipeline.parse import ocr, parse_document


def kinds(blocks: tuple[Block, ...]) -> list[tuple[BlockKind, int]]:
    return [(block.kind, block.level) for block in blocks]


def parse_or_reason(doc: SourceDocument) -> str:
    try:
        return parse_document(doc).text
    except ParseError as exc:
        return f"failed: {exc}"


# --- PDF -----------------------------------------------------------------------------------------


def test_pdf_paragraphs_carry_page_numbers() -> None:
    data = make_pdf([["First paragraph.", "Second paragraph."], ["On page two."], ["Third (page)."]])
    doc = parse_document(SourceDocument(data, "p.pdf"))
    assert doc.media_type is MediaType.PDF
    assert doc.pages == 3
    assert [(b.text, b.page) for b in doc.blocks] == [
        ("First paragraph.", 1),
        ("Second paragraph.", 1),
        ("On page two.", 2),
        ("Third (page).", 3),
    ]
    assert doc.title == "First paragraph."


def test_pdf_blank_pages_are_reported_and_a_blank_pdf_fails() -> None:
    doc = parse_document(SourceDocument(make_pdf([["Text."], []]), "p.pdf"), ParseOptions(ocr=False))
    assert doc.pages == 2
    assert doc.warnings == ("no text layer on 1 page(s): 2 (OCR disabled)",)
    with pytest.raises(NoTextFound, match="no text found in PDF"):
        parse_document(SourceDocument(make_pdf([[]]), "blank.pdf"), ParseOptions(ocr=False))


def test_truncated_pdf_is_recovered_or_refused_cleanly() -> None:
    data = make_pdf([["Hello there."]] * 3)
    outcome = parse_or_reason(SourceDocument(data[: len(data) // 2], "cut.pdf"))
    assert "Hello there." in outcome or outcome.startswith("failed: corrupt PDF: ")


def test_encrypted_pdf_says_so(corpora) -> None:  # type: ignore[no-untyped-def]
    data = (corpora / "pdf-broken" / "password-example.pdf").read_bytes()
    with pytest.raises(EncryptedDocument, match=r"^encrypted PDF \(password required\)$"):
        parse_document(SourceDocument(data, "password-example.pdf"))


def test_pdf_with_empty_user_password_opens(corpora) -> None:  # type: ignore[no-untyped-def]
    data = (corpora / "pdf-broken" / "issue7665.pdf").read_bytes()
    assert parse_document(SourceDocument(data, "issue7665.pdf")).blocks


@pytest.mark.skipif(not ocr.available(), reason="OCR extra not installed (pip install 'ingestq[ocr]')")
def test_image_only_page_is_ocred_unless_disabled() -> None:
    data = make_image_only_pdf("Invoice number 4711")
    doc = parse_document(SourceDocument(data, "scan.pdf"))
    assert "4711" in doc.text
    assert doc.blocks[0].page == 1
    assert doc.warnings == ("OCR used on 1 page(s) without a text layer: 1",)
    with pytest.raises(NoTextFound, match="OCR disabled"):
        parse_document(SourceDocument(data, "scan.pdf"), ParseOptions(ocr=False))


# --- DOCX ----------------------------------------------------------------------------------------


def test_docx_keeps_headings_lists_and_tables() -> None:
    doc = parse_document(SourceDocument(make_docx(), "guide.docx"))
    assert doc.media_type is MediaType.DOCX
    assert doc.title == "Field Guide"
    assert kinds(doc.blocks) == [
        (BlockKind.HEADING, 1),
        (BlockKind.PARAGRAPH, 0),
        (BlockKind.HEADING, 2),
        (BlockKind.PARAGRAPH, 0),
        (BlockKind.LIST, 0),
        (BlockKind.HEADING, 3),
        (BlockKind.TABLE, 0),
        (BlockKind.PARAGRAPH, 0),
    ]
    assert doc.blocks[4].text == "- Long legs\n- Dagger bill\n  - Juveniles are duller"
    assert doc.blocks[6].text == "Bird | Count\nHeron | 4\nBittern | 1"
    assert all(block.page is None for block in doc.blocks)


def test_docx_table_cells_inside_content_controls_are_read() -> None:
    # Word's cover pages wrap table cells in content controls bound to the title and author
    # (docx/Bug54771b.docx in the shared corpora holds no other text)
    import docx
    from docx.oxml import OxmlElement

    document = docx.Document()
    table = document.add_table(rows=2, cols=1)
    for row, text in zip(table.rows, ["Annual Report", "Jane Author"], strict=True):
        row.cells[0].text = text
        cell = row._tr.tc_lst[0]
        sdt, content = OxmlElement("w:sdt"), OxmlElement("w:sdtContent")
        cell.addprevious(sdt)
        sdt.append(content)
        content.append(cell)
    out = io.BytesIO()
    document.save(out)
    doc = parse_document(SourceDocument(out.getvalue(), "cover.docx"))
    assert [(block.kind, block.text) for block in doc.blocks] == [
        (BlockKind.TABLE, "Annual Report\nJane Author")
    ]


def test_damaged_docx_is_a_one_line_error() -> None:
    data = make_docx()
    with pytest.raises(CorruptDocument, match=r"^corrupt DOCX: ") as info:
        parse_document(SourceDocument(data[: len(data) // 2], "cut.docx"))
    assert "\n" not in str(info.value)


# --- HTML ----------------------------------------------------------------------------------------

ARTICLE = " ".join(["The marsh harrier quarters low over the reed beds at dusk."] * 6)
PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><title>Marsh birds | Example News</title></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<main><article>
<h1>Marsh birds return</h1>
<p>{ARTICLE}</p>
<h2>Where to see them</h2>
<p>{ARTICLE.replace("harrier", "bittern")}</p>
<ul><li>North hide, open at dawn every single day of the year</li>
<li>South hide, open at noon on weekdays only</li></ul>
<table><tr><td>Bird</td><td>Count</td></tr><tr><td>Harrier</td><td>3</td></tr></table>
<h3>Further reading</h3>
<p>{ARTICLE.replace("harrier", "heron")}</p>
</article></main>
<footer><p>Copyright 2024 Example News. All rights reserved. Privacy policy. Terms of use.</p></footer>
</body></html>"""


def test_html_main_content_without_boilerplate() -> None:
    doc = parse_document(SourceDocument(PAGE.encode(), "page.html"))
    assert doc.media_type is MediaType.HTML
    headings = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert ("Where to see them", 2) in headings
    assert ("Further reading", 3) in headings
    assert any(b.kind is BlockKind.LIST and "North hide" in b.text for b in doc.blocks)
    assert any(b.kind is BlockKind.TABLE and "Harrier | 3" in b.text for b in doc.blocks)
    text = doc.text
    assert "bittern" in text
    for boilerplate in ("Weather", "cookies", "Copyright", "Privacy"):
        assert boilerplate not in text


def test_html_without_content_fails_with_reason() -> None:
    with pytest.raises(NoTextFound, match="no main content"):
        parse_document(SourceDocument(b"<html><body><nav><a href='/'>Home</a></nav></body></html>", "x.html"))


# --- Markdown ------------------------------------------------------------------------------------

MARKDOWN = """---
title: "Shortcodes and more"
weight: 10
---

# Intro

Some *emphasis* and {{< new-in 0.1 >}}a [link](https://example.com).

> [!NOTE]
> Alerts keep their text.

## Lists

- one
- two
  - nested
1. first
2. second

| Name | Value |
|------|-------|
| a    | 1     |

```go
fmt.Println("{{</* x */>}}")
```

```mermaid
graph TD; A-->B;
```

{{< highlight python >}}
print("hi")
{{< /highlight >}}

{{% include "/_common/snippet.md" %}}

See the {{% glossary-term "taxonomy" %}} page.
"""


def test_markdown_blocks_front_matter_mermaid_and_shortcodes() -> None:
    doc = parse_document(SourceDocument(MARKDOWN.encode(), "page.md"))
    assert doc.media_type is MediaType.MARKDOWN
    assert doc.title == "Shortcodes and more"
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        (BlockKind.HEADING, 1, "Intro"),
        (BlockKind.PARAGRAPH, 0, "Some emphasis and a link."),
        (BlockKind.PARAGRAPH, 0, "Alerts keep their text."),
        (BlockKind.HEADING, 2, "Lists"),
        (BlockKind.LIST, 0, "- one\n- two\n  - nested"),
        (BlockKind.LIST, 0, "1. first\n2. second"),
        (BlockKind.TABLE, 0, "Name | Value\na | 1"),
        (BlockKind.CODE, 0, 'fmt.Println("{{< x >}}")'),
        (BlockKind.CODE, 0, 'print("hi")'),
        (BlockKind.PARAGRAPH, 0, "See the taxonomy page."),
    ]
    assert [b.language for b in doc.blocks if b.kind is BlockKind.CODE] == ["go", "python"]
    assert "weight" not in doc.text


# --- text ----------------------------------------------------------------------------------------

SAMPLE = "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade.\n\nSecond paragraph \u00e0 la carte."


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1", "cp1252"])
def test_text_in_several_encodings(encoding: str) -> None:
    doc = parse_document(SourceDocument(SAMPLE.encode(encoding), "menu.txt"))
    assert doc.media_type is MediaType.TEXT
    assert [b.text for b in doc.blocks] == SAMPLE.split("\n\n")
    assert doc.title.startswith("Caf\u00e9")


def test_text_form_feeds_are_pages_and_nuls_are_dropped() -> None:
    data = b"Page one\x00 text.\r\n\r\nMore.\r\n\x0cPage two.\n\x0c\nPage three \xff\xfe bad bytes.\n"
    doc = parse_document(SourceDocument(data, "rfc.txt"))
    assert doc.pages == 3
    pages = [(b.text, b.page) for b in doc.blocks]
    assert pages[:3] == [("Page one text.", 1), ("More.", 1), ("Page two.", 2)]
    assert doc.blocks[3].page == 3
    assert "\x00" not in doc.text


def test_blank_text_fails_with_reason() -> None:
    with pytest.raises(NoTextFound, match="no text found in text"):
        parse_document(SourceDocument(b"\n\n   \n", "blank.txt"))


# --- XML external entities --------------------------------------------------------------------------


def _with_external_entity(docx_bytes: bytes, target: str) -> bytes:
    """The same DOCX with a DTD in word/document.xml declaring an external entity, used in the text."""
    src = zipfile.ZipFile(io.BytesIO(docx_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode("utf-8")
                decl_end = text.index("?>") + 2
                dtd = f'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "{target}">]>'
                text = text[:decl_end] + dtd + text[decl_end:]
                text = text.replace("An introduction", "An &xxe; introduction", 1)
                data = text.encode("utf-8")
            dst.writestr(item, data)
    return out.getvalue()


def test_docx_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = _with_external_entity(make_docx(), secret.as_uri())
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    # The input is a real attack: a parser that resolves entities reads the file into the text.
    resolving = etree.fromstring(xml, etree.XMLParser(resolve_entities=True, no_network=True))
    assert "TOP-SECRET-CONTENT" in "".join(resolving.itertext())

    outcome = parse_or_reason(SourceDocument(data, "xxe.docx"))
    assert "TOP-SECRET-CONTENT" not in outcome
    # The rest of the document still parses (the run holding the unresolved entity keeps only the text
    # before it: Word never writes a DTD, so only hostile files lose anything).
    assert "Grey herons wait motionless" in outcome
