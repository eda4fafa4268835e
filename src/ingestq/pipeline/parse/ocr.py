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


def recognise(image: Any) -> str:
    """Text lines of an RGB/BGR image array (numpy), top to bottom; "" when nothing is found."""
    result, _elapsed = _engine()(image)
    if not result:
        return ""
    # Each entry is [box, text, score]; sort by the box's top edge, then left edge.
    lines = sorted(result, key=lambda entry: (round(entry[0][0][1] / 10), entry[0][0][0]))
    return "\n".join(str(entry[1]) for entry in lines if str(entry[1]).strip())
