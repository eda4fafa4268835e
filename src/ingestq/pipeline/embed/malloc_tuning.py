"""glibc malloc settings for a process that runs a torch model next to many threads.

glibc creates a malloc arena per thread that allocates (up to 8 per core) and never gives an arena's
freed middle back to the system. A worker has many threads (asyncio's pool for chunking, the SQLite
connection, the parser pool's pipes, torch's own), and a model batch's tensors are tens of MiB: left
alone, every arena settles at the largest batch it ever saw, and resident memory climbs with the
number of threads that happened to run a batch. Two settings stop that:

- at most 2 arenas (what `MALLOC_ARENA_MAX=2` would say, set from inside the process);
- a fixed mmap threshold, so every block of 1 MiB or more (tensors, not Python objects) is its own
  mapping, returned to the system when torch frees it. Left dynamic, glibc raises the threshold to
  the largest block freed so far (up to 32 MiB), and activations then sit in the arenas for good.

An explicit `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the environment wins. Nothing happens
off glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD = 1 << 20

_done = False
_lock = threading.Lock()


def limit_malloc_arenas() -> bool:
    """Apply the settings once per process. Returns whether glibc took them."""
    global _done
    with _lock:
        if _done:
            return True
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            return False
        ok = True
        if "MALLOC_ARENA_MAX" not in os.environ:
            ok = bool(libc.mallopt(_M_ARENA_MAX, ARENA_MAX)) and ok
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and ok
        _done = ok
        return ok
