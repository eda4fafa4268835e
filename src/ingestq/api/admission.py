"""Uploads in flight per service process, capped (`INGESTQ_UPLOADS_IN_FLIGHT`).

Past the cap a new `POST /v1/documents` gets 503 `busy` with `Retry-After` at once, before a byte of its
body is read. Each upload in flight holds up to 1 MiB of memory (its spool, api/uploads.py) and a share of
the one event loop; offered more than it can take, a process used to accept everything and queue it:
at twice its rate every upload waited seconds (p99 17 s in `python -m bench.service` before the upload
path was made cheaper), and so did every poll and page of the same process. A quick 503 keeps the
uploads it admits fast and tells the others when to come back (or a load balancer to try another
replica). Counted per process, released when the request ends, however it ends (answered, refused,
or the client gone)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ingestq.api.errors import ApiError

RETRY_AFTER_S = 1


class InFlight:
    def __init__(self, cap: int) -> None:
        self.cap = cap  # 0: no cap
        self.count = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        # no await between the check and the increment: requests on the one loop cannot interleave here
        if self.cap and self.count >= self.cap:
            raise ApiError(
                503,
                "busy",
                f"this process is receiving {self.cap} uploads already (INGESTQ_UPLOADS_IN_FLIGHT); "
                f"retry in {RETRY_AFTER_S} s",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
