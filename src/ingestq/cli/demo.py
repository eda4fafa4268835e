"""`make demo`: ingest the project's own docs/ folder plus a PDF and a DOCX generated here, into a fresh
embedded SQLite store (`.ingestq/demo.db`), with the default local model (offline), then search.

A worker runs in this process and a progress bar follows the batch; the summary says how many chunks
were embedded or reused, and the hits of a few questions are printed. Exit status 0 only if every
document was indexed and every question found something.
"""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

from rich.console import Console

from ingestq.cli.ingest import print_summary, wait_for_jobs
from ingestq.cli.search import hits_table
from ingestq.client.documents import Documents
from ingestq.runtime import Runtime
from ingestq.settings import Settings

QUESTIONS = (
    "what happens to a job when its worker crashes?",
    "how are uploaded documents parsed safely?",
    "which parts of a word document are kept?",
)

console = Console(highlight=False)

PDF_PAGES = [
    [
        "Parsing in a sandbox",
        "Every uploaded document is parsed in a separate child process with a time limit and a memory "
        "limit, so a hostile file cannot hang or crash the worker.",
        "A parser that crashes or times out is retried; after the last attempt the document is "
        "quarantined and counted apart from ordinary failures.",
    ],
    [
        "Chunks and embeddings",
        "Documents are split into chunks that never exceed the embedding model's window, and each chunk "
        "keeps the path of headings above it.",
        "An embedding cache keyed by model and chunk text means re-ingesting an unchanged document "
        "embeds nothing again.",
    ],
]


def _pdf_escape(text: str) -> bytes:
    return text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal text PDF (one Helvetica line per paragraph, wrapped at 90 characters)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b""]
    objects[2] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    kids = []
    for lines in pages:
        ops = [b"BT /F1 11 Tf 14 TL 60 740 Td"]
        for para in lines:
            words, line = para.split(), ""
            for word in words:
                if len(line) + len(word) > 90:
                    ops.append(b"(" + _pdf_escape(line) + b") Tj T*")
                    line = ""
                line = f"{line} {word}".strip()
            ops.append(b"(" + _pdf_escape(line) + b") Tj T* T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        page_no = len(objects) + 1
        kids.append(page_no)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (page_no + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    return serialize_pdf(objects)


def serialize_pdf(objects: list[bytes]) -> bytes:
    """Numbered PDF objects (1..n; object 1 is the catalog) with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Word documents in ingestq", level=1)
    document.add_paragraph(
        "The DOCX parser keeps headings, lists and tables, so a chunk knows which section it came from."
    )
    document.add_heading("What is kept", level=2)
    for item in ("Headings with their level", "Bulleted and numbered lists", "Tables, row by row"):
        document.add_paragraph(item, style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, (name, value) in zip(
        table.rows, [("Format", "Parser"), ("PDF", "pypdfium2"), ("DOCX", "python-docx")], strict=True
    ):
        row.cells[0].text = name
        row.cells[1].text = value
    document.save(str(path))


def _repo_docs() -> Path:
    here = Path(__file__).resolve().parents[2] / "docs"
    return here if here.is_dir() else Path.cwd() / "docs"


def prepare(folder: Path) -> tuple[Path, Path]:
    """A fresh database path and the generated PDF and DOCX, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "demo.db"
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    generated = folder / "demo-docs"
    generated.mkdir(exist_ok=True)
    (generated / "ingestq-pipeline.pdf").write_bytes(make_pdf(PDF_PAGES))
    make_docx(generated / "ingestq-word.docx")
    return database, generated


async def run(folder: Path, docs_dir: Path | None = None) -> int:
    database, generated = await asyncio.to_thread(prepare, folder)
    sources = [docs_dir or _repo_docs(), generated]

    settings = Settings(database_url=f"sqlite:///{database}")
    console.print(f"ingesting {', '.join(str(s) for s in sources)} into {database} (model: all-MiniLM-L6-v2)")
    async with await Runtime.open(settings) as runtime:
        docs = Documents(runtime.client, settings)
        batch = await docs.ingest(
            sources,
            collection="demo",
            include=["*.md", "*.pdf", "*.docx"],
            exclude=["*report*.md"],  # generated measurement tables, not documentation
        )
        summary = await wait_for_jobs(runtime, [b.job for b in batch], out=console)
        print_summary(summary, console)
        found_all = True
        for question in QUESTIONS:
            hits = await docs.search(question, k=3, collection="demo")
            console.print(f"\n[bold]search:[/] {question}")
            if hits:
                console.print(hits_table(hits, width=200))
            else:
                found_all = False
                console.print("no hits")
    ok = summary.indexed == summary.total and found_all
    console.print("\n[bold]dashboard:[/] run this, then open http://127.0.0.1:8000/dashboard/")
    console.print(dashboard_command(database), soft_wrap=True, markup=False, highlight=False)
    return 0 if ok else 1


def dashboard_command(database: Path) -> str:
    """The one command that serves the dashboard over the demo's database."""
    return f"{Path(sys.executable).parent / 'ingestq'} --db sqlite:///{database.resolve()} serve"


def main() -> None:
    sys.exit(asyncio.run(run(Path(".ingestq"))))


if __name__ == "__main__":
    main()
