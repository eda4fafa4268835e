"""Wrong tokens from one address, counted: past a limit, that address is refused for a while.

A token of 16 characters or more cannot be guessed, but an endpoint that answers a wrong guess as fast
as it can is an invitation, and operators choose weak tokens. So each service process counts the failed
sign-ins (the dashboard's form) and the requests with a wrong bearer token, per client address, over a
sliding window; once an address has `max_failures` inside the window, every token it presents is
refused with 429 and `Retry-After` until its oldest failure leaves the window, without being compared.

What does not count: a request without any token (a browser that is not signed in yet, a probe). A
right token does not reset the count: an attacker may hold a read token and guess the admin one.

The count lives in the process, like the SSE window: behind a load balancer with N API processes an
address gets up to N times the limit. Addresses are the peer's, or the one uvicorn takes from
`X-Forwarded-For` when the proxy is trusted (its `--forwarded-allow-ips`). The table is bounded: past
`MAX_ADDRESSES` the address seen least recently is forgotten, so a flood of addresses costs memory
once, not without end.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_ADDRESSES = 10_000


class AuthFailures:
    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures  # 0: never refuse
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until `address` may present a token again; None if it may now."""
        if self.max_failures <= 0 or address is None:
            return None
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = self._clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str | None) -> None:
        if self.max_failures <= 0 or address is None:
            return
        failures = self._failures.pop(address, None)
        if failures is None:
            failures = deque(maxlen=self.max_failures)
            while len(self._failures) >= MAX_ADDRESSES:
                self._failures.popitem(last=False)
        failures.append(self._clock())
        self._failures[address] = failures  # (re)inserted last: the most recently seen
