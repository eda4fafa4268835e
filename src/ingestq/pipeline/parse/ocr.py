"""OCR hook for image-only PDF pages, backed by RapidOCR (ONNX Runtime) from the `ocr` extra.

rapidocr-onnxruntime ships its detection and recognition models inside the wheel, so it runs
offline with no download at run time. The engine is created once per process (about 0.2 s) and only
when a page actually needs it.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any


@cache
def available() -> bool:
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


@cache
def _engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR  # optional dependency

    return RapidOCR()


_state = {"failed": False}


def needs_fresh_process() -> bool:
    """True once an OCR call failed: ONNX Runtime's memory arena may be left bloated or broken, so
    the sandbox retires this process after the current document."""
    return _state["failed"]


def describe_failure(exc: BaseException) -> str:
    # ONNX Runtime embeds a Python traceback in its message; its last line is the actual error.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = lines[-1] if lines else ""
    if isinstance(exc, MemoryError) or "alloc" in detail.lower():
        detail = "out of memory"
    return f"{type(exc).__name__}: {detail[:160]}" if detail else type(exc).__name__


def recognise(image: Any) -> str:
    """Text lines of an RGB/BGR image array (numpy), top to bottom; "" when nothing is found."""
    try:
        result, _elapsed = _engine()(image)
    except BaseException:
        _state["failed"] = True
        raise
    if not result:
        return ""
    # Each entry is [box, text, score]; sort by the box's top edge, then left edge.
    lines = sorted(result, key=lambda entry: (round(entry[0][0][1] / 10), entry[0][0][0]))
    return "\n".join(str(entry[1]) for entry in lines if str(entry[1]).strip())
