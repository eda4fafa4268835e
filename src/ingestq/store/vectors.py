"""Vectors as compact bytes (float32 little-endian): the embedding cache and sqlite-vec both store this."""

from __future__ import annotations

import struct

from ingestq.model.document import Vector


def pack_f32(vector: Vector) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack_f32(data: bytes) -> Vector:
    if len(data) % 4:
        raise ValueError(f"a float32 vector has a multiple of 4 bytes, not {len(data)}")
    return list(struct.unpack(f"<{len(data) // 4}f", data))
