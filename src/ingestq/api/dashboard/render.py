"""Templates (Jinja2, autoescape on for every template), their filters, and the headers of every page.

Everything a document brings (title, text, metadata, source, error messages) and everything a job
holds (payload, result, errors) is rendered through autoescaping; no template marks data `|safe`.
Pages load only `static/` files: no inline script or style, so the Content-Security-Policy below
forbids both, and forbids framing (`frame-ancestors 'none'`).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# The files `static/` serves: a fixed table, so that no request path reaches the file system.
STATIC_FILES = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "htmx.LICENSE": "text/plain; charset=utf-8",
}


def age(seconds: float | None) -> str:
    """A duration as people read it: 42 s, 3 min, 5 h 10 min, 2 d 4 h."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def since(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return age((datetime.now(UTC) - moment).total_seconds()) + " ago"


def pretty(value: Any) -> str:
    """JSON for a <pre> block (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(age=age, when=when, since=since, pretty=pretty, first_line=first_line)
    return env
