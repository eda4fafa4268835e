"""Does a plain install work? Build the wheel, install it into a fresh venv, parse one of each type.

`make install-check` runs this; so does CI. It catches what the editable dev install hides: a module
the code imports that only an extra of another package brings (older pips resolve such extras
differently: pip 23.x, which Debian 12's python3 ships, installed lxml without `lxml_html_clean`), or
a file missing from the wheel.

Outside (stdlib only, any interpreter): build the wheel with `pip wheel --no-deps`, create a venv in a
temporary folder with that interpreter's own pip (never upgraded: the pip users have is the one that
matters), install the CPU torch first (left to the resolver, sentence-transformers pulls CUDA), then
the wheel and nothing else, and run this file again inside the venv with `--inside`.

Inside: import every module of the installed package, parse one document of every media type through
the sandboxed `ParserPool` (the children import the parsers, which is where the missing module
showed), and embed one sentence with the bundled default model. One line per check; exit 1 on any
failure.

    python3 scripts/install_check.py [--keep] [--torch torch==2.13.0]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the run --inside the venv imports ingestq
    from ingestq.pipeline.model import MediaType

REPO = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"  # the CPU wheel the Makefile installs too


def outside(keep: bool, torch: str) -> int:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ingestq-install-check-"))
    try:
        venv, dist = tmp / "venv", tmp / "dist"
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO))
        wheel = next(dist.glob("ingestq-*.whl"))
        run(sys.executable, "-m", "venv", str(venv))
        python = venv / "bin" / "python"
        pip_version = subprocess.run(
            [python, "-m", "pip", "--version"], check=True, capture_output=True, text=True
        ).stdout.split()[1]
        print(f"fresh venv with {Path(sys.executable).name}'s own pip {pip_version}: {venv}", flush=True)
        run(python, "-m", "pip", "install", "-q", torch)
        run(python, "-m", "pip", "install", "-q", str(wheel))
        # From the temporary folder, so nothing of the checkout can be imported instead of the wheel.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        check = [str(python), str(Path(__file__).resolve()), "--inside"]
        code = subprocess.run(check, cwd=tmp, env=env).returncode
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"install check {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return code


def run(*args: str | Path) -> None:
    print("$", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True)


def inside() -> int:
    import importlib
    import pkgutil

    import ingestq

    failures = 0
    location = Path(ingestq.__file__).resolve()
    if not location.is_relative_to(Path(sys.prefix).resolve()):
        print(f"FAIL ingestq imported from {location}, not from the venv {sys.prefix}")
        return 1

    modules = [m.name for m in pkgutil.walk_packages(ingestq.__path__, "ingestq.")]
    broken = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # report every module that fails, not only the first
            broken.append(f"{name}: {type(exc).__name__}: {exc}".replace("\n", " "))
    if broken:
        failures += 1
        print(f"FAIL import: {len(broken)} of {len(modules)} modules", *broken, sep="\n    ")
    else:
        print(f"ok   import: all {len(modules)} modules")

    # The dashboard's templates and static files are package data: the wheel must carry them.
    import importlib.resources

    from ingestq.api.dashboard.render import STATIC_FILES

    dashboard = importlib.resources.files("ingestq.api.dashboard")
    assets = [f"static/{name}" for name in STATIC_FILES] + ["templates/base.html", "templates/overview.html"]
    missing = [name for name in assets if not (dashboard / name).is_file()]
    if missing:
        failures += 1
        print("FAIL dashboard assets missing from the wheel:", ", ".join(missing))
    else:
        print(f"ok   dashboard: {len(assets)} assets in the wheel")

    from ingestq.pipeline.model import MediaType, SourceDocument
    from ingestq.pipeline.sandbox import ParserPool

    documents = sample_documents()
    assert set(documents) == set(MediaType), "a media type without a sample document"
    with ParserPool(size=1) as pool:
        for media_type, (name, data) in documents.items():
            try:
                result = pool.parse(SourceDocument(data, name=name))
            except Exception as exc:  # ParserUnavailable: the child died before it was ready
                failures += 1
                print(f"FAIL {media_type}: {type(exc).__name__}: {exc}")
                continue
            doc = result.document
            if doc is None or doc.media_type != media_type or not doc.blocks:
                failures += 1
                print(f"FAIL {media_type}: {result.reason or result}")
            else:
                print(f"ok   {media_type}: {len(doc.blocks)} blocks in {result.seconds:.2f} s")

    from ingestq.pipeline.embed.sentence_transformers import SentenceTransformerEmbedder

    try:
        [vector] = SentenceTransformerEmbedder(threads=1).encode_sync(["A heron waits at the water."])
        print(f"ok   embed: the bundled model gives {len(vector)} dimensions")
    except Exception as exc:
        failures += 1
        print(f"FAIL embed: {type(exc).__name__}: {exc}")
    return 1 if failures else 0


def sample_documents() -> dict[MediaType, tuple[str, bytes]]:
    """One small document per media type, made here: (file name, bytes)."""
    import docx

    from ingestq.pipeline.model import MediaType

    word = docx.Document()
    word.add_heading("Herons", level=1)
    word.add_paragraph("Grey herons wait motionless at the water's edge.")
    word.add_paragraph("Long legs", style="List Bullet")
    buffer = io.BytesIO()
    word.save(buffer)
    html = (
        "<html><head><title>Herons</title></head><body><article><h1>Herons</h1>"
        + "<p>Grey herons wait motionless at the water's edge, then strike fast.</p>" * 5
        + "</article></body></html>"
    )
    return {
        MediaType.PDF: ("herons.pdf", text_pdf(["Herons", "Grey herons wait at the water's edge."])),
        MediaType.DOCX: ("herons.docx", buffer.getvalue()),
        MediaType.HTML: ("herons.html", html.encode()),
        MediaType.MARKDOWN: ("herons.md", b"# Herons\n\nGrey herons wait.\n\n- Long legs\n- Dagger bill\n"),
        MediaType.TEXT: ("herons.txt", b"Herons\n\nGrey herons wait motionless at the water's edge.\n"),
    }


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF, one Helvetica paragraph per item (ASCII, no parentheses), exact xref table."""
    shown = b" ".join(b"(%s) Tj T* T*" % line.encode() for line in lines)
    stream = b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the wheel, install it into a fresh venv, parse.")
    parser.add_argument("--inside", action="store_true", help="run the checks in this interpreter")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venv")
    parser.add_argument("--torch", default=TORCH, help=f"torch requirement installed first ({TORCH})")
    args = parser.parse_args()
    return inside() if args.inside else outside(args.keep, args.torch)


if __name__ == "__main__":
    sys.exit(main())
